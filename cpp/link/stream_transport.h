// StreamTransport: a Link over reliable byte streams (ByteStream: rcpd's
// stdin/stdout, the master's SSH channel or a local child's pipes: one;
// the TCP+TLS data link: several TLS connections, link/tcp_link.h). The
// Link's logical streams — control, log, data — are multiplexed with the
// framing of stream_frames.h and keep QUIC's stream ids and flow control,
// so the Link above runs unchanged (docs/protocol.md, "Link over a byte
// stream"). There is no TLS: the SSH channel (or the pipe, inside one
// machine) carries it, and the sealed hello and control messages
// authenticate the peer as on QUIC.
//
// Bounded both ways: each stream's receive window (kStreamWindow) is
// enforced, the peer may open only as many unidirectional streams as it was
// granted, the reader stops reading while its unprocessed frames exceed a
// bound, and bytes waiting for the peer's credit are capped.
//
// Several byte streams ("connections"): each logical stream sticks to the
// connection it was opened on (control: the first), so its bytes stay in
// order; the receiver takes any stream's frames from any connection, and a
// stream id may arrive before lower ones opened on other connections (they
// open implicitly, as on QUIC). A close goes out on every connection. Over
// one connection, ids must come strictly in order.
//
// Threads: a loop thread runs every Transport method and the Link's on_*
// entry points (as QUIC's endpoint loop does); a reader and a writer thread
// per connection block on its stream.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "link/byte_stream.h"
#include "link/link.h"
#include "link/stream_frames.h"
#include "link/transport.h"

namespace rcp {

// Per stream, what a receiver accepts before it returns credit; larger than
// a whole control or log frame (QuicConfig::max_frame_body plus headers).
inline constexpr uint64_t kStreamWindow = 2u << 20;
// Unidirectional streams a peer may have open at once (at most: less when
// the config's max_uni_streams is lower). A control link needs one (logs).
inline constexpr uint64_t kMaxStreamLinkUniStreams = 8;
// Bytes a side holds for a stream whose peer gives no credit: past this, the
// peer is taken as not reading and the link fails.
inline constexpr size_t kMaxUnsentPerStream = 16u << 20;
// Frames read but not yet handled by the loop; past this the reader waits.
inline constexpr size_t kMaxIncomingQueued = 1u << 20;

struct StreamTransportOptions {
  // Cap on the unidirectional streams a peer may have open at once (with
  // the config's max_uni_streams, the lower wins).
  uint64_t uni_stream_cap = kMaxStreamLinkUniStreams;
  // Bytes held for one stream the peer gives no credit for, before the link
  // fails. The Link's send buffer is held to half of it (a slow reader then
  // holds writers back); a TCP data link sets it to twice its send buffer.
  size_t max_unsent_per_stream = kMaxUnsentPerStream;
};

class StreamTransport : public Transport {
 public:
  // The Link runs as soon as this returns: a client sends its hello at once.
  // The handle shares ownership of the transport and its threads. The peer
  // fingerprint reported is config.tls.pinned_peers' first, if any (the one
  // the hello line announced: the stream itself has no certificate).
  static std::shared_ptr<Link> start(std::unique_ptr<ByteStream> stream, const LinkConfig& config, bool client);
  // Over several connections (at least one), in the same order on both sides.
  static std::shared_ptr<Link> start(std::vector<std::unique_ptr<ByteStream>> streams, const LinkConfig& config,
                                     bool client, const StreamTransportOptions& options = {});

  StreamTransport(std::vector<std::unique_ptr<ByteStream>> streams, const LinkConfig& config, bool client,
                  const StreamTransportOptions& options);
  ~StreamTransport() override;
  StreamTransport(const StreamTransport&) = delete;
  StreamTransport& operator=(const StreamTransport&) = delete;

  Link& link() { return *link_; }

  // Transport
  void execute(std::function<void(Transport*)> fn) override;
  Result<int64_t> open_stream(bool bidi) override;
  void send(int64_t id, std::vector<uint8_t> data, bool fin) override;
  void consume(int64_t id, uint64_t n) override;
  void grant_peer_uni_stream() override;
  bool close(uint64_t app_error, const std::string& reason) override;
  bool closed() const override { return closed_.load(); }
  Fingerprint peer_fingerprint() const override { return peer_fp_; }
  TransportStats stats() const override;
  void session_ready() override {}

 private:
  struct Out {
    std::deque<std::pair<std::vector<uint8_t>, bool>> pending;  // bytes, fin
    size_t front_pos = 0;
    size_t pending_bytes = 0;
    uint64_t credit = kStreamWindow;  // bytes the peer still accepts
    size_t conn = 0;                  // where its frames go
  };
  struct In {
    uint64_t limit = kStreamWindow;  // total bytes the peer may have sent
    uint64_t received = 0;
    uint64_t to_credit = 0;  // consumed, not yet announced
    size_t conn = 0;         // where its data came from: credit goes back there
  };
  // One byte stream and its writer's queue; bounded by the peer's credit
  // (stream data) plus the small credit/streams/close frames.
  struct Conn {
    std::unique_ptr<ByteStream> stream;
    std::mutex out_mu;
    std::condition_variable out_cv;
    std::deque<std::vector<uint8_t>> output;
    bool output_final = false;  // a close frame is queued: write it, then stop
    bool writer_stop = false;
    size_t streams = 0;  // loop thread: our open streams on it
    std::thread reader, writer;
  };

  void begin();
  void run_loop();
  void run_reader(size_t conn);
  void run_writer(size_t conn);
  void post(std::function<void()> task);
  // Loop thread:
  void handle(StreamFrame f, size_t conn);
  void on_data(StreamFrame& f, size_t conn);
  void pump(int64_t id, Out& out);
  void queue_out(size_t conn, std::vector<uint8_t> bytes);
  void stop_writers();
  void end_out(int64_t id);  // our stream `id` is over on its connection
  void end_of_batch();
  void fail(AppError code, Errc errc, const std::string& why);
  // Sends a close frame (the last thing written) and tells the Link `err`.
  bool close_with(uint64_t app_error, const std::string& reason, const Error& err);
  void finish(const Error& err);  // closed without sending anything
  bool is_local(int64_t id) const { return ((id & 1) == 0) == client_; }

  std::vector<std::unique_ptr<Conn>> conns_;
  const bool client_;
  const Fingerprint peer_fp_;
  const uint64_t uni_allowance_;  // streams the peer may have open at once
  const size_t max_unsent_;
  std::unique_ptr<Link> link_;

  // loop-thread state
  std::map<int64_t, Out> out_;
  std::map<int64_t, In> in_;
  int64_t next_local_[2];  // [bidi, uni]
  int64_t next_peer_[2];
  uint64_t local_opened_[2] = {0, 0};
  uint64_t local_allowed_[2];  // streams the peer allows us to open (bidi: the control stream)
  uint64_t peer_opened_[2] = {0, 0};
  uint64_t peer_allowed_[2];
  uint64_t grants_to_send_ = 0;
  size_t next_conn_ = 0;  // round robin among the least busy connections
  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> bytes_sent_{0}, bytes_received_{0};

  // the loop's task queue, fed by execute() and the reader
  std::mutex mu_;
  std::condition_variable cv_, reader_cv_;
  std::deque<std::function<void()>> tasks_;
  size_t incoming_ = 0;  // payload bytes of queued frames
  bool stopping_ = false;

  std::thread loop_;
};

}  // namespace rcp
