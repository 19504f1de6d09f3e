// TCP sockets for the TCP+TLS data link (link/tls_stream.h): a listener on
// a chosen port, connect with a deadline, and the per-connection options
// (no Nagle delay, the kernel's congestion control by name).
#pragma once

#include <string>

#include "base/address.h"
#include "base/clock.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace rcp {

// A listening socket on `local` (its port exactly: the source pairs it with
// its UDP port). The wildcard "::" serves IPv4 as well. Non-blocking.
Result<UniqueFd> tcp_listen(const Address& local, int backlog = 64);
// The next pending connection, non-blocking; Errc::timeout when none waits.
Result<UniqueFd> tcp_accept(int listen_fd, Address* peer = nullptr);
// A connected, non-blocking socket with TCP_NODELAY; Errc::timeout when the
// peer did not answer within `timeout` (a dropped SYN), Errc::io otherwise.
Result<UniqueFd> tcp_connect(const Address& remote, Nanos timeout);
Result<void> set_tcp_nodelay(int fd);
// TCP_CONGESTION: "bbr", "cubic", "reno"... Fails when the kernel lacks it
// (or does not allow it to this user); the socket keeps the default then.
Result<void> set_tcp_congestion(int fd, const std::string& name);
std::string tcp_congestion(int fd);  // "" when unknown
Result<Address> local_address_of(int fd);

}  // namespace rcp
