#include "net/udp_socket.h"

#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

namespace rcp {

namespace {

// Messages per sendmmsg/recvmmsg call, and the kernel's UDP_MAX_SEGMENTS on
// older kernels (newer ones allow 128; 64 is safe everywhere).
constexpr size_t kBatch = 64;

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

bool is_wildcard(const Address& a) {
  if (a.family() == AF_INET) return reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr.s_addr == INADDR_ANY;
  return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr);
}

// Asks for `bytes` of socket buffer. The FORCE variant ignores rmem_max/wmem_max
// but needs CAP_NET_ADMIN; otherwise the kernel silently clamps the plain option.
Result<void> set_buffer(int fd, int force_opt, int opt, int bytes, const char* name) {
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) == 0) return {};
  if (setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes) == 0) return {};
  return errno_error(std::string("setsockopt ") + name, errno);
}

Result<void> configure(int fd, const Address& local, const UdpOptions& opts) {
  if (local.family() == AF_INET6) {
    // Only the wildcard serves both families; a specific v6 address must not
    // also claim the v4 port space.
    const int v6only = is_wildcard(local) ? 0 : 1;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0)
      return errno_error("setsockopt IPV6_V6ONLY", errno);
  }
  // Don't fragment: QUIC runs its own path-MTU discovery, and an oversized
  // probe must fail (and count as lost) rather than arrive in fragments.
  const int probe4 = IP_PMTUDISC_PROBE, probe6 = IPV6_PMTUDISC_PROBE;
  if (local.family() == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &probe6, sizeof probe6);
    if (is_wildcard(local)) setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe4, sizeof probe4);
  } else {
    setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe4, sizeof probe4);
  }
  if (opts.buffer_bytes > 0) {
    if (auto r = set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, opts.buffer_bytes, "SO_RCVBUF"); !r) return r;
    if (auto r = set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, opts.buffer_bytes, "SO_SNDBUF"); !r) return r;
  }
  return {};
}

// Binds the first free port of `ports` in order; only EADDRINUSE moves on.
Result<void> bind_in_range(int fd, const Address& local, const PortRange& ports) {
  Address a = local;
  if (ports.any()) {
    a.set_port(0);
    if (::bind(fd, a.sa(), a.len) == 0) return {};
    return errno_error("bind " + a.to_string(), errno);
  }
  for (const PortRange::Span& s : ports.spans()) {
    for (uint32_t p = s.first; p <= s.last; ++p) {  // uint32_t: no wrap at 65535
      a.set_port(static_cast<uint16_t>(p));
      if (::bind(fd, a.sa(), a.len) == 0) return {};
      if (errno != EADDRINUSE) return errno_error("bind " + a.to_string(), errno);
    }
  }
  return make_error(Errc::io,
                    "bind " + local.host_string() + ": no free UDP port in " + ports.to_string() + " (all in use)");
}

// getsockopt succeeds only on kernels that know UDP_SEGMENT (4.18+).
bool probe_gso(int fd) {
  int value = 0;
  socklen_t len = sizeof value;
  return getsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, &len) == 0;
}

msghdr make_msghdr(const Address& to, iovec* iov) {
  msghdr m{};
  m.msg_name = const_cast<sockaddr*>(to.sa());
  m.msg_namelen = to.len;
  m.msg_iov = iov;
  m.msg_iovlen = 1;
  return m;
}

enum class Outcome { done, would_block, gso_refused, failed };

// Sends data[done..] as GSO super-packets of at most kBatch segments. Advances
// `done` past every chunk the kernel took; sets `err` on failed.
Outcome send_gso(int fd, const Address& to, std::span<const uint8_t> data, size_t seg, size_t& done, int& err) {
  const size_t segs_per_chunk = std::clamp<size_t>(kMaxGsoBytes / seg, 1, kBatch);
  while (done < data.size()) {
    const size_t chunk = std::min(data.size() - done, seg * segs_per_chunk);
    iovec iov{const_cast<uint8_t*>(data.data() + done), chunk};
    msghdr m = make_msghdr(to, &iov);
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    const uint16_t seg16 = static_cast<uint16_t>(seg);
    std::memcpy(CMSG_DATA(cm), &seg16, sizeof seg16);

    if (sendmsg(fd, &m, 0) >= 0 || errno == ECONNREFUSED) {
      // ECONNREFUSED reports an ICMP error left by an *earlier* packet; this
      // chunk is dropped with it, which QUIC recovers as ordinary loss.
      done += chunk;
      continue;
    }
    if (would_block(errno)) return Outcome::would_block;
    // EIO: device without checksum offload; EINVAL: segment size/count the
    // kernel will not segment. Either way plain sends still work.
    if (errno == EIO || errno == EINVAL) return Outcome::gso_refused;
    err = errno;
    return Outcome::failed;
  }
  return Outcome::done;
}

// Sends data[done..] as individual datagrams of `seg` bytes via sendmmsg.
Outcome send_each(int fd, const Address& to, std::span<const uint8_t> data, size_t seg, size_t& done, int& err) {
  mmsghdr msgs[kBatch];
  iovec iovs[kBatch];
  while (done < data.size()) {
    size_t n = 0;
    for (size_t off = done; off < data.size() && n < kBatch; off += seg, ++n) {
      iovs[n] = iovec{const_cast<uint8_t*>(data.data() + off), std::min(seg, data.size() - off)};
      msgs[n] = mmsghdr{make_msghdr(to, &iovs[n]), 0};
    }
    const int sent = sendmmsg(fd, msgs, static_cast<unsigned>(n), 0);
    if (sent > 0) {
      for (int i = 0; i < sent; ++i) done += iovs[i].iov_len;
      continue;
    }
    if (sent < 0 && errno == ECONNREFUSED) {
      done += iovs[0].iov_len;  // stale ICMP error; this datagram is lost (see send_gso)
      continue;
    }
    if (sent < 0 && would_block(errno)) return Outcome::would_block;
    err = sent < 0 ? errno : EIO;
    return Outcome::failed;
  }
  return Outcome::done;
}

}  // namespace

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

UdpSocket::UdpSocket(UdpSocket&& o) noexcept : fd_(o.fd_), local_(o.local_), gso_(o.gso_) { o.fd_ = -1; }

UdpSocket& UdpSocket::operator=(UdpSocket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    local_ = o.local_;
    gso_ = o.gso_;
    o.fd_ = -1;
  }
  return *this;
}

Result<UdpSocket> UdpSocket::bind(const Address& local, const PortRange& ports, const UdpOptions& opts) {
  if (local.family() != AF_INET && local.family() != AF_INET6)
    return make_error(Errc::invalid_argument, "bind: local address is neither IPv4 nor IPv6");
  UdpSocket sock;  // owns the fd from here, so every error path closes it
  sock.fd_ = ::socket(local.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (sock.fd_ < 0) return errno_error("socket", errno);
  if (auto r = configure(sock.fd_, local, opts); !r) return r.error();
  if (auto r = bind_in_range(sock.fd_, local, ports); !r) return r.error();

  sock.local_.len = sizeof sock.local_.storage;
  if (getsockname(sock.fd_, sock.local_.sa(), &sock.local_.len) != 0) return errno_error("getsockname", errno);
  sock.gso_ = opts.gso && probe_gso(sock.fd_);
  return sock;
}

Result<SendStatus> UdpSocket::send(const Address& to, std::span<const uint8_t> data, size_t segment_size) {
  if (fd_ < 0) return make_error(Errc::closed, "send: socket is closed");
  if (data.empty()) {  // an empty datagram is legal UDP; the batch loops below would skip it
    if (::sendto(fd_, data.data(), 0, 0, to.sa(), to.len) >= 0 || errno == ECONNREFUSED) return SendStatus::sent;
    if (would_block(errno)) return SendStatus::would_block;
    return errno_error("sendto " + to.to_string(), errno);
  }
  if (segment_size == 0 || segment_size > data.size()) segment_size = data.size();  // one datagram

  size_t done = 0;
  int err = 0;
  Outcome out = Outcome::gso_refused;
  // The cmsg carries a uint16_t, and no segment may exceed one UDP packet.
  if (gso_ && segment_size < data.size() && segment_size <= kMaxGsoBytes) {
    out = send_gso(fd_, to, data, segment_size, done, err);
    if (out == Outcome::gso_refused) gso_ = false;  // for good: the route/device will not change its mind
  }
  if (out == Outcome::gso_refused) out = send_each(fd_, to, data, segment_size, done, err);

  switch (out) {
    case Outcome::done: return SendStatus::sent;
    case Outcome::would_block:
      // Nothing sent: the caller retries the whole batch. Part sent: report it
      // sent and drop the rest, which QUIC detects and retransmits as loss.
      return done == 0 ? SendStatus::would_block : SendStatus::sent;
    case Outcome::gso_refused:
    case Outcome::failed: break;
  }
  return errno_error("send to " + to.to_string(), err);
}

Result<size_t> UdpSocket::recv(std::span<uint8_t> buffer, size_t slot_size, std::span<Datagram> out) {
  if (fd_ < 0) return make_error(Errc::closed, "recv: socket is closed");
  if (slot_size == 0) return make_error(Errc::invalid_argument, "recv: slot_size is 0");
  const size_t max = std::min(out.size(), buffer.size() / slot_size);

  mmsghdr msgs[kBatch];
  iovec iovs[kBatch];
  sockaddr_storage names[kBatch];
  size_t count = 0;  // datagrams kept, in slots [0, count)
  int refused = 0;
  while (count < max) {
    const size_t want = std::min(kBatch, max - count);
    for (size_t i = 0; i < want; ++i) {
      iovs[i] = iovec{buffer.data() + (count + i) * slot_size, slot_size};
      msgs[i] = mmsghdr{};
      msgs[i].msg_hdr.msg_name = &names[i];
      msgs[i].msg_hdr.msg_namelen = sizeof names[i];
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int got = recvmmsg(fd_, msgs, static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
    if (got < 0) {
      if (would_block(errno) || errno == EINTR) break;
      // A stale ICMP error from an earlier send, consumed by this call: retry.
      if (errno == ECONNREFUSED && ++refused < 8) continue;
      if (count > 0) break;  // hand over what we have; the error will repeat
      return errno_error("recvmmsg", errno);
    }
    const size_t first_slot = count;
    for (int i = 0; i < got; ++i) {
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) continue;  // larger than a slot: drop, never deliver a fragment
      if (count != first_slot + i)                          // close the gap a dropped datagram left
        std::memmove(buffer.data() + count * slot_size, iovs[i].iov_base, msgs[i].msg_len);
      Datagram& d = out[count++];
      d.len = msgs[i].msg_len;
      d.from = Address{};
      d.from.len = std::min<socklen_t>(msgs[i].msg_hdr.msg_namelen, sizeof d.from.storage);
      std::memcpy(&d.from.storage, &names[i], d.from.len);
    }
    if (static_cast<size_t>(got) < want) break;  // queue drained
  }
  return count;
}

}  // namespace rcp
