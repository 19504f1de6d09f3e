#include "base/resolve.h"

#include <netdb.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rcp {

Result<std::vector<Address>> resolve_address(const std::string& host, uint16_t port) {
  std::string name = host;
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_protocol = IPPROTO_UDP;
  // No AI_ADDRCONFIG: it hides ::1/127.0.0.1 when no non-loopback address of
  // that family is configured (e.g. inside a bare network namespace).
  hints.ai_flags = AI_NUMERICSERV;
  const std::string service = std::to_string(port);

  addrinfo* list = nullptr;
  const int rc = getaddrinfo(name.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) {
    const std::string why = rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc);
    return make_error(Errc::io, "cannot resolve \"" + host + "\": " + why);
  }

  std::vector<Address> out;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    Address a;
    std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
    a.len = ai->ai_addrlen;
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);  // keep getaddrinfo's order
  }
  freeaddrinfo(list);
  if (out.empty()) return make_error(Errc::io, "cannot resolve \"" + host + "\": no IPv4 or IPv6 address");
  return out;
}

}  // namespace rcp
