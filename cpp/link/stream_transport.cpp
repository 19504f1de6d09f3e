#include "link/stream_transport.h"

#include <algorithm>

namespace rcp {

namespace {

constexpr size_t kReadBuffer = 64u << 10;
constexpr size_t kWriteBatch = 256u << 10;  // queued frames coalesced into one write
constexpr uint64_t kMaxGrant = 1u << 20;    // streams granted by one frame, at most
constexpr uint64_t kMaxStreamId = uint64_t{1} << 62;

int dir_index(int64_t id) { return (id & 0x2) ? 1 : 0; }  // 0 bidi, 1 uni

std::string stream_name(uint64_t id) { return "stream " + std::to_string(id); }

// A Link counts bytes handed to a data stream and not yet framed (no credit
// yet) against its send limit: keep that limit under what this transport
// holds for a stream without credit, so a slow reader holds the writer back
// instead of looking like a peer that does not read (a relayed copy to a
// slower destination; QUIC's 32 MiB default is above the bound).
LinkConfig with_bounded_send(LinkConfig config) {
  config.quic.send_buffer = std::min(config.quic.send_buffer, kMaxUnsentPerStream / 2);
  return config;
}

}  // namespace

std::shared_ptr<Link> StreamTransport::start(std::unique_ptr<ByteStream> stream, const LinkConfig& config,
                                             bool client) {
  auto t = std::make_shared<StreamTransport>(std::move(stream), config, client);
  t->begin();
  // Aliasing: the Link shares the transport's ownership, as with QUIC.
  return std::shared_ptr<Link>(t, &t->link());
}

StreamTransport::StreamTransport(std::unique_ptr<ByteStream> stream, const LinkConfig& config, bool client)
    : stream_(std::move(stream)), client_(client),
      peer_fp_(config.tls.pinned_peers.empty() ? Fingerprint{} : config.tls.pinned_peers.front()),
      uni_allowance_(std::min<uint64_t>(config.quic.max_uni_streams, kMaxStreamLinkUniStreams)),
      link_(std::make_unique<Link>(*this, with_bounded_send(config), client)), next_local_{client ? 0 : 1,
                                                                                           client ? 2 : 3},
      next_peer_{client ? 1 : 0, client ? 3 : 2}, local_allowed_{client ? 1u : 0u,
                                                                 0},  // uni: until the peer's first grant arrives
      peer_allowed_{client ? 0u : 1u, uni_allowance_} {}

StreamTransport::~StreamTransport() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  {
    std::lock_guard<std::mutex> lk(out_mu_);
    writer_stop_ = true;
  }
  stream_->shutdown();
  cv_.notify_all();
  reader_cv_.notify_all();
  out_cv_.notify_all();
  for (std::thread* t : {&loop_, &reader_, &writer_}) {
    if (!t->joinable()) continue;
    // A handle dropped on one of our own threads: that thread cannot join itself.
    if (t->get_id() == std::this_thread::get_id())
      t->detach();
    else
      t->join();
  }
}

void StreamTransport::begin() {
  post([this] {
    queue_out(std::vector<uint8_t>(kStreamPreface.begin(), kStreamPreface.end()));
    grants_to_send_ = uni_allowance_;
    link_->on_handshake_done();
  });
  loop_ = std::thread([this] { run_loop(); });
  reader_ = std::thread([this] { run_reader(); });
  writer_ = std::thread([this] { run_writer(); });
}

void StreamTransport::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

// ---------------------------------------------------------------- threads

void StreamTransport::run_loop() {
  std::deque<std::function<void()>> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      batch.swap(tasks_);
    }
    for (auto& task : batch) task();
    batch.clear();
    end_of_batch();
  }
}

void StreamTransport::run_reader() {
  StreamFrameDecoder decoder;
  std::vector<uint8_t> buf(kReadBuffer);
  for (;;) {
    auto n = stream_->read_some(buf);
    if (!n || *n == 0) {
      Error err = !n ? n.error() : Error{};
      const bool cut = n && decoder.mid_frame();
      post([this, err, cut] {
        if (cut)
          fail(AppError::protocol, Errc::protocol, "the link's byte stream ended inside a frame");
        else if (err.code != Errc::ok)
          finish(err);
        else
          finish(make_error(Errc::closed, "the peer closed the link (end of its stream)"));
      });
      return;
    }
    bytes_received_ += *n;
    Result<void> fed = decoder.feed(std::span<const uint8_t>(buf.data(), *n));
    for (;;) {
      auto frame = fed ? decoder.next() : Result<std::optional<StreamFrame>>(fed.error());
      if (!frame) {
        post([this, e = frame.error()] { fail(AppError::protocol, e.code, "link framing: " + e.message); });
        return;  // nothing more from this peer is read
      }
      if (!frame->has_value()) break;
      const size_t size = (*frame)->payload.size() + kStreamFrameHeader;
      std::unique_lock<std::mutex> lk(mu_);
      // Bounded: the loop handles frames faster than any stream delivers
      // them, but a stalled loop must not make this thread buffer more.
      reader_cv_.wait(lk, [&] { return stopping_ || incoming_ < kMaxIncomingQueued; });
      if (stopping_) return;
      incoming_ += size;
      tasks_.emplace_back([this, f = std::move(**frame), size]() mutable {
        handle(std::move(f));
        std::lock_guard<std::mutex> g(mu_);
        incoming_ -= size;
        reader_cv_.notify_one();
      });
      lk.unlock();
      cv_.notify_one();
    }
  }
}

void StreamTransport::run_writer() {
  std::vector<uint8_t> chunk;
  for (;;) {
    bool last = false;
    {
      std::unique_lock<std::mutex> lk(out_mu_);
      out_cv_.wait(lk, [&] { return writer_stop_ || !output_.empty(); });
      if (writer_stop_ && output_.empty()) return;
      chunk.clear();
      while (!output_.empty() && chunk.size() + output_.front().size() <= kWriteBatch) {
        chunk.insert(chunk.end(), output_.front().begin(), output_.front().end());
        output_.pop_front();
      }
      if (chunk.empty()) {  // one buffer larger than a batch
        chunk = std::move(output_.front());
        output_.pop_front();
      }
      last = output_final_ && output_.empty();
    }
    if (auto r = stream_->write_all(chunk); !r) {
      post([this, e = r.error()] { finish(e); });
      return;
    }
    bytes_sent_ += chunk.size();
    if (last) return;  // the close frame is out: nothing follows it
  }
}

// ---------------------------------------------------------------- loop side

void StreamTransport::queue_out(std::vector<uint8_t> bytes) {
  {
    std::lock_guard<std::mutex> lk(out_mu_);
    if (output_final_) return;
    output_.push_back(std::move(bytes));
  }
  out_cv_.notify_one();
}

void StreamTransport::end_of_batch() {
  if (closed_) return;
  std::vector<uint8_t> frames;
  for (auto& [id, in] : in_) {
    if (in.to_credit == 0) continue;
    encode_stream_value(frames, StreamFrameType::credit, static_cast<uint64_t>(id), in.to_credit);
    in.limit += in.to_credit;
    in.to_credit = 0;
  }
  if (grants_to_send_) {
    encode_stream_value(frames, StreamFrameType::streams, 0, grants_to_send_);
    grants_to_send_ = 0;
  }
  if (!frames.empty()) queue_out(std::move(frames));
  link_->wake_readers();
}

void StreamTransport::handle(StreamFrame f) {
  if (closed_) return;
  switch (f.type) {
    case StreamFrameType::data: on_data(f); return;
    case StreamFrameType::credit: {
      const uint64_t v = f.value();
      auto it = out_.find(static_cast<int64_t>(f.stream));
      if (it == out_.end()) {
        // Credit may still come for a stream this side has ended; never for
        // one it has not opened.
        const auto id = static_cast<int64_t>(f.stream);
        if (f.stream >= kMaxStreamId || !is_local(id) || id >= next_local_[dir_index(id)])
          fail(AppError::protocol, Errc::protocol, "credit for " + stream_name(f.stream) + ", which is not open");
        return;
      }
      if (v > kMaxStreamId || it->second.credit > kMaxStreamId - v) {
        fail(AppError::protocol, Errc::protocol, "credit overflow on " + stream_name(f.stream));
        return;
      }
      it->second.credit += v;
      pump(it->first, it->second);
      return;
    }
    case StreamFrameType::streams: {
      const uint64_t v = f.value();
      if (v > kMaxGrant) {
        fail(AppError::protocol, Errc::protocol, "a grant of " + std::to_string(v) + " streams");
        return;
      }
      local_allowed_[1] += v;
      link_->on_streams_available();
      return;
    }
    case StreamFrameType::close: {
      const uint64_t code = f.value();
      std::string reason(f.payload.begin() + 8, f.payload.end());
      finish(make_error(classify_app_error(code),
                        "peer closed the connection: " + (reason.empty() ? std::string("no reason given") : reason)));
      return;
    }
  }
}

void StreamTransport::on_data(StreamFrame& f) {
  const bool fin = (f.flags & kFin) != 0;
  if (f.stream >= kMaxStreamId) {
    fail(AppError::protocol, Errc::protocol, "bad stream id " + std::to_string(f.stream));
    return;
  }
  const auto id = static_cast<int64_t>(f.stream);
  const int dir = dir_index(id);
  auto it = in_.find(id);
  if (it == in_.end()) {
    // Only the peer's next stream may appear, and only within its grant.
    if (is_local(id) || id != next_peer_[dir]) {
      fail(AppError::unknown_stream, Errc::protocol, "data on unknown " + stream_name(f.stream));
      return;
    }
    if (peer_opened_[dir] >= peer_allowed_[dir]) {
      fail(AppError::protocol, Errc::protocol, "the peer opened " + stream_name(f.stream) + " beyond its limit");
      return;
    }
    ++peer_opened_[dir];
    next_peer_[dir] += 4;
    it = in_.emplace(id, In{}).first;
    if (dir == 0) out_.emplace(id, Out{});  // bidirectional: this side may answer on it
  }
  In& in = it->second;
  if (f.payload.size() > in.limit - in.received) {
    fail(AppError::protocol, Errc::protocol, "the peer overran the receive window of " + stream_name(f.stream));
    return;
  }
  in.received += f.payload.size();
  link_->on_stream_data(id, f.payload, fin);
  if (closed_ || !fin) return;
  in_.erase(id);
  // A unidirectional stream is over once its end arrived (QUIC: closed).
  if (dir == 1) link_->on_stream_closed(id, 0);
}

void StreamTransport::pump(int64_t id, Out& out) {
  while (!out.pending.empty()) {
    auto& [bytes, fin] = out.pending.front();
    const size_t left = bytes.size() - out.front_pos;
    const size_t n = std::min<uint64_t>({left, out.credit, kMaxStreamDataPayload});
    if (n == 0 && left > 0) return;  // waits for credit
    const bool last = n == left;
    const bool end = last && fin;
    if (n == 0 && !end) {  // an empty hand-off: nothing to frame
      out.pending.pop_front();
      out.front_pos = 0;
      continue;
    }
    std::vector<uint8_t> frame;
    frame.reserve(kStreamFrameHeader + n);
    encode_stream_frame(frame, StreamFrameType::data, end ? kFin : 0, static_cast<uint64_t>(id),
                        std::span<const uint8_t>(bytes.data() + out.front_pos, n));
    queue_out(std::move(frame));
    out.credit -= n;
    out.pending_bytes -= n;
    out.front_pos += n;
    if (n) link_->on_stream_acked(id, n);  // handed to the stream: counts as delivered
    if (last) {
      out.pending.pop_front();
      out.front_pos = 0;
    }
    if (end) {
      out_.erase(id);  // `out` is gone
      if (dir_index(id) == 1) link_->on_stream_closed(id, 0);
      return;
    }
  }
}

void StreamTransport::fail(AppError code, Errc errc, const std::string& why) {
  close_with(static_cast<uint64_t>(code), why, make_error(errc, why));
}

void StreamTransport::finish(const Error& err) {
  if (closed_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lk(out_mu_);
    writer_stop_ = true;  // nothing more to say to a peer that is gone
  }
  out_cv_.notify_one();
  out_.clear();
  in_.clear();
  link_->on_closed(err);
}

// ---------------------------------------------------------------- Transport

void StreamTransport::execute(std::function<void(Transport*)> fn) {
  post([this, fn = std::move(fn)] { fn(closed_ ? nullptr : this); });
}

Result<int64_t> StreamTransport::open_stream(bool bidi) {
  if (closed_) return make_error(Errc::closed, "connection closed");
  const int dir = bidi ? 0 : 1;
  if (local_opened_[dir] >= local_allowed_[dir])
    return make_error(Errc::too_large, "the peer's stream limit is reached");
  ++local_opened_[dir];
  const int64_t id = next_local_[dir];
  next_local_[dir] += 4;
  out_.emplace(id, Out{});
  if (bidi) in_.emplace(id, In{});
  return id;
}

void StreamTransport::send(int64_t id, std::vector<uint8_t> data, bool fin) {
  auto it = out_.find(id);
  if (closed_ || it == out_.end()) return;
  Out& out = it->second;
  out.pending_bytes += data.size();
  if (out.pending_bytes > kMaxUnsentPerStream) {
    fail(AppError::internal, Errc::closed, "the peer is not reading " + stream_name(static_cast<uint64_t>(id)));
    return;
  }
  out.pending.emplace_back(std::move(data), fin);
  pump(id, out);
}

void StreamTransport::consume(int64_t id, uint64_t n) {
  if (auto it = in_.find(id); it != in_.end()) it->second.to_credit += n;
}

void StreamTransport::grant_peer_uni_stream() {
  if (closed_) return;
  ++peer_allowed_[1];
  ++grants_to_send_;
}

bool StreamTransport::close(uint64_t app_error, const std::string& reason) {
  return close_with(app_error, reason, make_error(Errc::closed, "closed: " + reason));
}

bool StreamTransport::close_with(uint64_t app_error, const std::string& reason, const Error& err) {
  if (closed_) return false;
  std::vector<uint8_t> frame;
  const std::string why = reason.substr(0, kMaxCloseReason);
  encode_stream_value(frame, StreamFrameType::close, 0, app_error,
                      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(why.data()), why.size()));
  queue_out(std::move(frame));
  {
    std::lock_guard<std::mutex> lk(out_mu_);
    output_final_ = true;
  }
  closed_ = true;
  out_.clear();
  in_.clear();
  link_->on_closed(err);
  return true;
}

TransportStats StreamTransport::stats() const {
  TransportStats s;
  s.bytes_sent = bytes_sent_.load();
  s.bytes_received = bytes_received_.load();
  return s;
}

}  // namespace rcp
