// Transport: what a Link needs of the connection under it — streams in
// (Link's on_* entry points), streams out, close. QUIC is one
// (QuicTransport); TCP+TLS and SSH-stdio transports are to come.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/result.h"
#include "quic/certificate.h"  // Fingerprint: certificate pinning is every transport's

namespace rcp {

struct TransportStats {
  uint64_t bytes_sent = 0;  // datagram payload bytes
  uint64_t bytes_received = 0;
  uint64_t packets_sent = 0;
  uint64_t packets_received = 0;
  uint64_t send_calls = 0;  // syscalls (GSO batches count once)
  size_t max_udp_payload = 0;
  bool gso = false;
  Nanos smoothed_rtt = 0;
  uint64_t cwnd = 0;
};

// Every method but execute() runs on the transport's own thread (QUIC: the
// endpoint's loop thread), where the Link's on_* entry points are called too.
class Transport {
 public:
  virtual ~Transport() = default;
  // Any thread: runs fn on the transport's thread with this transport, or
  // with nullptr once the connection is gone; then sends what fn queued.
  virtual void execute(std::function<void(Transport*)> fn) = 0;

  virtual Result<int64_t> open_stream(bool bidi) = 0;  // Errc::too_large: the peer's stream limit
  virtual void send(int64_t id, std::vector<uint8_t> data, bool fin) = 0;
  // n bytes of stream `id` were consumed: the peer may send n more.
  virtual void consume(int64_t id, uint64_t n) = 0;
  // The peer may open one more unidirectional stream.
  virtual void grant_peer_uni_stream() = 0;
  // Closes with an application error (AppError); false when already gone.
  virtual bool close(uint64_t app_error, const std::string& reason) = 0;
  virtual bool closed() const = 0;
  virtual Fingerprint peer_fingerprint() const = 0;
  virtual TransportStats stats() const = 0;
  // The session (hello exchange) is established: a server hands the Link to accept().
  virtual void session_ready() = 0;
};

}  // namespace rcp
