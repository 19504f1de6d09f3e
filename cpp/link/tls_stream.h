// TlsStream: a ByteStream over TLS 1.3 on a connected TCP socket — the
// TCP+TLS data link's byte stream. The certificates are the processes'
// ephemeral ones, pinned by SHA-256 both ways exactly as on QUIC (the TLS
// seam in quic/tls_session.h does the pinning; the ALPN is "rcp-tcp/1").
//
// Threads: read_some() and write_all() run on two threads at once. One
// mutex guards the TLS object; the socket is non-blocking and every wait
// (poll) happens outside the lock, so a blocked reader never holds up the
// writer. shutdown() from any thread wakes both.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>

#include "base/clock.h"
#include "base/unique_fd.h"
#include "link/byte_stream.h"
#include "quic/tls_session.h"

namespace rcp {

class TlsStream : public ByteStream {
 public:
  // `ctx` is a TlsCarrier::tcp context; its role decides client or server.
  // The socket must be connected and non-blocking.
  static Result<std::unique_ptr<TlsStream>> create(UniqueFd socket, std::shared_ptr<TlsContext> ctx);
  ~TlsStream() override;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Runs the handshake, at most `timeout`: Errc::pin_mismatch when either
  // side's certificate is not pinned (our verify said so), Errc::timeout,
  // Errc::tls or Errc::closed otherwise; shutdown() cuts it short.
  Result<void> handshake(Nanos timeout);
  Fingerprint peer_fingerprint() const { return peer_fp_; }
  int fd() const { return fd_.get(); }
  // Until when reads and writes may wait (Errc::timeout after it); none by default.
  void set_deadline(std::chrono::steady_clock::time_point deadline) { deadline_ = deadline.time_since_epoch().count(); }
  void clear_deadline() { deadline_ = 0; }
  // Until the peer sent something (or timeout, or shutdown()).
  Result<void> wait_readable(Nanos timeout);
  // Exactly out.size() bytes, or an error (Errc::closed at the end of the stream).
  Result<void> read_exact(std::span<uint8_t> out);

  Result<size_t> read_some(std::span<uint8_t> out) override;
  Result<void> write_all(std::span<const uint8_t> data) override;
  void shutdown() override;

 private:
  TlsStream() = default;
  Result<void> wait(TlsSession::IoWait what);

  UniqueFd fd_;
  UniqueFd wake_;  // eventfd: shutdown() makes it readable
  std::atomic<bool> shut_{false};
  std::atomic<std::chrono::steady_clock::rep> deadline_{0};
  std::mutex mu_;  // the TLS object: one call at a time
  std::unique_ptr<TlsSession> session_;
  Fingerprint peer_fp_{};
};

}  // namespace rcp
