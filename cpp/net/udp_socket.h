// UdpSocket: a non-blocking UDP socket (RAII fd) with large buffers, batched
// receive, and GSO send where the kernel allows it (clean fallback otherwise).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/address.h"
#include "base/port_range.h"
#include "base/result.h"

namespace rcp {

struct UdpOptions {
  int buffer_bytes = 8 << 20;  // SO_SNDBUF/SO_RCVBUF wanted (FORCE tried first when root)
  bool gso = true;             // try UDP_SEGMENT
};

struct Datagram {
  Address from;
  size_t len = 0;  // bytes in the caller's buffer slot
};

// The most bytes one GSO send may carry: a UDP datagram's length field over IPv4.
constexpr size_t kMaxGsoBytes = 65507;

enum class SendStatus { sent, would_block };

class UdpSocket {
 public:
  UdpSocket() = default;
  ~UdpSocket();
  UdpSocket(UdpSocket&& o) noexcept;
  UdpSocket& operator=(UdpSocket&& o) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // Binds to `local` (its port ignored) on the first free port of `ports`
  // (any port when ports.any()). An IPv6 wildcard also accepts IPv4 (v6only off).
  static Result<UdpSocket> bind(const Address& local, const PortRange& ports, const UdpOptions& opts);

  int fd() const { return fd_; }
  const Address& local_address() const { return local_; }
  bool gso_enabled() const { return gso_; }

  // Sends `data` to `to`. When segment_size < data.size() it is a GSO batch of
  // datagrams of segment_size bytes each (the last may be shorter); without
  // GSO support the batch is sent one datagram at a time. If the kernel
  // refuses GSO at run time (EIO), GSO is switched off and the batch resent.
  Result<SendStatus> send(const Address& to, std::span<const uint8_t> data, size_t segment_size);

  // Receives up to out.size() datagrams into consecutive slots of `buffer`,
  // each slot `slot_size` bytes (recvmmsg). Returns the number received; 0 when
  // nothing is pending (EAGAIN).
  Result<size_t> recv(std::span<uint8_t> buffer, size_t slot_size, std::span<Datagram> out);

 private:
  int fd_ = -1;
  Address local_;
  bool gso_ = false;
};

}  // namespace rcp
