// Address: an IPv4 or IPv6 socket address (value type).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace rcp {

struct Address {
  sockaddr_storage storage{};
  socklen_t len = 0;

  // Numeric host only ("127.0.0.1", "::1", "[::1]" accepted); no DNS, no NSS,
  // so the static rcpd can use it. Names are resolved by base/resolve.h.
  static Result<Address> parse(std::string_view host, uint16_t port);

  int family() const { return storage.ss_family; }
  uint16_t port() const;
  void set_port(uint16_t port);
  std::string host_string() const;  // "127.0.0.1" or "::1"
  std::string ip_bytes() const;     // the raw address without the port: one key per host
  std::string to_string() const;    // "127.0.0.1:443" or "[::1]:443"
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&storage); }
  bool operator==(const Address& o) const;  // family, address bytes and port
};

}  // namespace rcp
