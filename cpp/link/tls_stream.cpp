#include "link/tls_stream.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace rcp {

namespace {

// One TLS record's plaintext at most per call: a write interrupted by a full
// socket is retried with the same arguments, as the library requires.
constexpr size_t kMaxWriteSlice = 16u << 10;

}  // namespace

Result<std::unique_ptr<TlsStream>> TlsStream::create(UniqueFd socket, std::shared_ptr<TlsContext> ctx) {
  if (ctx->carrier() != TlsCarrier::tcp) return make_error(Errc::invalid_argument, "TlsStream needs a TCP TLS context");
  std::unique_ptr<TlsStream> s(new TlsStream());
  s->wake_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (s->wake_.get() < 0) return errno_error("eventfd", errno);
  auto session = TlsSession::create(std::move(ctx), nullptr);
  if (!session) return session.error();
  s->session_ = std::move(*session);
  s->fd_ = std::move(socket);
  s->session_->set_fd(s->fd_.get());
  return s;
}

TlsStream::~TlsStream() = default;

Result<void> TlsStream::wait(TlsSession::IoWait what) {
  const short events = what == TlsSession::IoWait::write ? POLLOUT : POLLIN;
  for (;;) {
    if (shut_.load()) return make_error(Errc::closed, "link stream shut down");
    int ms = -1;
    if (const auto d = deadline_.load(); d != 0) {
      const auto left = std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(d)) -
                        std::chrono::steady_clock::now();
      const auto left_ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
      if (left_ms <= 0) return make_error(Errc::timeout, "TLS peer: no answer in time");
      ms = static_cast<int>(std::min<int64_t>(left_ms, 60000));
    }
    pollfd fds[2] = {{fd_.get(), events, 0}, {wake_.get(), POLLIN, 0}};
    const int n = ::poll(fds, 2, ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("poll", errno);
    if (fds[1].revents) return make_error(Errc::closed, "link stream shut down");
    if (fds[0].revents) return {};  // ready, or an error the next call reports
  }
}

Result<void> TlsStream::handshake(Nanos timeout) {
  set_deadline(std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout));
  for (;;) {
    Result<TlsSession::IoWait> step = make_error(Errc::closed, "link stream shut down");
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!shut_.load()) step = session_->handshake_step();
    }
    if (!step) return step.error();
    if (*step == TlsSession::IoWait::none) break;
    if (auto r = wait(*step); !r) {
      if (r.error().code == Errc::timeout) return make_error(Errc::timeout, "TLS handshake: no answer in time");
      return r;
    }
  }
  clear_deadline();
  std::lock_guard<std::mutex> lk(mu_);
  auto fp = session_->verify_peer();  // the second, independent pin check
  if (!fp) return fp.error();
  peer_fp_ = *fp;
  return {};
}

Result<void> TlsStream::wait_readable(Nanos timeout) {
  set_deadline(std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout));
  auto r = wait(TlsSession::IoWait::read);
  clear_deadline();
  return r;
}

Result<size_t> TlsStream::read_some(std::span<uint8_t> out) {
  for (;;) {
    Result<TlsSession::Io> io = make_error(Errc::closed, "link stream shut down");
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!shut_.load()) io = session_->read(out);
    }
    if (!io) return io.error();
    if (io->bytes > 0 || io->end) return io->bytes;
    if (auto r = wait(io->wait); !r) return r.error();
  }
}

Result<void> TlsStream::read_exact(std::span<uint8_t> out) {
  while (!out.empty()) {
    auto n = read_some(out);
    if (!n) return n.error();
    if (*n == 0) return make_error(Errc::closed, "the peer closed the connection");
    out = out.subspan(*n);
  }
  return {};
}

Result<void> TlsStream::write_all(std::span<const uint8_t> data) {
  while (!data.empty()) {
    const auto slice = data.first(std::min(data.size(), kMaxWriteSlice));
    Result<TlsSession::Io> io = make_error(Errc::closed, "link stream shut down");
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!shut_.load()) io = session_->write(slice);
    }
    if (!io) return io.error();
    if (io->bytes > 0) {
      data = data.subspan(io->bytes);
      continue;
    }
    if (auto r = wait(io->wait); !r) return r;
  }
  return {};
}

void TlsStream::shutdown() {
  shut_ = true;
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

}  // namespace rcp
