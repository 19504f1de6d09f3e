// How an SshSession reaches a host other than by its own TCP connection:
// through a jump host (ProxyJump: a direct-tcpip channel of an SshSession to
// the hop) or through a local command's stdin/stdout (ProxyCommand). Either
// way libssh is handed one end of a socketpair (SSH_OPTIONS_FD) and the other
// end is served here, by a relay thread or by the command.
//
// rcp does this itself rather than through libssh's own ProxyJump: libssh
// checks a hop's host key only as "known or refused" outside rcp's policy and
// messages, reads the hop's settings from the default config only, and stops
// every jump relay of the process when any one session disconnects.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace rcp {

class SshSession;

// The far end of the socketpair whose near end libssh reads and writes.
class ProxyTransport {
 public:
  virtual ~ProxyTransport() = default;
  ProxyTransport(const ProxyTransport&) = delete;
  ProxyTransport& operator=(const ProxyTransport&) = delete;

  // The end for libssh, which closes it with the session; -1 once taken.
  int take_fd() { return std::exchange(fd_, -1); }
  // Why the connection may have failed on this side (a command that exited),
  // for the error message; "" when nothing is known.
  virtual std::string failure() { return {}; }

 protected:
  ProxyTransport() = default;
  int fd_ = -1;
};

// One hop of a ProxyJump list: "[user@]host[:port]", "[user@][v6addr]:port"
// or "ssh://[user@]host[:port]".
struct JumpHop {
  std::string user;  // empty: from the config, else the local user
  std::string host;  // a name, an address or a config alias
  std::optional<uint16_t> port;
  std::string text;  // as written, for messages
};

// The hops of a ProxyJump value ("a,b,c": connect to a, through a to b, ...).
Result<std::vector<JumpHop>> parse_proxy_jump(std::string_view value);

// Opens a direct-tcpip channel from `hop` to host:port and relays it to the
// transport's fd in a thread, until either side closes or the transport is
// destroyed (which also ends `hop`).
Result<std::unique_ptr<ProxyTransport>> relay_through(std::unique_ptr<SshSession> hop, const std::string& host,
                                                      uint16_t port);

// ProxyCommand's escapes as OpenSSH expands them: %h host (after HostName),
// %p port, %r remote user, %n the host as given, %% a '%'. Others are an
// error, and so is a value expanded that holds a shell metacharacter.
Result<std::string> expand_proxy_command(std::string_view command, const std::string& host, uint16_t port,
                                         const std::string& user, const std::string& original_host);

// Runs `command` with /bin/sh, its stdin and stdout connected to the
// transport's fd; its stderr is ours (the user sees what it says). The
// command is ended (SIGTERM) and reaped when the transport is destroyed.
Result<std::unique_ptr<ProxyTransport>> spawn_proxy_command(const std::string& command);

}  // namespace rcp
