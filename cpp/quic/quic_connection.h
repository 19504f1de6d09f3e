// QuicConnection: one ngtcp2 connection (client or server role) with its TLS
// session and send buffers. Sans-I/O: it reads no clock and owns no socket or
// timer. The caller passes the time into every call, feeds it datagrams,
// writes its packets through a DatagramSink and calls on_timer() at expiry().
// Single-threaded (the endpoint's loop thread, or a test's).
#pragma once

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/address.h"
#include "base/clock.h"
#include "base/result.h"
#include "quic/certificate.h"
#include "quic/datagram_sink.h"
#include "quic/quic_config.h"
#include "quic/send_buffer.h"
#include "quic/tls_session.h"

namespace rcp {

struct QuicStats {
  uint64_t bytes_sent = 0;  // UDP payload bytes
  uint64_t bytes_received = 0;
  uint64_t packets_sent = 0;
  uint64_t packets_received = 0;
  uint64_t send_calls = 0;     // syscalls (GSO batches count once)
  size_t max_udp_payload = 0;  // what ngtcp2 uses now
  bool gso = false;
  Nanos smoothed_rtt = 0;
  uint64_t cwnd = 0;
};

class QuicConnection {
 public:
  struct Events {
    // Asked once the pins check out, before handshake_done: false refuses the
    // peer (a server with no slot left for another authenticated connection).
    std::function<bool()> admit;
    std::function<void()> handshake_done;  // pins verified both ways
    std::function<void(int64_t id, std::span<const uint8_t> data, bool fin)> stream_data;
    std::function<void(int64_t id, uint64_t freed)> stream_acked;
    std::function<void(int64_t id, uint64_t app_error)> stream_closed;
    std::function<void()> streams_available;                             // the peer raised our stream limit
    std::function<void()> closed;                                        // terminal; error() says why
    std::function<void(const ngtcp2_cid& cid, bool added)> cid_changed;  // server demux
    // What an application error code means (peer's CONNECTION_CLOSE); unset: protocol.
    std::function<Errc(uint64_t app_error)> classify_app_error;
  };
  static constexpr Nanos kNever = UINT64_MAX;

  static Result<std::unique_ptr<QuicConnection>> connect(const QuicConfig& config, std::shared_ptr<TlsContext> tls,
                                                         DatagramSink& sink, const Address& local,
                                                         const Address& remote, Events events, Nanos now);
  // `hd` comes from ngtcp2_accept on the client's Initial. After a Retry,
  // `odcid` is the DCID of its first Initial, from the token; null when the
  // server took the Initial without one (no handshake was in progress).
  static Result<std::unique_ptr<QuicConnection>> accept(const QuicConfig& config, std::shared_ptr<TlsContext> tls,
                                                        DatagramSink& sink, const Address& local, const Address& remote,
                                                        const ngtcp2_pkt_hd& hd, const ngtcp2_cid* odcid, Events events,
                                                        Nanos now);
  ~QuicConnection();
  QuicConnection(const QuicConnection&) = delete;
  QuicConnection& operator=(const QuicConnection&) = delete;

  void on_datagram(std::span<const uint8_t> pkt, const Address& from, Nanos now);
  // Writes what congestion and flow control allow. Returns true when it
  // stopped on its per-call budget and should be called again soon.
  bool flush(Nanos now);
  // When on_timer() is due (loss detection, pacing, idle...): kNever if not.
  Nanos expiry() const;
  void on_timer(Nanos now);
  bool blocked_on_socket() const { return !pending_.empty(); }

  Result<int64_t> open_stream(bool bidi);
  void send(int64_t id, std::vector<uint8_t> data, bool fin);
  // The application consumed n bytes of stream `id`: grant the peer more credit.
  void consume(int64_t id, uint64_t n);
  // Lets the peer open one more unidirectional stream (one of its streams has
  // been read to the end, or was never going to be).
  void grant_peer_uni_stream();
  void reset_stream(int64_t id, uint64_t app_error);
  // Sends CONNECTION_CLOSE with an application error and becomes closed
  // (at the time of the latest call that passed one).
  void close(uint64_t app_error, const std::string& reason);

  bool handshake_done() const { return handshake_done_; }
  bool closed() const { return closed_; }
  const Error& error() const { return error_; }
  const std::optional<Fingerprint>& peer_fingerprint() const { return peer_fp_; }
  QuicStats stats() const;
  const Address& remote() const { return remote_; }
  std::vector<ngtcp2_cid> cids() const;  // every source CID this side issued

  // ngtcp2 callback forwarders (free functions call these).
  int on_handshake_completed();
  int on_recv_stream_data(uint32_t flags, int64_t id, const uint8_t* data, size_t len);
  int on_acked(int64_t id, uint64_t offset, uint64_t len);
  int on_stream_close(int64_t id, uint64_t app_error);
  int on_extend_max_stream_data(int64_t id);
  int on_extend_max_local_streams();
  int on_new_cid(ngtcp2_cid* cid, uint8_t* token, size_t cidlen);
  int on_remove_cid(const ngtcp2_cid* cid);
  ngtcp2_conn* native() const { return conn_; }

 private:
  QuicConnection(const QuicConfig& config, DatagramSink& sink, const Address& local, const Address& remote,
                 Events events, Nanos now);
  Result<void> init(bool server, std::shared_ptr<TlsContext> tls, const ngtcp2_pkt_hd* hd, const ngtcp2_cid* odcid);
  void fail(int liberr);  // ngtcp2 error: send CONNECTION_CLOSE, then closed
  void finish(Error err);
  void send_close_packet(const ngtcp2_ccerr& ccerr);
  Error describe_close(int liberr) const;
  bool send_batch(const uint8_t* data, size_t len, size_t segment);
  SendBuffer* next_stream_with_data();

  QuicConfig config_;
  DatagramSink& sink_;
  Nanos now_;  // the latest time a caller passed in
  Address local_;
  Address remote_;
  Events events_;
  ngtcp2_conn* conn_ = nullptr;
  ngtcp2_crypto_conn_ref conn_ref_{};
  std::unique_ptr<TlsSession> tls_;
  std::unordered_map<int64_t, SendBuffer> streams_;
  std::unordered_set<int64_t> blocked_;  // waiting for the peer's MAX_STREAM_DATA
  std::vector<int64_t> ready_;           // streams with something to send, round robin
  size_t rr_ = 0;
  std::vector<uint16_t> pmtud_probes_;
  std::vector<uint8_t> txbuf_;
  std::vector<uint8_t> pending_;  // a batch the socket refused (EAGAIN)
  size_t pending_segment_ = 0;
  std::vector<ngtcp2_cid> scids_;
  bool handshake_done_ = false;
  bool closed_ = false;
  Error error_;
  Error pending_error_;  // set by a callback that fails the connection
  std::optional<Fingerprint> peer_fp_;
  QuicStats stats_;
  Nanos last_trace_ = 0;  // debug: once a second, what limits sending
  uint64_t traced_bytes_ = 0;
  void trace_state(Nanos now);
};

}  // namespace rcp
