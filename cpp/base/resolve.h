// Name resolution (getaddrinfo), for the master only: glibc resolves names
// through NSS, which a static executable cannot load, so the static rcpd must
// never link this file (the build fails if it does: see CMakeLists.txt). rcpd
// is handed numeric addresses and uses Address::parse.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/result.h"

namespace rcp {

// Every IPv6 and IPv4 address of `host` (a name, or numeric, "[::1]" accepted),
// in getaddrinfo's order, without duplicates.
Result<std::vector<Address>> resolve_address(const std::string& host, uint16_t port);

}  // namespace rcp
