#include "base/address.h"

#include <arpa/inet.h>
#include <net/if.h>

#include <charconv>
#include <cstring>

namespace rcp {

namespace {

// "[::1]" -> "::1"; anything else is returned unchanged.
std::string_view strip_brackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
  return host;
}

// IPv6 zone ("fe80::1%eth0" or "%2") -> interface index; 0 when unknown.
uint32_t parse_scope(const std::string& zone) {
  uint32_t index = 0;
  auto [ptr, ec] = std::from_chars(zone.data(), zone.data() + zone.size(), index);
  if (ec == std::errc() && ptr == zone.data() + zone.size()) return index;
  return if_nametoindex(zone.c_str());
}

}  // namespace

Result<Address> Address::parse(std::string_view host, uint16_t port) {
  const bool bracketed = strip_brackets(host).size() != host.size();
  const std::string text(strip_brackets(host));
  Address a;

  sockaddr_in v4{};
  if (!bracketed && inet_pton(AF_INET, text.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    std::memcpy(&a.storage, &v4, sizeof v4);
    a.len = sizeof v4;
    return a;
  }

  sockaddr_in6 v6{};
  const size_t percent = text.find('%');
  const std::string bare = text.substr(0, percent);
  if (inet_pton(AF_INET6, bare.c_str(), &v6.sin6_addr) == 1) {
    if (percent != std::string::npos) {
      v6.sin6_scope_id = parse_scope(text.substr(percent + 1));
      if (v6.sin6_scope_id == 0)
        return make_error(Errc::invalid_argument, "unknown IPv6 zone in \"" + std::string(host) + "\"");
    }
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    std::memcpy(&a.storage, &v6, sizeof v6);
    a.len = sizeof v6;
    return a;
  }
  return make_error(Errc::invalid_argument, "not a numeric IP address: \"" + std::string(host) + "\"");
}

uint16_t Address::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

void Address::set_port(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
}

std::string Address::host_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
    return buf;
  }
  if (family() == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    std::string out = buf;
    if (v6->sin6_scope_id != 0) out += '%' + std::to_string(v6->sin6_scope_id);  // parse() accepts it back
    return out;
  }
  return "<unspecified>";
}

std::string Address::to_string() const {
  const std::string p = std::to_string(port());
  if (family() == AF_INET6) return "[" + host_string() + "]:" + p;
  if (family() == AF_INET) return host_string() + ":" + p;
  return host_string();
}

bool Address::operator==(const Address& o) const {
  if (family() != o.family() || port() != o.port()) return false;
  if (family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(&o.storage)->sin_addr.s_addr;
  }
  if (family() == AF_INET6) {
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&o.storage)->sin6_addr, sizeof(in6_addr)) == 0;
  }
  return true;  // both unspecified
}

std::string Address::ip_bytes() const {
  if (family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa());
    return std::string(reinterpret_cast<const char*>(&in->sin_addr), sizeof in->sin_addr);
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa());
  return std::string(reinterpret_cast<const char*>(&in6->sin6_addr), sizeof in6->sin6_addr);
}

}  // namespace rcp
