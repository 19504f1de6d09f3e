#include "link/link.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>

namespace rcp {

namespace {

constexpr size_t kWriteChunk = Link::kHandOffBytes;  // unit of hand-off from writer threads to the loop
// Flow-control credit goes back in batches: one loop wakeup per 256 KiB read,
// far below the stream window so a sender never waits on the batching.
constexpr uint64_t kCreditBatch = 256u << 10;
constexpr size_t kRecvBuffer = 64u << 10;
// A view reader is woken per this many bytes (or at the stream's end). With
// the credit batch it must stay well under a stream's receive window, or a
// waiting reader would hold back the credit the sender waits for.
constexpr size_t kReadBatch = 256u << 10;

Direction sealing_direction(bool client) { return client ? Direction::client_to_server : Direction::server_to_client; }
Direction opening_direction(bool client) { return client ? Direction::server_to_client : Direction::client_to_server; }

auto deadline_after(Nanos timeout) { return std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout); }

Error timeout_error(const char* what) {
  return make_error(Errc::timeout, std::string("timed out waiting for ") + what);
}

}  // namespace

Link::Link(Transport& transport, const LinkConfig& config, bool client)
    : transport_(transport), client_(client),
      role_(config.role), window_policy_{std::min<uint64_t>(SendWindowPolicy{}.floor, config.quic.send_buffer),
                                         config.quic.send_buffer},
      send_limit_(window_policy_.floor), max_frame_(config.quic.max_frame_body),
      read_batch_(std::max<size_t>(1, std::min<uint64_t>(kReadBatch, config.quic.stream_window / 4))),
      own_fp_(config.tls.identity.fingerprint), opener_(config.session_key, opening_direction(client)),
      sealer_(config.session_key, sealing_direction(client)) {}

Link::~Link() = default;

// Received stream bytes: filled by the loop thread at [size, capacity) under
// mu_, read by views at [0, size) without it. It never reallocates, so a view
// stays valid while the loop appends behind it. Not zero-filled.
struct Link::RecvBlock {
  explicit RecvBlock(size_t cap) : bytes(std::make_unique_for_overwrite<uint8_t[]>(cap)), capacity(cap) {}
  std::unique_ptr<uint8_t[]> bytes;
  size_t capacity;
  size_t size = 0;
};

void Link::post(std::function<void(Transport&)> fn) {
  transport_.execute([fn = std::move(fn)](Transport* t) {
    if (t) fn(*t);
  });
}

Error Link::closed_error() const {
  return error_.code == Errc::ok ? make_error(Errc::closed, "connection closed") : error_;
}

// ---------------------------------------------------------------- app side

Result<void> Link::send_message(std::span<const uint8_t> message) {
  if (message.size() > max_frame_ - kHmacTagSize)
    return make_error(Errc::too_large,
                      "message of " + std::to_string(message.size()) + " bytes exceeds the frame limit");
  std::lock_guard<std::mutex> lk(mu_);
  if (closed_) return closed_error();
  if (control_id_ < 0) return make_error(Errc::closed, "control stream not open yet");
  auto frame = sealer_.seal(message);
  int64_t id = control_id_;
  post([id, frame = std::move(frame)](Transport& c) mutable { c.send(id, std::move(frame), false); });
  return {};
}

Result<std::vector<uint8_t>> Link::recv_message(Nanos timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!cv_.wait_until(lk, deadline_after(timeout), [&] { return !messages_.empty() || closed_; }))
    return timeout_error("a control message");
  if (messages_.empty()) return closed_error();
  Message m = std::move(messages_.front());
  messages_.pop_front();
  int64_t id = control_id_;
  size_t credit = m.wire_bytes;
  lk.unlock();
  post([id, credit](Transport& c) { c.consume(id, credit); });
  return std::move(m.body);
}

Result<int64_t> Link::open_stream_sync(bool bidi, std::vector<uint8_t> first, bool fin, bool counted, Nanos timeout) {
  auto deadline = deadline_after(timeout);
  for (;;) {
    uint64_t credit_seen;
    {
      std::lock_guard<std::mutex> lk(mu_);
      credit_seen = stream_credit_;
    }
    std::promise<Result<int64_t>> done;
    auto fut = done.get_future();
    transport_.execute([this, bidi, fin, counted, &first, &done](Transport* c) {
      if (c == nullptr) {
        done.set_value(make_error(Errc::closed, "connection closed"));
        return;
      }
      auto id = c->open_stream(bidi);
      if (id) {
        if (counted) own_data_.insert(*id);
        c->send(*id, std::move(first), fin);
      }
      done.set_value(std::move(id));
    });
    auto id = fut.get();
    if (id || id.error().code != Errc::too_large) return id;
    // The peer's stream limit is reached: wait until it grants more.
    std::unique_lock<std::mutex> lk(mu_);
    if (!cv_.wait_until(lk, deadline, [&] { return closed_ || stream_credit_ != credit_seen; }))
      return timeout_error("the peer to allow another stream");
    if (closed_) return closed_error();
  }
}

Result<void> Link::send_raw(bool bidi, std::span<const uint8_t> bytes) {
  auto id = open_stream_sync(bidi, std::vector<uint8_t>(bytes.begin(), bytes.end()), true, false);
  if (!id) return id.error();
  return {};
}

Result<void> Link::send_log(std::span<const uint8_t> message) {
  if (message.size() > max_frame_) return make_error(Errc::too_large, "log message exceeds the frame limit");
  int64_t id;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_) return closed_error();
    id = log_id_;
  }
  if (id < 0) {
    auto opened = open_stream_sync(false, {static_cast<uint8_t>(StreamKind::log)}, false, false);
    if (!opened) return opened.error();
    std::lock_guard<std::mutex> lk(mu_);
    if (log_id_ < 0) log_id_ = *opened;
    id = log_id_;
  }
  post([id, frame = encode_frame(message)](Transport& c) mutable { c.send(id, std::move(frame), false); });
  return {};
}

Result<std::vector<uint8_t>> Link::recv_log(Nanos timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!cv_.wait_until(lk, deadline_after(timeout), [&] { return !logs_.empty() || closed_; }))
    return timeout_error("a log message");
  if (logs_.empty()) return closed_error();
  Message m = std::move(logs_.front());
  logs_.pop_front();
  // Credit goes back only now that the reader has the frame: a flooding peer
  // waits on flow control instead of filling this process.
  int64_t id = m.stream;
  size_t credit = m.wire_bytes;
  lk.unlock();
  post([id, credit](Transport& c) { c.consume(id, credit); });
  return std::move(m.body);
}

Result<int64_t> Link::open_data(Nanos timeout) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_) return closed_error();
  }
  return open_stream_sync(false, {static_cast<uint8_t>(StreamKind::data)}, false, true, timeout);
}

Result<void> Link::send_data_stream(std::span<const uint8_t> body, Nanos timeout) {
  std::vector<uint8_t> bytes;
  bytes.reserve(body.size() + 1);
  bytes.push_back(0);
  bytes.insert(bytes.end(), body.begin(), body.end());
  return send_data_stream_owned(std::move(bytes), timeout);
}

Result<void> Link::send_data_stream_owned(std::vector<uint8_t> bytes, Nanos timeout) {
  if (bytes.empty()) return make_error(Errc::invalid_argument, "send_data_stream: no room for the stream kind");
  const size_t body = bytes.size() - 1;
  if (body > kWriteChunk) return make_error(Errc::too_large, "send_data_stream: body over 256 KiB");
  if (auto r = reserve_send(body, deadline_after(timeout)); !r) return r;
  bytes[0] = static_cast<uint8_t>(StreamKind::data);
  auto id = open_stream_sync(false, std::move(bytes), true, true);
  if (!id) {
    std::lock_guard<std::mutex> lk(mu_);
    unacked_ -= std::min<uint64_t>(unacked_, body);
    return id.error();
  }
  return {};
}

Result<void> Link::reserve_send(size_t n, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lk(mu_);
  // Bounded memory: wait until the peer has acknowledged enough.
  ++writers_waiting_;
  bool ok = credit_cv_.wait_until(lk, deadline, [&] { return closed_ || unacked_ + n <= send_limit_; });
  --writers_waiting_;
  if (!ok) return timeout_error("send buffer space (peer not reading?)");
  if (closed_) return closed_error();
  unacked_ += n;
  return {};
}

Result<void> Link::write(int64_t id, std::span<const uint8_t> data, Nanos timeout) {
  auto deadline = deadline_after(timeout);
  while (!data.empty()) {
    size_t n = std::min(data.size(), kWriteChunk);
    if (auto r = reserve_send(n, deadline); !r) return r;
    std::vector<uint8_t> chunk(data.begin(), data.begin() + static_cast<long>(n));
    post([id, chunk = std::move(chunk)](Transport& c) mutable { c.send(id, std::move(chunk), false); });
    data = data.subspan(n);
  }
  return {};
}

Result<void> Link::write_owned(int64_t id, std::vector<uint8_t> data, Nanos timeout) {
  if (data.size() > kHandOffBytes) return make_error(Errc::too_large, "write_owned: over 256 KiB");
  if (data.empty()) return {};
  if (auto r = reserve_send(data.size(), deadline_after(timeout)); !r) return r;
  post([id, chunk = std::move(data)](Transport& c) mutable { c.send(id, std::move(chunk), false); });
  return {};
}

Result<void> Link::finish(int64_t id) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_) return closed_error();
  }
  post([id](Transport& c) { c.send(id, {}, true); });
  return {};
}

Result<int64_t> Link::accept_data(Nanos timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!cv_.wait_until(lk, deadline_after(timeout),
                      [&] { return !new_data_.empty() || closed_ || data_accept_stopped_; }) ||
      (new_data_.empty() && data_accept_stopped_ && !closed_))
    return timeout_error("a data stream");
  if (new_data_.empty()) return closed_error();
  int64_t id = new_data_.front();
  new_data_.pop_front();
  return id;
}

void Link::stop_accepting_data() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    data_accept_stopped_ = true;
  }
  cv_.notify_all();
}

bool Link::wait_readable(std::unique_lock<std::mutex>& lk, InStream& s, size_t want, Nanos timeout) {
  s.want = std::max<size_t>(want, 1);
  ++s.readers;
  bool ready = s.cv.wait_until(lk, deadline_after(timeout),
                               [&] { return s.buffered >= s.want || s.fin || s.reset_code || closed_; });
  --s.readers;
  s.want = 1;
  return ready;
}

void Link::credit_read(std::unique_lock<std::mutex>& lk, int64_t id, InStream& s, size_t n) {
  s.buffered -= n;
  s.unconsumed += n;
  // A drained, finished stream returns its credit at once: small streams
  // would otherwise starve the connection-level window.
  if (s.unconsumed >= kCreditBatch || (s.fin && s.chunks.empty())) {
    uint64_t credit = s.unconsumed;
    s.unconsumed = 0;
    lk.unlock();
    post([id, credit](Transport& c) { c.consume(id, credit); });
  }
}

Result<size_t> Link::end_of(std::unique_lock<std::mutex>& lk, std::map<int64_t, InStream>::iterator it) {
  InStream& s = it->second;
  if (s.reset_code || s.fin) {
    // Read to its end (or reset): the peer may open another stream.
    const uint64_t reset = s.reset_code;
    in_.erase(it);
    lk.unlock();
    post([](Transport& c) { c.grant_peer_uni_stream(); });
    if (reset) return make_error(Errc::closed, "data stream reset by the peer (code " + std::to_string(reset) + ")");
    return size_t{0};
  }
  return closed_error();
}

Result<size_t> Link::read(int64_t id, std::span<uint8_t> out, Nanos timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  auto it = in_.find(id);
  if (it == in_.end()) return make_error(Errc::invalid_argument, "no such data stream " + std::to_string(id));
  InStream& s = it->second;
  if (!wait_readable(lk, s, 1, timeout)) return timeout_error("stream data");
  size_t n = 0;
  while (n < out.size() && !s.chunks.empty()) {
    const RecvBlock& front = *s.chunks.front();
    size_t take = std::min(out.size() - n, front.size - s.front_pos);
    std::memcpy(out.data() + n, front.bytes.get() + s.front_pos, take);
    n += take;
    s.front_pos += take;
    if (s.front_pos == front.size) {
      s.chunks.pop_front();
      s.front_pos = 0;
    }
  }
  if (n > 0) {
    credit_read(lk, id, s, n);
    return n;
  }
  return end_of(lk, it);
}

Result<size_t> Link::read_views(int64_t id, size_t max, std::vector<View>& out, Nanos timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  auto it = in_.find(id);
  if (it == in_.end()) return make_error(Errc::invalid_argument, "no such data stream " + std::to_string(id));
  InStream& s = it->second;
  if (!wait_readable(lk, s, std::min(max, read_batch_), timeout)) return timeout_error("stream data");
  size_t n = 0;
  while (n < max && !s.chunks.empty()) {
    const std::shared_ptr<RecvBlock>& front = s.chunks.front();
    const size_t take = std::min(max - n, front->size - s.front_pos);
    out.push_back({front, {front->bytes.get() + s.front_pos, take}});
    n += take;
    s.front_pos += take;
    // The block being filled stays queued (the loop appends behind the view).
    if (s.front_pos == front->size && (s.chunks.size() > 1 || front->size == front->capacity || s.fin)) {
      s.chunks.pop_front();
      s.front_pos = 0;
    } else if (s.front_pos == front->size) {
      break;
    }
  }
  if (n > 0) {
    credit_read(lk, id, s, n);
    return n;
  }
  return end_of(lk, it);
}

void Link::close(const std::string& reason) {
  post([reason](Transport& c) { c.close(static_cast<uint64_t>(AppError::closed_by_app), reason); });
}

bool Link::closed() const {
  std::lock_guard<std::mutex> lk(mu_);
  return closed_;
}

Error Link::error() const {
  std::lock_guard<std::mutex> lk(mu_);
  return error_;
}

Result<void> Link::wait_ready(Nanos timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!cv_.wait_until(lk, deadline_after(timeout), [&] { return ready_ || closed_; }))
    return timeout_error("the QUIC handshake and hello");
  if (closed_) return closed_error();
  return {};
}

Fingerprint Link::peer_fingerprint() const {
  std::lock_guard<std::mutex> lk(mu_);
  return peer_fp_.value_or(Fingerprint{});
}

Hello Link::peer_hello() const {
  std::lock_guard<std::mutex> lk(mu_);
  return peer_hello_;
}

TransportStats Link::stats() {
  std::promise<TransportStats> done;
  auto fut = done.get_future();
  transport_.execute([&done](Transport* c) { done.set_value(c ? c->stats() : TransportStats{}); });
  return fut.get();
}

// ---------------------------------------------------------------- loop side

void Link::protocol_failure(AppError code, const std::string& why) {
  if (transport_.close(static_cast<uint64_t>(code), why)) {
    // close() reports through on_closed with a local reason; keep the specific one.
    std::lock_guard<std::mutex> lk(mu_);
    error_ = make_error(code == AppError::auth ? Errc::auth : Errc::protocol, why);
  }
}

void Link::on_handshake_done() {
  Transport* c = &transport_;
  {
    std::lock_guard<std::mutex> lk(mu_);
    peer_fp_ = c->peer_fingerprint();
  }
  if (!client_) return;  // the server answers the client's hello
  auto id = c->open_stream(true);
  if (!id) {
    protocol_failure(AppError::internal, "cannot open the control stream: " + id.error().message);
    return;
  }
  Hello hello = Hello::ours(role_, to_hex(own_fp_));
  std::vector<uint8_t> bytes{static_cast<uint8_t>(StreamKind::control)};
  {
    std::lock_guard<std::mutex> lk(mu_);
    control_id_ = *id;
    auto frame = sealer_.seal(hello.encode());
    bytes.insert(bytes.end(), frame.begin(), frame.end());
  }
  kinds_[*id] = StreamKind::control;
  decoders_.emplace(*id, FrameDecoder(max_frame_));
  c->send(*id, std::move(bytes), false);
}

void Link::on_stream_data(int64_t id, std::span<const uint8_t> data, bool fin) {
  Transport* c = &transport_;
  if (c->closed()) return;
  auto kind_it = kinds_.find(id);
  if (kind_it == kinds_.end()) {
    if (data.empty()) {
      if (fin) protocol_failure(AppError::protocol, "stream " + std::to_string(id) + " ended before its kind byte");
      return;
    }
    auto kind = parse_stream_kind(data[0]);
    if (!kind) {
      protocol_failure(AppError::unknown_stream, kind.error().message);
      return;
    }
    const bool bidi = (id & 0x2) == 0;
    const bool control_ok = *kind == StreamKind::control && bidi && !client_ && control_id_ < 0;
    if ((*kind == StreamKind::control) != bidi || (*kind == StreamKind::control && !control_ok)) {
      protocol_failure(AppError::protocol,
                       std::string("unexpected ") + stream_kind_name(*kind) + " stream " + std::to_string(id));
      return;
    }
    if (*kind != StreamKind::control && !hello_received_) {
      protocol_failure(AppError::protocol, "stream opened before the hello");
      return;
    }
    kind_it = kinds_.emplace(id, *kind).first;
    c->consume(id, 1);
    data = data.subspan(1);
    if (*kind == StreamKind::control) {
      std::lock_guard<std::mutex> lk(mu_);
      control_id_ = id;
    }
    if (*kind == StreamKind::data) {
      std::lock_guard<std::mutex> lk(mu_);
      in_[id];
      new_data_.push_back(id);
      cv_.notify_all();
    } else {
      decoders_.emplace(id, FrameDecoder(max_frame_));
    }
  }

  if (kind_it->second == StreamKind::data) {
    std::lock_guard<std::mutex> lk(mu_);
    auto& s = in_[id];
    while (!data.empty()) {
      // Packets land in shared blocks that grow with the stream (up to 64 KiB):
      // bulk streams make one allocation per ~45 packets, small ones stay small.
      // This is the one copy out of QUIC's decryption buffer: readers hash
      // and write straight from these blocks (read_views).
      if (s.chunks.empty() || s.chunks.back()->size == s.chunks.back()->capacity) {
        s.received = std::min<uint64_t>(s.received * 2 + data.size(), kRecvBuffer);
        s.chunks.push_back(std::make_shared<RecvBlock>(std::max<size_t>(s.received, 1)));
      }
      RecvBlock& back = *s.chunks.back();
      const size_t n = std::min(data.size(), back.capacity - back.size);
      std::memcpy(back.bytes.get() + back.size, data.data(), n);
      back.size += n;
      s.buffered += n;
      data = data.subspan(n);
    }
    if (fin) s.fin = true;
    // Readers are woken once per batch of datagrams (wake_readers), not per
    // packet, and only once what they wait for is there.
    if (s.readers && (s.buffered >= s.want || s.fin) && std::find(wake_.begin(), wake_.end(), id) == wake_.end())
      wake_.push_back(id);
    return;
  }

  auto dec_it = decoders_.find(id);
  if (dec_it == decoders_.end()) {  // every framed stream gets one when its kind is known
    protocol_failure(AppError::internal, "no frame decoder for stream " + std::to_string(id));
    return;
  }
  FrameDecoder& dec = dec_it->second;
  auto fed = dec.feed(data);
  if (!fed) {
    protocol_failure(AppError::protocol,
                     stream_kind_name(kind_it->second) + std::string(" stream: ") + fed.error().message);
    return;
  }
  std::vector<uint8_t> body;
  while (dec.next(body)) {
    size_t wire = body.size() + kFrameHeaderSize;
    if (kind_it->second == StreamKind::control) {
      on_control_frame(std::move(body), wire);
    } else {
      std::lock_guard<std::mutex> lk(mu_);
      logs_.push_back({std::move(body), wire, id});  // credit returns in recv_log
      cv_.notify_all();
    }
    if (c->closed()) return;
  }
  if (fin && dec.mid_frame())
    protocol_failure(AppError::protocol, "stream " + std::to_string(id) + " ended inside a frame");
}

void Link::on_control_frame(std::vector<uint8_t> body, size_t wire_bytes) {
  auto opened = opener_.open(body);
  if (!opened) {
    protocol_failure(opened.error().code == Errc::auth ? AppError::auth : AppError::protocol,
                     "control frame rejected: " + opened.error().message);
    return;
  }
  if (!hello_received_) {
    transport_.consume(control_id_, wire_bytes);
    on_hello(*opened);
    return;
  }
  std::lock_guard<std::mutex> lk(mu_);
  messages_.push_back({std::move(*opened), wire_bytes});
  cv_.notify_all();
}

void Link::on_hello(const std::vector<uint8_t>& message) {
  auto m = decode_message(message);
  if (!m) {
    protocol_failure(AppError::protocol, "bad hello: " + m.error().message);
    return;
  }
  auto hello = Hello::decode(*m);
  if (!hello) {
    protocol_failure(AppError::protocol, "bad hello: " + hello.error().message);
    return;
  }
  if (hello->protocol_version != kProtocolVersion) {
    protocol_failure(AppError::version, "protocol version mismatch: peer speaks " +
                                            std::to_string(hello->protocol_version) + ", this rcp speaks " +
                                            std::to_string(kProtocolVersion) +
                                            " (install the same rcp version on both ends)");
    return;
  }
  hello_received_ = true;
  Transport* c = &transport_;
  if (!client_) {
    Hello mine = Hello::ours(role_, to_hex(own_fp_));
    std::vector<uint8_t> frame;
    {
      std::lock_guard<std::mutex> lk(mu_);
      frame = sealer_.seal(mine.encode());
    }
    c->send(control_id_, std::move(frame), false);
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    peer_hello_ = std::move(*hello);
    ready_ = true;
    cv_.notify_all();
  }
  c->session_ready();
}

void Link::on_stream_acked(int64_t id, uint64_t freed) {
  if (!own_data_.count(id)) return;
  const uint64_t limit = send_window_for(transport_.stats().cwnd, window_policy_);
  std::lock_guard<std::mutex> lk(mu_);
  send_limit_ = limit;
  unacked_ -= std::min(unacked_, freed);
  // Wake as many writers as whole hand-off units fit again, not all of
  // them: the copy's 16 source workers wait here, and waking every one per
  // acknowledgement to let one through was the source's futex churn.
  if (writers_waiting_ == 0 || unacked_ + kWriteChunk > send_limit_) return;
  const uint64_t fit = (send_limit_ - unacked_) / kWriteChunk;
  for (uint64_t i = 0; i < fit && i < static_cast<uint64_t>(writers_waiting_); ++i) credit_cv_.notify_one();
}

void Link::on_stream_closed(int64_t id, uint64_t app_error) {
  own_data_.erase(id);
  // A peer's log (or unknown) unidirectional stream needs no reader: its
  // credit returns now. Data streams return it when read (Link::read).
  if (auto k = kinds_.find(id);
      (id & 0x2) && !is_local_stream(id) && (k == kinds_.end() || k->second != StreamKind::data))
    post([](Transport& c) { c.grant_peer_uni_stream(); });  // not from inside ngtcp2's callback
  kinds_.erase(id);
  decoders_.erase(id);
  std::lock_guard<std::mutex> lk(mu_);
  auto it = in_.find(id);
  if (it != in_.end() && !it->second.fin) it->second.reset_code = app_error ? app_error : 1;
  if (it != in_.end()) it->second.cv.notify_all();
}

void Link::wake_readers() {
  if (wake_.empty()) return;
  std::lock_guard<std::mutex> lk(mu_);
  for (int64_t id : wake_)
    if (auto it = in_.find(id); it != in_.end()) it->second.cv.notify_one();
  wake_.clear();
}

void Link::on_streams_available() {
  std::lock_guard<std::mutex> lk(mu_);
  ++stream_credit_;
  cv_.notify_all();
}

void Link::on_closed(const Error& err) {
  std::lock_guard<std::mutex> lk(mu_);
  closed_ = true;
  if (error_.code == Errc::ok) error_ = err;
  cv_.notify_all();
  credit_cv_.notify_all();
  for (auto& [id, s] : in_) s.cv.notify_all();
}

}  // namespace rcp
