#include "ssh/ssh_session.h"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>

#include "base/resolve.h"
#include "base/unique_fd.h"
#include "ssh/shell_quote.h"
#include "ssh/ssh_auth.h"
#include "ssh/ssh_proxy.h"
#include "ssh/ssh_shared.h"

namespace rcp {

namespace {

using detail::SshShared;

struct KeyFree {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
using UniqueKey = std::unique_ptr<ssh_key_struct, KeyFree>;

struct CharFree {
  void operator()(char* s) const { ssh_string_free_char(s); }
};
using UniqueSshChars = std::unique_ptr<char, CharFree>;

// libssh bounds each blocking wait (window space, channel requests) by the
// session's timeout option; this sets it for one call and restores the default.
class WaitBound {
 public:
  WaitBound(SshShared& s, Nanos timeout) : s_(s) { set(timeout / 1'000'000'000, (timeout % 1'000'000'000) / 1000); }
  ~WaitBound() { set(s_.timeout_seconds, 0); }
  WaitBound(const WaitBound&) = delete;
  WaitBound& operator=(const WaitBound&) = delete;

 private:
  void set(long sec, long usec) {
    if (sec == 0 && usec == 0) usec = 1;  // 0/0 would mean "forever" to libssh; 1 us polls once
    ssh_options_set(s_.session, SSH_OPTIONS_TIMEOUT, &sec);
    ssh_options_set(s_.session, SSH_OPTIONS_TIMEOUT_USEC, &usec);
  }
  SshShared& s_;
};

// Non-blocking mode for one call: libssh then processes what has arrived and
// returns instead of waiting.
class NonBlocking {
 public:
  explicit NonBlocking(ssh_session s) : s_(s) { ssh_set_blocking(s_, 0); }
  ~NonBlocking() { ssh_set_blocking(s_, 1); }
  NonBlocking(const NonBlocking&) = delete;
  NonBlocking& operator=(const NonBlocking&) = delete;

 private:
  ssh_session s_;
};

std::string get_option(ssh_session s, ssh_options_e which) {
  char* raw = nullptr;
  if (ssh_options_get(s, which, &raw) != SSH_OK || raw == nullptr) return {};
  UniqueSshChars v(raw);
  return std::string(v.get());
}

// How OpenSSH names a host in known_hosts: "host", or "[host]:port" off port 22.
std::string known_hosts_name(const std::string& host, uint16_t port) {
  return port == 22 ? host : "[" + host + "]:" + std::to_string(port);
}

std::optional<Address> socket_address(int fd, bool peer) {
  Address a;
  a.len = sizeof a.storage;
  const int rc = peer ? ::getpeername(fd, a.sa(), &a.len) : ::getsockname(fd, a.sa(), &a.len);
  if (rc != 0 || (a.family() != AF_INET && a.family() != AF_INET6)) return std::nullopt;
  return a;
}

std::string fingerprint_of(ssh_key key) {
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != SSH_OK) return "(no fingerprint)";
  UniqueSshChars text(ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len));
  ssh_clean_pubkey_hash(&hash);
  return text ? std::string(text.get()) : "(no fingerprint)";
}

// One TCP connection to `host`:`port` over `family` only (rcp -4 / -6):
// libssh has no AddressFamily option, so the socket is made here and handed
// to it. Addresses are tried in the resolver's order, each for `timeout_s`.
Result<UniqueFd> connect_family(const std::string& host, uint16_t port, int family, int timeout_s) {
  const char* name = family == AF_INET ? "IPv4" : "IPv6";
  auto all = resolve_address(host, port);
  if (!all) return make_error(Errc::ssh_connect, "ssh: cannot resolve " + host + ": " + all.error().message);
  std::string why = "no " + std::string(name) + " address";
  for (const Address& a : *all) {
    if (a.family() != family) continue;
    UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd.get() < 0) return make_error(Errc::ssh_connect, std::string("ssh: socket: ") + std::strerror(errno));
    int rc = ::connect(fd.get(), a.sa(), a.len);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd.get(), POLLOUT, 0};
      rc = ::poll(&p, 1, timeout_s * 1000);
      int err = rc == 0 ? ETIMEDOUT : errno;
      socklen_t len = sizeof err;
      if (rc > 0) ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc == 0) {
      ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
      return fd;
    }
    why = a.to_string() + ": " + std::strerror(errno);
  }
  return make_error(Errc::ssh_connect, "ssh: cannot connect to " + host + " port " + std::to_string(port) + " over " +
                                           name + " (" + why + ")");
}

// Records an unknown key in known_hosts and tells the user so (as OpenSSH's
// "Permanently added" warning), naming the host and the fingerprint.
Result<void> record_host_key(ssh_session s, const SshOptions& o, const std::string& where, const std::string& key_text,
                             const std::string& known_hosts) {
  if (ssh_session_update_known_hosts(s) != SSH_OK)
    return make_error(Errc::ssh_host_key,
                      "ssh: cannot record the host key of " + where + " in " + known_hosts + ": " + ssh_get_error(s));
  if (o.warn) o.warn("ssh: permanently added the " + key_text + " of " + where + " to " + known_hosts);
  return {};
}

// Host key policy (see the header): a changed key never passes; an unknown
// one as `policy` says.
Result<void> verify_host_key(ssh_session s, const SshOptions& o, HostKeyPolicy policy, const std::string& shown,
                             const std::string& host,
                             uint16_t port) {  // `shown`: as given (maybe an alias); `host`: HostName
  ssh_key raw = nullptr;
  if (ssh_get_server_publickey(s, &raw) != SSH_OK)
    return make_error(Errc::ssh_host_key, "ssh: no host key from " + shown + ": " + ssh_get_error(s));
  UniqueKey key(raw);
  const std::string name = known_hosts_name(host, port);
  const std::string where = shown == host ? name : shown + " (" + name + ")";  // alias: both
  const std::string key_text =
      std::string(ssh_key_type_to_char(ssh_key_type(key.get()))) + " key " + fingerprint_of(key.get());
  std::string known_hosts = get_option(s, SSH_OPTIONS_KNOWNHOSTS);
  if (known_hosts.empty()) known_hosts = "~/.ssh/known_hosts";
  const std::string policy_text = std::string("StrictHostKeyChecking ") + host_key_policy_name(policy);

  if (o.debug) o.debug("ssh: " + where + " presents the " + key_text + "; checking it against " + known_hosts);
  switch (ssh_session_is_known_server(s)) {
    case SSH_KNOWN_HOSTS_OK: return {};
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      // Never accepted, whatever the policy: this is what a man-in-the-middle looks like.
      return make_error(
          Errc::ssh_host_key,
          "ssh: the host key of " + where + " has CHANGED: the server now presents the " + key_text +
              ", which does not match the key recorded in " + known_hosts +
              ". Someone may be intercepting the connection, or the host was reinstalled. If you know the change "
              "is legitimate, remove the old entry (ssh-keygen -R " +
              shell_quote(name) + " -f " + shell_quote(known_hosts) + ") and connect again" +
              (policy != HostKeyPolicy::yes ? " (" + policy_text + " never accepts a changed key)." : "."));
    case SSH_KNOWN_HOSTS_NOT_FOUND:
    case SSH_KNOWN_HOSTS_UNKNOWN:
      switch (policy) {
        case HostKeyPolicy::accept_new:
        case HostKeyPolicy::no: return record_host_key(s, o, where, key_text, known_hosts);
        case HostKeyPolicy::ask:
          if (!o.confirm)
            return make_error(Errc::ssh_host_key,
                              "ssh: the host key of " + where + " is unknown (the server presents the " + key_text +
                                  ") and " + policy_text +
                                  " needs a terminal to ask on, but stdin is not one. "
                                  "Check the fingerprint, then connect once with ssh to record it, or set "
                                  "StrictHostKeyChecking accept-new (rcp -o StrictHostKeyChecking=accept-new), or use "
                                  "--accept-new-host-keys (API: accept_new_host_keys=True).");
          if (o.confirm("The authenticity of host '" + where + "' can't be established.\nThe server presents the " +
                        key_text + ", which is not in " + known_hosts +
                        ".\nAre you sure you want to continue connecting (yes/no)? "))
            return record_host_key(s, o, where, key_text, known_hosts);
          return make_error(Errc::ssh_host_key, "ssh: the host key of " + where + " (" + key_text +
                                                    ") was not accepted; nothing was recorded.");
        case HostKeyPolicy::yes: break;
      }
      return make_error(Errc::ssh_host_key,
                        "ssh: the host key of " + where + " is unknown: the server presents the " + key_text +
                            ", which is not in " + known_hosts +
                            ". Check the fingerprint, then connect once with ssh to record it, or use rcp's "
                            "--accept-new-host-keys (API: accept_new_host_keys=True; or StrictHostKeyChecking "
                            "accept-new).");
    case SSH_KNOWN_HOSTS_ERROR: break;
  }
  return make_error(Errc::ssh_host_key,
                    "ssh: cannot check the host key of " + where + " against " + known_hosts + ": " + ssh_get_error(s));
}

// PasswordAuthentication, KbdInteractiveAuthentication (or its old name
// ChallengeResponseAuthentication) and BatchMode for one host.
Result<AuthSettings> auth_settings(const std::vector<std::string>& files, const SshConfigQuery& query) {
  AuthSettings out;
  auto flag = [&](std::initializer_list<std::string_view> keywords, bool& value) -> Result<void> {
    auto found = ssh_config_first(files, query, keywords);
    if (!found) return found.error();
    if (!*found) return {};
    const std::string& v = (*found)->value;
    if (strcasecmp(v.c_str(), "yes") == 0 || strcasecmp(v.c_str(), "true") == 0) {
      value = true;
    } else if (strcasecmp(v.c_str(), "no") == 0 || strcasecmp(v.c_str(), "false") == 0) {
      value = false;
    } else {
      return make_error(Errc::invalid_argument,
                        "ssh config: " + (*found)->keyword + " must be yes or no, not '" + v + "'");
    }
    return {};
  };
  if (auto r = flag({"PasswordAuthentication"}, out.password); !r) return r.error();
  if (auto r = flag({"KbdInteractiveAuthentication", "ChallengeResponseAuthentication"}, out.kbd_interactive); !r)
    return r.error();
  if (auto r = flag({"BatchMode"}, out.batch); !r) return r.error();
  return out;
}

constexpr int kMaxJumpDepth = 8;  // as deep as ProxyJump chains go (and where a loop in the config ends)

std::string without_ssh_prefix(const std::string& message) {
  return message.rfind("ssh: ", 0) == 0 ? message.substr(5) : message;
}

// The options of a jump host: what names the user's trust and credentials
// applies to every hop; what names the target (user, port, its -o options)
// does not. `earlier`: the hops before this one, if any.
SshOptions hop_options(const SshOptions& o, const JumpHop& hop, std::optional<std::string> earlier) {
  SshOptions h;
  h.host = hop.host;
  h.port = hop.port;
  h.user = hop.user;
  h.config_file = o.config_file;
  h.identity_files = o.identity_files;
  h.known_hosts_file = o.known_hosts_file;
  h.accept_new_host_key = o.accept_new_host_key;
  h.warn = o.warn;
  h.debug = o.debug;
  h.confirm = o.confirm;
  h.prompt = o.prompt;
  h.batch_mode = o.batch_mode;
  h.connect_timeout_seconds = o.connect_timeout_seconds;
  h.proxy_jump = std::move(earlier);  // unset: the hop's own config says how to reach it
  h.jump_depth = o.jump_depth + 1;
  return h;
}

// Sets up the session's way to its host when ProxyJump or ProxyCommand says
// so (shared->proxy), else leaves it to a direct TCP connection. Returns how
// the host is reached, for messages ("" or " through the jump host j").
Result<std::string> connect_proxy(SshShared& shared, const SshOptions& o, const std::string& host,
                                  const std::vector<std::string>& config_files, std::optional<Address>& hop_local) {
  ssh_session s = shared.session;
  // libssh must not act on these itself (see ssh_proxy.h): rcp does, below.
  ssh_options_set(s, SSH_OPTIONS_PROXYJUMP, "none");
  ssh_options_set(s, SSH_OPTIONS_PROXYCOMMAND, "none");
  const std::string hostname = get_option(s, SSH_OPTIONS_HOST);
  const std::string user = get_option(s, SSH_OPTIONS_USER);
  unsigned int port = 22;
  ssh_options_get_port(s, &port);

  std::optional<SshConfigEntry> proxy;
  if (o.proxy_jump) {
    proxy = SshConfigEntry{"proxyjump", *o.proxy_jump};
  } else if (o.proxy_command) {
    proxy = SshConfigEntry{"proxycommand", *o.proxy_command};
  } else {
    auto found = ssh_config_first(config_files, SshConfigQuery{host, hostname, user}, {"ProxyJump", "ProxyCommand"});
    if (!found) return found.error();
    proxy = std::move(*found);
  }
  if (!proxy || strcasecmp(proxy->value.c_str(), "none") == 0) return std::string();

  if (proxy->keyword == "proxycommand") {
    auto command = expand_proxy_command(proxy->value, hostname, static_cast<uint16_t>(port), user, host);
    if (!command) return make_error(Errc::invalid_argument, "ssh: " + command.error().message);
    auto spawned = spawn_proxy_command(*command);
    if (!spawned) return spawned.error();
    shared.proxy = std::move(*spawned);
    return " through the ProxyCommand '" + *command + "'";
  }
  auto hops = parse_proxy_jump(proxy->value);
  if (!hops) return make_error(Errc::invalid_argument, "ssh: " + hops.error().message);
  // a,b,c: the last hop is reached through the others, and relays to the host.
  const JumpHop last = hops->back();
  std::optional<std::string> earlier;
  for (size_t i = 0; i + 1 < hops->size(); ++i) earlier = (earlier ? *earlier + "," : "") + (*hops)[i].text;
  const std::string through = " through the jump host " + last.text;
  auto hop = SshSession::connect(hop_options(o, last, earlier));
  if (!hop) {
    if (hop.error().code == Errc::invalid_argument) return hop.error();  // a config error says where it is
    return make_error(hop.error().code,
                      "ssh: cannot reach " + host + through + ": " + without_ssh_prefix(hop.error().message));
  }
  if (auto a = (*hop)->local_address()) hop_local = *a;
  auto relay = relay_through(std::move(*hop), hostname, static_cast<uint16_t>(port));
  if (!relay) return relay.error();
  shared.proxy = std::move(*relay);
  return through;
}

}  // namespace

// ---- SshSession ----

Result<std::unique_ptr<SshSession>> SshSession::connect(const SshOptions& o) {
  // "user@host" names the user like ssh does; an explicit user wins.
  std::string host = o.host, user = o.user;
  if (const size_t at = host.rfind('@'); at != std::string::npos) {
    if (user.empty()) user = host.substr(0, at);
    host = host.substr(at + 1);
  }
  if (auto r = check_host_operand(host); !r) return r.error();
  if (o.connect_timeout_seconds <= 0) return make_error(Errc::invalid_argument, "connect timeout must be > 0 seconds");
  if (!o.config_file.empty() && ::access(o.config_file.c_str(), R_OK) != 0)
    return make_error(Errc::invalid_argument, "ssh config file " + o.config_file + ": " + std::strerror(errno));

  if (o.jump_depth > kMaxJumpDepth)
    return make_error(Errc::invalid_argument, "ssh: more than " + std::to_string(kMaxJumpDepth) +
                                                  " jump hosts in a row for " + host + " (a ProxyJump loop?)");

  auto shared = std::make_shared<SshShared>();
  shared->session = ssh_new();
  if (shared->session == nullptr) return make_error(Errc::ssh_connect, "ssh: cannot allocate a session");
  ssh_session s = shared->session;
  shared->timeout_seconds = o.connect_timeout_seconds;
  const std::string shown = o.port ? host + ":" + std::to_string(*o.port) : host;

  // The host first: config sections (Host alias) match against it.
  // libssh takes only host names it considers valid (letters, digits, '-', '.'), aliases included.
  if (ssh_options_set(s, SSH_OPTIONS_HOST, host.c_str()) != SSH_OK) {
    const std::string why = ssh_get_error(s);
    return make_error(Errc::ssh_connect, "ssh: libssh refuses '" + host + "' as a host name" +
                                             (why.empty() ? "" : " (" + why + ")") +
                                             "; host names and ssh config aliases may hold only letters, digits, "
                                             "'-' and '.'");
  }
  if (ssh_options_parse_config(s, o.config_file.empty() ? nullptr : o.config_file.c_str()) != SSH_OK)
    return make_error(Errc::invalid_argument, "ssh: cannot use the ssh config: " + std::string(ssh_get_error(s)));
  const std::vector<std::string> config_files = ssh_config_files(o.config_file);
  const std::string config_shown = o.config_file.empty() ? "~/.ssh/config or /etc/ssh/ssh_config" : o.config_file;
  // libssh drops a HostName it refuses (e.g. with '_') without a word and
  // would go on to resolve the alias itself: say what is wrong instead.
  if (auto hostname = ssh_config_value(config_files, SshConfigQuery{host, "", user}, "HostName"); !hostname) {
    return hostname.error();
  } else if (*hostname && (*hostname)->find('%') == std::string::npos &&
             strcasecmp((*hostname)->c_str(), get_option(s, SSH_OPTIONS_HOST).c_str()) != 0) {
    return make_error(Errc::ssh_connect, "ssh: the ssh config (" + config_shown + ") gives " + host +
                                             " the HostName '" + **hostname +
                                             "', which libssh refuses as a host name (host names may hold only "
                                             "letters, digits, '-' and '.')");
  }
  // libssh reads StrictHostKeyChecking as yes/no, and with "no" reports a
  // changed key as known: it must always look truthfully; rcp applies the policy.
  int strict = 1;
  ssh_options_set(s, SSH_OPTIONS_STRICTHOSTKEYCHECK, &strict);
  HostKeyPolicy policy = HostKeyPolicy::yes;  // rcp's default: stricter than OpenSSH's "ask"
  if (o.accept_new_host_key) {
    policy = HostKeyPolicy::accept_new;
  } else if (o.host_key_policy) {
    policy = *o.host_key_policy;
  } else {
    SshConfigQuery query{host, get_option(s, SSH_OPTIONS_HOST), user.empty() ? get_option(s, SSH_OPTIONS_USER) : user};
    auto value = ssh_config_value(config_files, query, "StrictHostKeyChecking");
    if (!value) return value.error();
    if (*value) {
      auto parsed = parse_host_key_policy(**value);
      if (!parsed) return make_error(Errc::invalid_argument, "ssh config: " + parsed.error().message);
      policy = *parsed;
    }
  }
  // Explicit options override the config, whose first value would otherwise win.
  if (o.port) {
    unsigned int port = *o.port;
    ssh_options_set(s, SSH_OPTIONS_PORT, &port);
  }
  if (!user.empty()) ssh_options_set(s, SSH_OPTIONS_USER, user.c_str());
  if (!o.known_hosts_file.empty()) ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, o.known_hosts_file.c_str());
  long timeout = o.connect_timeout_seconds;
  ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout);
  // rcpds' control links run over exec channels: small messages both ways,
  // which Nagle's algorithm would hold back for the peer's delayed ACK.
  int nodelay = 1;
  ssh_options_set(s, SSH_OPTIONS_NODELAY, &nodelay);

  std::optional<Address> hop_local;  // through jump hosts: our end of the first hop's connection
  auto via = connect_proxy(*shared, o, host, config_files, hop_local);
  if (!via) return via.error();
  if (shared->proxy) {
    // libssh owns the socket from here; the relay or command serves its other end.
    socket_t fd = shared->proxy->take_fd();
    ssh_options_set(s, SSH_OPTIONS_FD, &fd);
  } else if (o.address_family == AF_INET || o.address_family == AF_INET6) {
    unsigned int port = 0;
    ssh_options_get_port(s, &port);
    auto fd = connect_family(get_option(s, SSH_OPTIONS_HOST), static_cast<uint16_t>(port), o.address_family,
                             o.connect_timeout_seconds);
    if (!fd) return fd.error();
    socket_t raw = fd->release();  // libssh owns it from here
    ssh_options_set(s, SSH_OPTIONS_FD, &raw);
  }

  if (o.debug) {
    unsigned int port = 0;
    ssh_options_get_port(s, &port);
    std::string user_shown = get_option(s, SSH_OPTIONS_USER);
    o.debug("ssh: connecting to " + get_option(s, SSH_OPTIONS_HOST) + " port " + std::to_string(port) + " as " +
            (user_shown.empty() ? "the local user" : user_shown) + " (ssh config: " + config_shown +
            (via->empty() ? "" : ";" + *via) + ")");
  }
  if (ssh_connect(s) != SSH_OK) {
    unsigned int port = 0;
    ssh_options_get_port(s, &port);
    const std::string target = get_option(s, SSH_OPTIONS_HOST) + ":" + std::to_string(port);
    std::string why = ssh_get_error(s);
    if (shared->proxy)
      if (const std::string f = shared->proxy->failure(); !f.empty()) why = f + " (" + why + ")";
    return make_error(
        Errc::ssh_connect,
        "ssh: cannot connect to " + (target == shown ? shown : shown + " (" + target + ")") + *via + ": " + why);
  }

  std::unique_ptr<SshSession> session(new SshSession(shared));
  session->host_ = get_option(s, SSH_OPTIONS_HOST);
  session->user_ = get_option(s, SSH_OPTIONS_USER);
  unsigned int port = 0;
  ssh_options_get_port(s, &port);
  session->port_ = static_cast<uint16_t>(port);

  // Before any authentication, "none" included: a server that would let us in
  // unauthenticated must still prove it is the host we know.
  if (auto r = verify_host_key(s, o, policy, host, session->host_, session->port_); !r) return r.error();
  const std::string who = session->user_ + "@" + known_hosts_name(session->host_, session->port_);
  auto settings = auth_settings(config_files, SshConfigQuery{host, session->host_, session->user_});
  if (!settings) return settings.error();
  if (o.password_authentication) settings->password = *o.password_authentication;
  if (o.kbd_interactive_authentication) settings->kbd_interactive = *o.kbd_interactive_authentication;
  if (o.batch_mode) settings->batch = *o.batch_mode;
  if (auto r = authenticate(*shared, o, *settings, who); !r) return r.error();

  shared->fd = ssh_get_fd(s);
  session->local_ = socket_address(shared->fd, false);
  session->remote_ = socket_address(shared->fd, true);
  if (hop_local) {  // a socketpair: say where the first hop saw us, and the target's address when known
    session->local_ = hop_local;
    if (auto a = Address::parse(session->host_, session->port_)) session->remote_ = *a;
  }
  return session;
}

SshSession::~SshSession() = default;  // the connection ends with the last channel (SshShared)

Result<Address> SshSession::local_address() const {
  if (!local_)
    return make_error(Errc::ssh_connect, "ssh: the connection to " + host_ +
                                             " is not a TCP socket (a ProxyCommand), so rcp cannot tell the address "
                                             "it reaches this machine at: give --master-address");
  return *local_;
}

Result<Address> SshSession::remote_address() const {
  if (!remote_)
    return make_error(Errc::ssh_connect, "ssh: the connection to " + host_ +
                                             " is not a TCP socket (a ProxyCommand), so rcp cannot tell the host's "
                                             "address: give --source-address");
  return *remote_;
}

Result<std::unique_ptr<SshChannel>> SshSession::exec(const std::string& command) {
  std::lock_guard lock(shared_->mu);
  ssh_session s = shared_->session;
  if (shared_->disconnected || !ssh_is_connected(s))
    return make_error(Errc::closed, "ssh: session to " + host_ + " is closed");
  ssh_channel ch = ssh_channel_new(s);
  if (ch == nullptr)
    return make_error(Errc::ssh_connect, "ssh: cannot create a channel: " + std::string(ssh_get_error(s)));
  if (ssh_channel_open_session(ch) != SSH_OK || ssh_channel_request_exec(ch, command.c_str()) != SSH_OK) {
    Error err = make_error(Errc::ssh_connect, "ssh: cannot run a command on " + host_ + ": " + ssh_get_error(s));
    ssh_channel_free(ch);
    return err;
  }
  return std::unique_ptr<SshChannel>(new SshChannel(shared_, ch));
}

void SshSession::close() {
  std::lock_guard lock(shared_->mu);
  if (shared_->disconnected) return;
  ssh_disconnect(shared_->session);
  shared_->disconnected = true;
}

// ---- SshChannel ----

SshChannel::SshChannel(std::shared_ptr<detail::SshShared> shared, ssh_channel raw)
    : shared_(std::move(shared)), raw_(raw) {}

SshChannel::~SshChannel() {
  std::lock_guard lock(shared_->mu);
  if (!shared_->disconnected) ssh_channel_free(raw_);  // sends CLOSE if still open
}

Result<void> SshChannel::usable_locked() const {
  if (shared_->disconnected) return make_error(Errc::closed, "ssh: the session is closed");
  if (closed_) return make_error(Errc::closed, "ssh: the channel is closed");
  return {};
}

Result<void> SshChannel::pump_locked() {
  std::array<char, 16384> buf{};
  // stdout: only as much as one line may need, so memory stays bounded.
  while (stdout_.size() <= kMaxLine) {
    const int n = ssh_channel_read_nonblocking(raw_, buf.data(), buf.size(), 0);
    if (n == SSH_ERROR) return make_error(Errc::closed, std::string("ssh: ") + ssh_get_error(shared_->session));
    if (n <= 0) break;  // 0: nothing yet, SSH_EOF: end of output
    stdout_.append(buf.data(), static_cast<size_t>(n));
    received_ += static_cast<uint64_t>(n);
  }
  // stderr: drained always (so the remote never stalls on it), keeping the tail.
  for (;;) {
    const int n = ssh_channel_read_nonblocking(raw_, buf.data(), buf.size(), 1);
    if (n == SSH_ERROR) return make_error(Errc::closed, std::string("ssh: ") + ssh_get_error(shared_->session));
    if (n <= 0) break;
    stderr_.append(buf.data(), static_cast<size_t>(n));
    received_ += static_cast<uint64_t>(n);
    if (stderr_.size() > kMaxStderr) stderr_.erase(0, stderr_.size() - kMaxStderr);
  }
  // After EOF the reads above stop processing packets; exit-status and CLOSE
  // still arrive, and this (non-blocking) call processes them.
  if (ssh_channel_is_eof(raw_)) note_exit_status_locked();
  return {};
}

void SshChannel::note_exit_status_locked() {
  if (status_) return;
  NonBlocking nb(shared_->session);
  // SSH_AGAIN: not (yet) sent. A death by signal leaves the code at UINT32_MAX: no status either.
  uint32_t code = UINT32_MAX;
  if (ssh_channel_get_exit_state(raw_, &code, nullptr, nullptr) == SSH_OK && code <= INT32_MAX)
    status_ = static_cast<int>(code);
}

template <typename Ready>
Result<void> SshChannel::wait_until(Nanos timeout, Ready ready, const char* what) {
  const Nanos start = monotonic_now();
  const Nanos deadline = timeout > UINT64_MAX - start ? UINT64_MAX : start + timeout;
  int busy = 0;  // polls in a row that found the socket readable but gave us nothing
  for (;;) {
    int fd;
    {
      std::lock_guard lock(shared_->mu);
      if (auto r = usable_locked(); !r) return r;
      const uint64_t before = received_;
      if (auto r = pump_locked(); !r) return r;
      if (ready()) return {};
      if (received_ != before) busy = 0;
      fd = shared_->fd;
    }
    const Nanos now = monotonic_now();
    if (now >= deadline) return make_error(Errc::timeout, std::string("ssh: timed out waiting for ") + what);
    // Wait without the lock, in slices: another thread may process the packet
    // we wait for, after which the socket stays quiet though our buffers changed.
    // Short ones: the control link's reader takes in the exit status a hang-up
    // waits for, and a 100 ms slice made every remote rcpd's stop cost 0.1 s.
    Nanos slice = std::min<Nanos>(deadline - now, 10'000'000);
    pollfd p{fd, POLLIN, 0};
    // libssh may leave bytes in the socket that it will not consume yet (after
    // a channel's EOF, or a packet still incomplete): poll would then spin.
    // Sleep in short steps instead, so a line that arrives is seen within 2 ms.
    if (busy > 4) {
      p.fd = -1;
      slice = std::min<Nanos>(slice, 2'000'000);
    }
    busy = ::poll(&p, 1, static_cast<int>((slice + 999'999) / 1'000'000)) > 0 ? busy + 1 : 0;
  }
}

Result<void> SshChannel::write_stdin(std::span<const uint8_t> data, Nanos timeout) {
  std::lock_guard lock(shared_->mu);
  if (auto r = usable_locked(); !r) return r;
  if (eof_sent_) return make_error(Errc::closed, "ssh: stdin of the command is already closed");
  const Nanos deadline = monotonic_now() + std::min<Nanos>(timeout, 86400'000'000'000);
  while (!data.empty()) {
    const Nanos now = monotonic_now();
    if (now >= deadline) return make_error(Errc::timeout, "ssh: timed out writing to the command's stdin");
    WaitBound bound(*shared_, deadline - now);
    const uint32_t chunk = static_cast<uint32_t>(std::min<size_t>(data.size(), 1 << 20));
    const int n = ssh_channel_write(raw_, data.data(), chunk);
    if (n < 0)
      return make_error(Errc::closed,
                        std::string("ssh: write to the command's stdin: ") + ssh_get_error(shared_->session));
    data = data.subspan(static_cast<size_t>(n));
  }
  return {};
}

Result<void> SshChannel::close_stdin() {
  std::lock_guard lock(shared_->mu);
  if (auto r = usable_locked(); !r) return r;
  if (eof_sent_) return {};
  eof_sent_ = true;
  if (ssh_channel_send_eof(raw_) != SSH_OK)
    return make_error(Errc::closed,
                      std::string("ssh: cannot close the command's stdin: ") + ssh_get_error(shared_->session));
  return {};
}

std::optional<Result<std::string>> SshChannel::take_line_locked() {
  if (stdout_done_) return Result<std::string>(make_error(Errc::closed, "ssh: end of the command's output"));
  const size_t newline = stdout_.find('\n');
  if (newline <= kMaxLine) {  // (npos is larger)
    std::string line = stdout_.substr(0, newline);
    stdout_.erase(0, newline + 1);
    return Result<std::string>(std::move(line));
  }
  if (stdout_.size() > kMaxLine)
    return Result<std::string>(
        make_error(Errc::too_large, "ssh: the command printed a line over " + std::to_string(kMaxLine) + " bytes"));
  if (ssh_channel_is_eof(raw_) == 0) return std::nullopt;
  stdout_done_ = true;  // at EOF: the unterminated rest, if any, is the last line
  if (stdout_.empty()) return Result<std::string>(make_error(Errc::closed, "ssh: end of the command's output"));
  return Result<std::string>(std::exchange(stdout_, {}));
}

Result<std::string> SshChannel::read_line(Nanos timeout) {
  std::optional<Result<std::string>> line;
  auto r = wait_until(
      timeout, [&] { return (line = take_line_locked()).has_value(); }, "a line from the command");
  if (!r) return r.error();
  return std::move(*line);
}

Result<size_t> SshChannel::read_stdout(std::span<uint8_t> out, Nanos timeout) {
  auto r = wait_until(
      timeout, [&] { return !stdout_.empty() || ssh_channel_is_eof(raw_) != 0; }, "output from the command");
  std::lock_guard lock(shared_->mu);
  if (!r && stdout_.empty()) return r.error();
  const size_t n = std::min(out.size(), stdout_.size());
  std::memcpy(out.data(), stdout_.data(), n);
  stdout_.erase(0, n);
  return n;
}

Result<std::string> SshChannel::read_stderr(Nanos timeout) {
  auto r = wait_until(
      timeout, [&] { return !stderr_.empty() || ssh_channel_is_eof(raw_) != 0; }, "stderr");
  std::lock_guard lock(shared_->mu);
  if (!r && r.error().code != Errc::timeout && stderr_.empty()) return r.error();
  return std::exchange(stderr_, {});
}

bool SshChannel::eof() {
  std::lock_guard lock(shared_->mu);
  if (!usable_locked() || !pump_locked()) return true;
  return stdout_.empty() && ssh_channel_is_eof(raw_) != 0;
}

std::optional<int> SshChannel::exit_status(Nanos timeout) {
  {
    std::lock_guard lock(shared_->mu);
    if (status_ || closed_ || shared_->disconnected) return status_;
  }
  // An error (closed, timed out) just means no status: the caller asks "is it known yet?".
  (void)wait_until(
      timeout,
      [&] {
        note_exit_status_locked();
        return status_.has_value() || ssh_channel_is_closed(raw_) != 0;
      },
      "the exit status");
  std::lock_guard lock(shared_->mu);
  return status_;
}

void SshChannel::close() {
  std::lock_guard lock(shared_->mu);
  if (closed_ || shared_->disconnected) return;
  closed_ = true;
  if (pump_locked()) note_exit_status_locked();  // keep a status that already arrived
  // The ssh_channel itself is freed by the destructor, so nothing dangles.
  if (!eof_sent_) ssh_channel_send_eof(raw_);
  eof_sent_ = true;
  ssh_channel_close(raw_);
}

}  // namespace rcp
