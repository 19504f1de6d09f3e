// SshSession / SshChannel: the master's SSH client (libssh), used only to
// start rcpd on remote hosts. Host keys are checked before any authentication
// (even "none"); a changed key never passes. An unknown key is refused unless
// the policy (StrictHostKeyChecking, resolved by rcp: see ssh_config.h) says
// to record it or the user accepts it when asked.
//
// Threads: every call on a session or its channels takes the session's lock,
// so calls are serialized (libssh sessions are not thread-safe). Blocking
// reads wait on the socket without the lock, so one thread can read a channel
// while another polls its exit status. Every wait is bounded.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/clock.h"
#include "base/result.h"
#include "ssh/ssh_config.h"

struct ssh_channel_struct;  // libssh's ssh_channel, kept out of this header

namespace rcp {

struct SshOptions {
  std::string host;              // name, address or ~/.ssh/config alias; "user@host" accepted
  std::optional<uint16_t> port;  // unset: from the config file, else 22
  std::string user;              // empty: from the config file, else the local user
  // Empty: ~/.ssh/config (and the system ssh_config) when present; otherwise
  // only this file, which must exist (like `ssh -F`).
  std::string config_file;
  std::vector<std::string> identity_files;  // extra private keys, like `ssh -i`
  std::string known_hosts_file;             // empty: from the config, else ~/.ssh/known_hosts
  bool accept_new_host_key = false;         // add an unknown key (never replaces a changed one)
  // Unknown host keys: unset = StrictHostKeyChecking from the config, else
  // yes. accept_new_host_key overrides both with accept_new.
  std::optional<HostKeyPolicy> host_key_policy;
  // Tells the user something they must see (a new host key recorded); may be empty.
  std::function<void(const std::string&)> warn;
  // Tells what the connection does, for rcp -v: the host, port and user
  // connected to, the known_hosts file checked, the authentications tried.
  // May be empty.
  std::function<void(const std::string&)> debug;
  // Asks the user a yes/no question for StrictHostKeyChecking ask; empty when
  // there is no terminal to ask on, and the key is then refused.
  std::function<bool(const std::string&)> confirm;
  // Asks the user for a key's passphrase, a password or a keyboard-interactive
  // answer: (question, echo: whether the answer may be shown) -> the answer,
  // or nullopt when the user declines. Empty when there is nobody to ask
  // (no terminal): these methods are then skipped, and the error says so.
  // BatchMode yes in the config also keeps it from being called.
  using Prompt = std::function<std::optional<std::string>(const std::string& question, bool echo)>;
  Prompt prompt;
  // PasswordAuthentication, KbdInteractiveAuthentication and BatchMode: unset
  // = from the config, else yes, yes, no. batch_mode also serves the jump hosts.
  std::optional<bool> password_authentication, kbd_interactive_authentication, batch_mode;
  // AF_INET or AF_INET6 (rcp -4 / -6): reach the host only over that family;
  // AF_UNSPEC: either. Jump hosts and a ProxyCommand make their own way.
  int address_family = 0;
  int connect_timeout_seconds = 10;  // also bounds each protocol wait (channel open, exec)
  // ProxyJump ("[user@]host[:port],..." or "none") and ProxyCommand (or
  // "none"): unset = from the config, where the first of the two given wins.
  // Jump hosts are connected with this config file, known_hosts file,
  // identity files, accept_new_host_key and callbacks, and their own config
  // entries (User, Port, StrictHostKeyChecking, their own ProxyJump...);
  // each hop's host key is checked like the target's.
  std::optional<std::string> proxy_jump;
  std::optional<std::string> proxy_command;
  int jump_depth = 0;  // internal: jump hosts nested so far (a loop in the config ends)
};

class SftpSession;
class JumpRelay;

namespace detail {
struct SshShared;  // the ssh_session and its lock, shared by a session and its channels
}

// One exec channel: the remote command's stdin, stdout and stderr.
class SshChannel {
 public:
  static constexpr size_t kMaxLine = 64 * 1024;
  static constexpr size_t kMaxStderr = 64 * 1024;  // only the latest bytes are kept

  ~SshChannel();
  SshChannel(const SshChannel&) = delete;
  SshChannel& operator=(const SshChannel&) = delete;

  // Writes all of `data` to the command's stdin, waiting for window space at
  // most `timeout` in all.
  Result<void> write_stdin(std::span<const uint8_t> data, Nanos timeout = 30'000'000'000);
  Result<void> close_stdin();  // sends EOF; idempotent

  // The next stdout line without its '\n'. At end of output a last unterminated
  // line is returned as is; after that Errc::closed. A line over kMaxLine is
  // Errc::too_large; no line within `timeout` is Errc::timeout.
  Result<std::string> read_line(Nanos timeout);
  // Raw stdout bytes (what read_line buffered comes first): how many, 0 at
  // the end of output; Errc::timeout when none came. For an rcpd's control
  // link, which runs over the channel once the hello line is read.
  Result<size_t> read_stdout(std::span<uint8_t> out, Nanos timeout);
  // Stderr received so far (the latest kMaxStderr bytes), waiting up to
  // `timeout` for some when none is buffered yet; "" when none came.
  Result<std::string> read_stderr(Nanos timeout = 0);

  bool eof();  // the command closed stdout and every stdout byte was read (or the channel is closed)
  // The command's exit status once the server has sent it, waiting up to
  // `timeout`. nullopt when not (yet) known, e.g. killed by a signal.
  std::optional<int> exit_status(Nanos timeout = 0);
  void close();  // EOF and close; idempotent, also done by the destructor

 private:
  friend class SshSession;
  SshChannel(std::shared_ptr<detail::SshShared> shared, ssh_channel_struct* raw);

  Result<void> usable_locked() const;
  Result<void> pump_locked();                             // non-blocking: process packets, move output into our buffers
  void note_exit_status_locked();                         // non-blocking
  std::optional<Result<std::string>> take_line_locked();  // nullopt: wait for more
  template <typename Ready>
  Result<void> wait_until(Nanos timeout, Ready ready, const char* what);

  std::shared_ptr<detail::SshShared> shared_;
  ssh_channel_struct* raw_;
  std::string stdout_;        // received, not yet returned by read_line
  std::string stderr_;        // received, not yet returned by read_stderr
  bool stdout_done_ = false;  // the last (unterminated) line was returned
  bool eof_sent_ = false;
  bool closed_ = false;
  std::optional<int> status_;  // kept after close()
  uint64_t received_ = 0;      // stdout + stderr bytes, to tell progress from a busy socket
};

class SshSession {
 public:
  // Connects, verifies the host key and authenticates (agent, identity_files,
  // then libssh's defaults: ~/.ssh/id_* and IdentityFile, then password and
  // keyboard-interactive when the config allows them; see ssh_auth.h). Errors:
  // Errc::ssh_connect, Errc::ssh_host_key, Errc::ssh_auth, Errc::invalid_argument.
  static Result<std::unique_ptr<SshSession>> connect(const SshOptions& options);

  // The connection stays up while this object or any of its channels lives.
  ~SshSession();
  SshSession(const SshSession&) = delete;
  SshSession& operator=(const SshSession&) = delete;

  // This end of the SSH TCP connection: the address the remote host reached
  // us at, so a remote rcpd can connect back to it. Through jump hosts: this
  // end of the first hop's connection. Fails through a ProxyCommand.
  Result<Address> local_address() const;
  Result<Address> remote_address() const;
  // Through jump hosts: the target's HostName when it is an address.
  const std::string& host() const { return host_; }  // after config: HostName
  uint16_t port() const { return port_; }
  const std::string& user() const { return user_; }

  // Runs `command` (a shell command line: quote operands with shell_quote).
  Result<std::unique_ptr<SshChannel>> exec(const std::string& command);

  // An SFTP session over this connection (a channel with the "sftp"
  // subsystem; see sftp_session.h). Errc::ssh_connect when the server offers
  // no SFTP: callers then fall back to exec.
  Result<std::unique_ptr<SftpSession>> sftp();

  // Disconnects now; channels of this session then fail with Errc::closed.
  void close();

 private:
  friend class JumpRelay;  // relays a channel of a jump host's session
  explicit SshSession(std::shared_ptr<detail::SshShared> shared) : shared_(std::move(shared)) {}
  std::shared_ptr<detail::SshShared> shared_;
  std::string host_, user_;
  uint16_t port_ = 0;
  std::optional<Address> local_, remote_;
};

}  // namespace rcp
