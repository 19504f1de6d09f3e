#include "link/link_tunnel.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace rcp {

namespace {

// Blocking Link calls wait this long at most, so shutdown()/stop() is seen
// within it; data wakes a waiting call at once.
constexpr Nanos kSlice = 100 * kMillis;
// At most one hand-off unit of Link::write: a write that times out has
// queued nothing, so it can simply be retried.
constexpr size_t kPiece = 64u << 10;

Error shut_error() { return make_error(Errc::closed, "relay stream shut down"); }

bool past(std::chrono::steady_clock::time_point deadline) { return std::chrono::steady_clock::now() >= deadline; }

std::chrono::steady_clock::time_point after(Nanos t) {
  return std::chrono::steady_clock::now() + std::chrono::nanoseconds(t);
}

// Writes all of `data` to stream `id` of `link`, a piece at a time, until
// done, the link fails or `stop` is set.
Result<void> write_pieces(Link& link, int64_t id, std::span<const uint8_t> data, const std::atomic<bool>& stop) {
  while (!data.empty()) {
    if (stop.load()) return shut_error();
    const size_t n = std::min(data.size(), kPiece);
    auto r = link.write(id, data.first(n), kSlice);
    if (!r && r.error().code != Errc::timeout) return r;
    if (r) data = data.subspan(n);
  }
  return {};
}

// The first data stream the peer opens on `link`, waiting until `deadline`.
Result<int64_t> accept_until(Link& link, std::chrono::steady_clock::time_point deadline,
                             const std::atomic<bool>& stop) {
  for (;;) {
    if (stop.load()) return shut_error();
    auto id = link.accept_data(kSlice);
    if (id || id.error().code != Errc::timeout) return id;
    if (past(deadline)) return make_error(Errc::timeout, "no relay stream was opened in time");
  }
}

}  // namespace

// ---------------------------------------------------------------- TunnelStream

Result<std::unique_ptr<TunnelStream>> TunnelStream::open(std::shared_ptr<Link> link, Nanos accept_timeout) {
  auto out = link->open_data();
  if (!out) return out.error();
  return std::make_unique<TunnelStream>(std::move(link), *out, accept_timeout);
}

TunnelStream::TunnelStream(std::shared_ptr<Link> link, int64_t out, Nanos accept_timeout)
    : link_(std::move(link)), out_(out), accept_timeout_(accept_timeout) {}

TunnelStream::~TunnelStream() {
  if (!link_->closed()) (void)link_->finish(out_);
}

Result<size_t> TunnelStream::read_some(std::span<uint8_t> out) {
  if (in_ < 0) {
    auto id = accept_until(*link_, after(accept_timeout_), shut_);
    if (!id) {
      if (id.error().code == Errc::timeout) return make_error(Errc::timeout, "the master opened no relay stream");
      return make_error(id.error().code, "the relay through the master: " + id.error().message);
    }
    in_ = *id;
  }
  for (;;) {
    if (shut_.load()) return shut_error();
    auto n = ended_ ? Result<size_t>(size_t{0}) : link_->read(in_, out, kSlice);
    if (n && *n == 0) {
      ended_ = true;  // the Link has forgotten the stream
      return make_error(Errc::closed,
                        "the relay through the master ended: the other rcpd, or its link to the master, is gone");
    }
    if (n) return *n;
    if (n.error().code != Errc::timeout)
      return make_error(n.error().code, "the relay through the master: " + n.error().message);
  }
}

Result<void> TunnelStream::write_all(std::span<const uint8_t> data) {
  auto r = write_pieces(*link_, out_, data, shut_);
  if (!r && !shut_.load()) return make_error(r.error().code, "the relay through the master: " + r.error().message);
  return r;
}

void TunnelStream::shutdown() { shut_ = true; }

// ---------------------------------------------------------------- TunnelSplice

std::unique_ptr<TunnelSplice> TunnelSplice::start(std::shared_ptr<Link> a, std::shared_ptr<Link> b,
                                                  Nanos accept_timeout) {
  auto s = std::make_unique<TunnelSplice>(std::move(a), std::move(b), accept_timeout);
  TunnelSplice* p = s.get();
  p->pumps_[0] = std::thread([p] { p->pump(*p->a_, *p->b_, 0); });
  p->pumps_[1] = std::thread([p] { p->pump(*p->b_, *p->a_, 1); });
  return s;
}

TunnelSplice::TunnelSplice(std::shared_ptr<Link> a, std::shared_ptr<Link> b, Nanos accept_timeout)
    : a_(std::move(a)), b_(std::move(b)), accept_timeout_(accept_timeout) {}

TunnelSplice::~TunnelSplice() {
  stop();
  for (auto& t : pumps_)
    if (t.joinable()) t.join();
}

void TunnelSplice::stop() { stop_ = true; }

bool TunnelSplice::wait(Nanos timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  return done_cv_.wait_for(lk, std::chrono::nanoseconds(timeout), [&] { return running_ == 0; });
}

Error TunnelSplice::error() const {
  std::lock_guard<std::mutex> lk(mu_);
  return error_;
}

void TunnelSplice::fail(const Error& e) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (error_.code == Errc::ok) error_ = e;
  }
  stop_ = true;  // a tunnel works both ways or not at all: end the other direction too
}

void TunnelSplice::pump(Link& from, Link& to, int direction) {
  Result<void> outcome;
  int64_t out = -1;
  auto in = accept_until(from, after(accept_timeout_), stop_);
  if (!in) outcome = in.error();
  if (in) {
    auto opened = to.open_data();
    if (opened)
      out = *opened;
    else
      outcome = opened.error();
  }
  // The buffer is the pump's whole memory: flow control holds the rest in
  // the rcpds (a side that stops reading stops this copy, then its sender).
  std::vector<uint8_t> buf(out >= 0 ? kPiece : 0);
  while (out >= 0 && !stop_.load()) {
    auto n = from.read(*in, buf, kSlice);
    if (!n && n.error().code == Errc::timeout && to.closed()) {
      outcome = to.error();  // the side this direction feeds is gone
      break;
    }
    if (!n && n.error().code == Errc::timeout) continue;
    if (!n) {
      outcome = n.error();
      break;
    }
    if (*n == 0) break;  // the side ended its stream: end ours
    outcome = write_pieces(to, out, std::span<const uint8_t>(buf.data(), *n), stop_);
    if (!outcome) break;
    bytes_[direction] += *n;
  }
  // Ended, failed or stopped: the other side sees the end of its tunnel.
  if (out >= 0 && !to.closed()) (void)to.finish(out);
  if (!outcome && !stop_.load()) fail(outcome.error());
  std::lock_guard<std::mutex> lk(mu_);
  --running_;
  done_cv_.notify_all();
}

}  // namespace rcp
