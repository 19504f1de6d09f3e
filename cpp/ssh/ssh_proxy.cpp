#include "ssh/ssh_proxy.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <thread>

#include "ssh/ssh_session.h"
#include "ssh/ssh_shared.h"

namespace rcp {

namespace {

constexpr int kRelayPollMs = 100;  // how soon a relay notices it is being stopped

struct FdPair {
  int a = -1, b = -1;
  ~FdPair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
};

Result<void> make_socketpair(FdPair& p) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return make_error(Errc::ssh_connect, std::string("ssh: socketpair: ") + std::strerror(errno));
  p.a = fds[0];
  p.b = fds[1];
  return {};
}

Result<uint16_t> parse_port(std::string_view s, std::string_view hop) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value == 0 || value > 65535)
    return make_error(Errc::invalid_argument,
                      "ProxyJump: bad port '" + std::string(s) + "' in '" + std::string(hop) + "'");
  return static_cast<uint16_t>(value);
}

Result<JumpHop> parse_hop(std::string_view text) {
  JumpHop hop;
  hop.text = std::string(text);
  std::string_view rest = text;
  if (rest.rfind("ssh://", 0) == 0) rest.remove_prefix(6);
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    hop.user = std::string(rest.substr(0, at));
    rest.remove_prefix(at + 1);
  }
  if (!rest.empty() && rest[0] == '[') {  // [v6addr]:port
    const size_t close = rest.find(']');
    if (close == std::string_view::npos)
      return make_error(Errc::invalid_argument, "ProxyJump: unclosed '[' in '" + hop.text + "'");
    hop.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return make_error(Errc::invalid_argument, "ProxyJump: bad host '" + hop.text + "'");
      auto port = parse_port(rest.substr(1), hop.text);
      if (!port) return port.error();
      hop.port = *port;
    }
  } else if (const size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    hop.host = std::string(rest.substr(0, colon));
    auto port = parse_port(rest.substr(colon + 1), hop.text);
    if (!port) return port.error();
    hop.port = *port;
  } else {
    hop.host = std::string(rest);
  }
  if (hop.host.empty() || (hop.user.empty() && text.find('@') != std::string_view::npos))
    return make_error(Errc::invalid_argument, "ProxyJump: bad host '" + hop.text + "'");
  return hop;
}

}  // namespace

Result<std::vector<JumpHop>> parse_proxy_jump(std::string_view value) {
  std::vector<JumpHop> hops;
  size_t start = 0;
  for (size_t i = 0; i <= value.size(); ++i) {
    if (i < value.size() && value[i] != ',') continue;
    auto hop = parse_hop(value.substr(start, i - start));
    if (!hop) return hop.error();
    hops.push_back(std::move(*hop));
    start = i + 1;
  }
  return hops;
}

// ---- ProxyJump ----

// Relays bytes between a direct-tcpip channel of the hop's session and the
// socketpair end that is not libssh's. Only this thread uses the hop's
// session once the channel is open.
class JumpRelay final : public ProxyTransport {
 public:
  static Result<std::unique_ptr<ProxyTransport>> start(std::unique_ptr<SshSession> hop, const std::string& host,
                                                       uint16_t port) {
    std::unique_ptr<JumpRelay> relay(new JumpRelay(std::move(hop)));
    detail::SshShared& shared = *relay->hop_->shared_;
    {
      std::lock_guard lock(shared.mu);
      relay->channel_ = ssh_channel_new(shared.session);
      if (relay->channel_ == nullptr)
        return make_error(Errc::ssh_connect,
                          "ssh: cannot create a channel: " + std::string(ssh_get_error(shared.session)));
      // The originator address is only informative (sshd logs it), as in OpenSSH.
      if (ssh_channel_open_forward(relay->channel_, host.c_str(), port, "127.0.0.1", 0) != SSH_OK)
        return make_error(Errc::ssh_connect, "ssh: the jump host " + relay->hop_->host() +
                                                 " cannot open a connection to " + host + ":" + std::to_string(port) +
                                                 ": " + ssh_get_error(shared.session));
    }
    FdPair pair;
    if (auto r = make_socketpair(pair); !r) return r.error();
    relay->fd_ = std::exchange(pair.a, -1);
    relay->relay_fd_ = std::exchange(pair.b, -1);
    relay->thread_ = std::thread([r = relay.get()] { r->run(); });
    return std::unique_ptr<ProxyTransport>(std::move(relay));
  }

  ~JumpRelay() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (channel_ != nullptr) {
      std::lock_guard lock(hop_->shared_->mu);
      if (!hop_->shared_->disconnected) ssh_channel_free(channel_);
    }
    if (fd_ >= 0) ::close(fd_);
    if (relay_fd_ >= 0) ::close(relay_fd_);
  }

 private:
  explicit JumpRelay(std::unique_ptr<SshSession> hop) : hop_(std::move(hop)) {}

  void run() {
    detail::SshShared& shared = *hop_->shared_;
    std::lock_guard lock(shared.mu);  // nobody else uses the hop's session now
    // libssh's connectors do the copying both ways; the one writing to an fd
    // closes it at the channel's EOF, so it gets a copy of ours.
    const int out_fd = ::fcntl(relay_fd_, F_DUPFD_CLOEXEC, 0);
    ssh_event event = ssh_event_new();
    ssh_connector to_channel = ssh_connector_new(shared.session);
    ssh_connector from_channel = ssh_connector_new(shared.session);
    if (out_fd >= 0 && event != nullptr && to_channel != nullptr && from_channel != nullptr) {
      ssh_connector_set_in_fd(to_channel, relay_fd_);
      ssh_connector_set_out_channel(to_channel, channel_, SSH_CONNECTOR_STDINOUT);
      ssh_connector_set_in_channel(from_channel, channel_, SSH_CONNECTOR_STDINOUT);
      ssh_connector_set_out_fd(from_channel, out_fd);
      ssh_event_add_connector(event, to_channel);
      ssh_event_add_connector(event, from_channel);
      while (!stop_ && ssh_channel_is_open(channel_) != 0)
        if (ssh_event_dopoll(event, kRelayPollMs) == SSH_ERROR) break;
      ssh_event_remove_connector(event, to_channel);
      ssh_event_remove_connector(event, from_channel);
    } else if (out_fd >= 0) {
      ::close(out_fd);
    }
    if (to_channel != nullptr) ssh_connector_free(to_channel);
    if (from_channel != nullptr) ssh_connector_free(from_channel);
    if (event != nullptr) ssh_event_free(event);
    // The target's session sees the end of its connection.
    ::shutdown(relay_fd_, SHUT_RDWR);
    if (ssh_channel_is_open(channel_) != 0) ssh_channel_close(channel_);
  }

  std::unique_ptr<SshSession> hop_;
  ssh_channel channel_ = nullptr;
  int relay_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

Result<std::unique_ptr<ProxyTransport>> relay_through(std::unique_ptr<SshSession> hop, const std::string& host,
                                                      uint16_t port) {
  return JumpRelay::start(std::move(hop), host, port);
}

// ---- ProxyCommand ----

namespace {

// What may be put into a shell command line unquoted: a name from an operand
// could otherwise run commands (OpenSSH's CVE-2023-51385).
Result<void> shell_safe(const std::string& value, const char* what) {
  const bool ok = !value.empty() && std::all_of(value.begin(), value.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || std::strchr("-._+@:", c) != nullptr;
  });
  if (ok) return {};
  return make_error(Errc::invalid_argument, std::string("ProxyCommand: the ") + what + " '" + value +
                                                "' holds characters rcp does not put into a shell command");
}

}  // namespace

Result<std::string> expand_proxy_command(std::string_view command, const std::string& host, uint16_t port,
                                         const std::string& user, const std::string& original_host) {
  if (command.find("%h") != std::string_view::npos)
    if (auto r = shell_safe(host, "host name"); !r) return r.error();
  if (command.find("%r") != std::string_view::npos)
    if (auto r = shell_safe(user, "user name"); !r) return r.error();
  if (command.find("%n") != std::string_view::npos)
    if (auto r = shell_safe(original_host, "host name"); !r) return r.error();
  std::string out;
  for (size_t i = 0; i < command.size(); ++i) {
    if (command[i] != '%') {
      out.push_back(command[i]);
      continue;
    }
    if (++i == command.size()) return make_error(Errc::invalid_argument, "ProxyCommand ends with a lone '%'");
    switch (command[i]) {
      case 'h': out += host; break;
      case 'p': out += std::to_string(port); break;
      case 'r': out += user; break;
      case 'n': out += original_host; break;
      case '%': out.push_back('%'); break;
      default:
        return make_error(Errc::invalid_argument, std::string("ProxyCommand: unknown escape '%") + command[i] +
                                                      "' (rcp expands %h, %p, %r, %n and %%)");
    }
  }
  return out;
}

class CommandProxy final : public ProxyTransport {
 public:
  static constexpr int kExitWaitSteps = 30;  // of 10 ms

  CommandProxy(int fd, pid_t pid, std::string command) : pid_(pid), command_(std::move(command)) { fd_ = fd; }

  ~CommandProxy() override {
    if (fd_ >= 0) ::close(fd_);
    if (!reaped_) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }

  std::string failure() override {
    // Asked once the connection failed: a command that closed its end is
    // usually exiting, so give it a moment to say how.
    for (int i = 0; !reaped_ && i < kExitWaitSteps; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        status_ = status;
      } else if (i + 1 < kExitWaitSteps) {
        ::usleep(10'000);
      }
    }
    return reaped_ ? describe() : std::string();
  }

 private:
  std::string describe() const {
    if (WIFEXITED(status_))
      return "the ProxyCommand '" + command_ + "' exited with status " + std::to_string(WEXITSTATUS(status_));
    if (WIFSIGNALED(status_))
      return "the ProxyCommand '" + command_ + "' was killed by signal " + std::to_string(WTERMSIG(status_));
    return {};
  }

  pid_t pid_;
  std::string command_;
  bool reaped_ = false;
  int status_ = 0;
};

Result<std::unique_ptr<ProxyTransport>> spawn_proxy_command(const std::string& command) {
  FdPair pair;
  if (auto r = make_socketpair(pair); !r) return r.error();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears close-on-exec on the copies; every other fd of ours stays behind.
  posix_spawn_file_actions_adddup2(&actions, pair.b, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pair.b, STDOUT_FILENO);
  const std::string script = "exec " + command;  // the command itself, not a shell, holds the socket
  const char* argv[] = {"sh", "-c", script.c_str(), nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, "/bin/sh", &actions, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    return make_error(Errc::ssh_connect, "ssh: cannot run the ProxyCommand '" + command + "': " + std::strerror(rc));
  return std::unique_ptr<ProxyTransport>(new CommandProxy(std::exchange(pair.a, -1), pid, command));
}

}  // namespace rcp
