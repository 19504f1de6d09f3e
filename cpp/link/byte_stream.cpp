#include "link/byte_stream.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace rcp {

namespace {

Error os_error(const char* what) { return make_error(Errc::io, std::string(what) + ": " + std::strerror(errno)); }

}  // namespace

FdStream::FdStream(UniqueFd in, UniqueFd out) : in_(std::move(in)), out_(std::move(out)) {}

Result<std::unique_ptr<FdStream>> FdStream::create(UniqueFd in, UniqueFd out) {
  auto s = std::make_unique<FdStream>(std::move(in), std::move(out));
  s->wake_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (s->wake_.get() < 0) return os_error("eventfd");
  // Non-blocking, so a blocked call can always be woken through poll().
  for (int fd : {s->in_.get(), s->out_.get()}) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return os_error("fcntl");
  }
  return s;
}

Result<void> FdStream::wait(int fd, short events) {
  for (;;) {
    if (shut_.load()) return make_error(Errc::closed, "link stream shut down");
    pollfd fds[2] = {{fd, events, 0}, {wake_.get(), POLLIN, 0}};
    int n = poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error("poll");
    if (fds[1].revents) return make_error(Errc::closed, "link stream shut down");
    if (fds[0].revents) return {};
  }
}

Result<size_t> FdStream::read_some(std::span<uint8_t> out) {
  for (;;) {
    ssize_t n = ::read(in_.get(), out.data(), out.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return make_error(Errc::closed, "the peer closed the link (connection reset)");
    if (errno != EAGAIN && errno != EWOULDBLOCK) return os_error("read");
    if (auto r = wait(in_.get(), POLLIN); !r) return r.error();
  }
}

Result<void> FdStream::write_all(std::span<const uint8_t> data) {
  while (!data.empty()) {
    ssize_t n = ::write(out_.get(), data.data(), data.size());
    if (n > 0) {
      data = data.subspan(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // The reader may not have seen the end yet: say what it would.
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
      return make_error(Errc::closed, "the peer closed the link (its end of the stream is gone)");
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return os_error("write");
    if (auto r = wait(out_.get(), POLLOUT); !r) return r;
  }
  return {};
}

void FdStream::shutdown() {
  shut_ = true;
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

}  // namespace rcp
