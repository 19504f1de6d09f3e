#include "net/tcp_socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace rcp {

namespace {

bool is_wildcard6(const Address& a) {
  return a.family() == AF_INET6 &&
         IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr);
}

Result<UniqueFd> new_socket(int family) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return errno_error("socket(TCP)", errno);
  return fd;
}

}  // namespace

Result<UniqueFd> tcp_listen(const Address& local, int backlog) {
  auto fd = new_socket(local.family());
  if (!fd) return fd.error();
  const int one = 1;
  // A port the last copy's connections still hold in TIME_WAIT is free to listen on.
  setsockopt(fd->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (local.family() == AF_INET6) {
    const int v6only = is_wildcard6(local) ? 0 : 1;  // as the UDP socket: only the wildcard serves both
    if (setsockopt(fd->get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0)
      return errno_error("setsockopt IPV6_V6ONLY", errno);
  }
  if (::bind(fd->get(), local.sa(), local.len) != 0) return errno_error("bind TCP " + local.to_string(), errno);
  if (::listen(fd->get(), backlog) != 0) return errno_error("listen", errno);
  return std::move(*fd);
}

Result<UniqueFd> tcp_accept(int listen_fd, Address* peer) {
  for (;;) {
    Address a;
    a.len = sizeof a.storage;
    const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&a.storage), &a.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (peer) *peer = a;
      UniqueFd out(fd);
      (void)set_tcp_nodelay(out.get());
      return out;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return make_error(Errc::timeout, "no pending connection");
    return errno_error("accept", errno);
  }
}

Result<UniqueFd> tcp_connect(const Address& remote, Nanos timeout) {
  auto fd = new_socket(remote.family());
  if (!fd) return fd.error();
  (void)set_tcp_nodelay(fd->get());
  if (::connect(fd->get(), remote.sa(), remote.len) == 0) return std::move(*fd);
  if (errno != EINPROGRESS) return errno_error("connect " + remote.to_string(), errno);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return make_error(Errc::timeout, "TCP connect to " + remote.to_string() + ": no answer within " +
                                           std::to_string(timeout / kMillis) + " ms");
    pollfd p{fd->get(), POLLOUT, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("poll", errno);
    if (n == 0) continue;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd->get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno_error("getsockopt SO_ERROR", errno);
    if (err != 0) return errno_error("TCP connect to " + remote.to_string(), err);
    return std::move(*fd);
  }
}

Result<void> set_tcp_nodelay(int fd) {
  const int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) return errno_error("TCP_NODELAY", errno);
  return {};
}

Result<void> set_tcp_congestion(int fd, const std::string& name) {
  if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name.data(), static_cast<socklen_t>(name.size())) != 0)
    return errno_error("TCP_CONGESTION " + name, errno);
  return {};
}

std::string tcp_congestion(int fd) {
  char buf[32] = {};
  socklen_t len = sizeof buf;
  if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, buf, &len) != 0) return "";
  return std::string(buf, strnlen(buf, len));
}

Result<Address> local_address_of(int fd) {
  Address a;
  a.len = sizeof a.storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage), &a.len) != 0) return errno_error("getsockname", errno);
  return a;
}

}  // namespace rcp
