// Link: the application's view of one authenticated connection, usable from
// any thread. It stands on a Transport (transport.h; QUIC today): blocking
// calls wait on a condition variable, the work itself runs on the
// transport's thread, which also calls the Link's on_* entry points.
//
// Streams: the client opens one bidirectional control stream right after the
// handshake and both sides exchange a sealed Hello on it (protocol version,
// role, fingerprint). Data and log streams are unidirectional, opened by the
// sender. The first byte of a stream is its kind (stream_kind.h).
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "link/link_config.h"
#include "link/send_window.h"
#include "link/transport.h"
#include "wire/control_channel.h"
#include "wire/frame.h"
#include "wire/message.h"
#include "wire/stream_kind.h"

namespace rcp {

// Not enable_shared_from_this: pybind11 would then prefer the internal
// owner over the application handle that keeps the endpoint alive.
class Link {
 public:
  // A QUIC client link: handshake plus hello exchange; fails with the reason
  // (pin mismatch, timeout...). Servers: LinkServer (link_server.h).
  static Result<std::shared_ptr<Link>> connect(const LinkConfig& config, const Address& remote);
  // The same, but gives up early when nothing at all came back from `remote`
  // within `no_answer` (UDP dropped on the way?): Errc::timeout saying so.
  static Result<std::shared_ptr<Link>> connect(const LinkConfig& config, const Address& remote, Nanos no_answer);

  // The transport owns the Link (QuicTransport); applications hold handles
  // that also keep the transport and its endpoint alive.
  Link(Transport& transport, const LinkConfig& config, bool client);
  ~Link();

  // --- any thread ---
  // A msgpack message, sealed with the session key, on the control stream.
  Result<void> send_message(std::span<const uint8_t> message);
  Result<std::vector<uint8_t>> recv_message(Nanos timeout);
  // A frame on this side's log stream (opened on first use); not sealed.
  Result<void> send_log(std::span<const uint8_t> message);
  Result<std::vector<uint8_t>> recv_log(Nanos timeout);

  // Bulk data: a new unidirectional stream per transfer. Waits at most
  // `timeout` for the peer to allow another stream.
  Result<int64_t> open_data(Nanos timeout = 120 * kSeconds);
  // Blocks while the connection's send buffer is full (bounded memory).
  Result<void> write(int64_t id, std::span<const uint8_t> data, Nanos timeout);
  Result<void> finish(int64_t id);
  Result<int64_t> accept_data(Nanos timeout);
  // Wakes every accept_data() waiter, now and later, with a timeout error:
  // a receiver that has all it needs lets its workers go without waiting.
  void stop_accepting_data();
  // A whole data stream in one hand-off: opens it, writes `body` and ends it.
  // For small pieces (at most 256 KiB), where per-call overhead dominates.
  Result<void> send_data_stream(std::span<const uint8_t> body, Nanos timeout);
  // The same without copying the body: `bytes` is one byte of room for the
  // stream's kind (written here), then the body. The copy path's hand-off.
  Result<void> send_data_stream_owned(std::vector<uint8_t> bytes, Nanos timeout);
  // write() without copying: the buffer (at most kHandOffBytes) goes to the
  // loop as it is. The copy path reads each block into a fresh one.
  static constexpr size_t kHandOffBytes = 256u << 10;
  Result<void> write_owned(int64_t id, std::vector<uint8_t> data, Nanos timeout);
  // Returns 0 at the end of the stream.
  Result<size_t> read(int64_t id, std::span<uint8_t> out, Nanos timeout);
  // Received bytes as they lie in the link's buffers: a view keeps its
  // buffer alive, and nothing is copied out. The copy path hashes and writes
  // straight from these.
  struct RecvBlock;
  struct View {
    std::shared_ptr<const RecvBlock> block;
    std::span<const uint8_t> bytes;
  };
  // Takes up to `max` bytes of stream `id` as views (appended to `out`), and
  // waits until min(max, read_batch()) bytes are there or the stream ends:
  // one wakeup per batch, not per packet. Returns the bytes taken; 0 at the end.
  Result<size_t> read_views(int64_t id, size_t max, std::vector<View>& out, Nanos timeout);
  size_t read_batch() const { return read_batch_; }

  // Writes `bytes` verbatim on a new stream and ends it: no kind byte, framing
  // or sealing. Only for tests and hostile-peer tools.
  Result<void> send_raw(bool bidi, std::span<const uint8_t> bytes);

  void close(const std::string& reason);
  bool closed() const;
  Error error() const;
  // Waits until the hello exchange completed or the connection failed.
  Result<void> wait_ready(Nanos timeout);
  Fingerprint peer_fingerprint() const;
  Hello peer_hello() const;
  TransportStats stats();

  // --- transport thread (called by the Transport) ---
  void on_handshake_done();
  void on_stream_data(int64_t id, std::span<const uint8_t> data, bool fin);
  void on_stream_acked(int64_t id, uint64_t freed);
  void on_stream_closed(int64_t id, uint64_t app_error);
  void on_closed(const Error& err);
  void on_streams_available();
  void wake_readers();  // end of a datagram batch

 private:
  struct InStream {
    std::deque<std::shared_ptr<RecvBlock>> chunks;
    size_t front_pos = 0;
    size_t buffered = 0;  // bytes in chunks not yet read
    size_t want = 1;      // a waiting reader is woken once this many are buffered
    bool fin = false;
    uint64_t reset_code = 0;
    uint64_t unconsumed = 0;     // read but not yet credited back to the peer
    uint64_t received = 0;       // sizing hint for the next receive buffer
    int readers = 0;             // waiting in read(): only then is cv notified
    std::condition_variable cv;  // per stream, so one packet wakes one reader
  };
  struct Message {
    std::vector<uint8_t> body;
    size_t wire_bytes;    // credit to return when the application takes it
    int64_t stream = -1;  // where that credit goes (log frames; control is control_id_)
  };

  // Runs fn on the transport's thread if the connection is still there.
  void post(std::function<void(Transport&)> fn);
  void protocol_failure(AppError code, const std::string& why);  // loop thread
  void on_control_frame(std::vector<uint8_t> body, size_t wire_bytes);
  void on_hello(const std::vector<uint8_t>& message);
  // Opens a stream on the loop thread; `first` are its first bytes.
  // `counted`: the bytes after the kind byte count against the send limit
  // until acknowledged (data streams).
  Result<int64_t> open_stream_sync(bool bidi, std::vector<uint8_t> first, bool fin, bool counted,
                                   Nanos timeout = 120 * kSeconds);
  // mu_ held: waits for min(want, ...) bytes of `s`, or its end; false on timeout.
  bool wait_readable(std::unique_lock<std::mutex>& lk, InStream& s, size_t want, Nanos timeout);
  // mu_ held, n > 0 bytes just taken from `s`: returns their credit in batches.
  void credit_read(std::unique_lock<std::mutex>& lk, int64_t id, InStream& s, size_t n);
  // mu_ held, nothing left to read in `s`: its end (0), reset or the link's error.
  Result<size_t> end_of(std::unique_lock<std::mutex>& lk, std::map<int64_t, InStream>::iterator it);
  // Blocks until `n` more unacknowledged bytes fit under the send limit.
  Result<void> reserve_send(size_t n, std::chrono::steady_clock::time_point deadline);
  Error closed_error() const;  // mu_ held

  Transport& transport_;
  const bool client_;
  bool is_local_stream(int64_t id) const { return ((id & 1) == 0) == client_; }
  const std::string role_;
  const SendWindowPolicy window_policy_;
  uint64_t send_limit_;  // under mu_: follows the congestion window (send_window.h)
  const uint32_t max_frame_;
  const size_t read_batch_;
  const Fingerprint own_fp_;

  // transport-thread state
  std::map<int64_t, StreamKind> kinds_;
  std::map<int64_t, FrameDecoder> decoders_;
  std::vector<int64_t> wake_;   // streams with new data and a waiting reader
  std::set<int64_t> own_data_;  // data streams we opened: their acks return write credit
  int64_t control_id_ = -1;
  ControlOpener opener_;
  bool hello_received_ = false;

  // shared state
  mutable std::mutex mu_;
  std::condition_variable cv_;
  ControlSealer sealer_;  // under mu_ so seal order is send order
  bool ready_ = false;
  bool closed_ = false;
  bool data_accept_stopped_ = false;
  Error error_;
  std::optional<Fingerprint> peer_fp_;
  Hello peer_hello_;
  std::deque<Message> messages_;
  std::deque<Message> logs_;
  std::map<int64_t, InStream> in_;
  std::deque<int64_t> new_data_;
  uint64_t unacked_ = 0;
  int writers_waiting_ = 0;
  uint64_t stream_credit_ = 0;         // bumped whenever the peer allows more streams
  std::condition_variable credit_cv_;  // writers waiting for acknowledgements
  int64_t log_id_ = -1;
};

}  // namespace rcp
