#include "rcpd/daemon.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "base/passwd_db.h"
#include "base/port_range.h"
#include "base/remote_path.h"
#include "copy/copy_destination.h"
#include "copy/copy_source.h"
#include "link/link_server.h"
#include "link/link_tunnel.h"
#include "link/stream_transport.h"
#include "link/tcp_link.h"
#include "wire/messages.h"

namespace rcp {

namespace {

constexpr Nanos kSetupTimeout = 60 * kSeconds;

// "127.0.0.1:5000" or "[::1]:5000". Numeric only: the static rcpd has no NSS
// to resolve names with; the master hands out addresses, never names.
Result<Address> parse_host_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return make_error(Errc::invalid_argument, "expected HOST:PORT, got " + text);
  int port = std::atoi(text.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return make_error(Errc::invalid_argument, "bad port in " + text);
  return Address::parse(text.substr(0, colon), static_cast<uint16_t>(port));
}

// Addresses this host can be reached on, for the destination to try.
std::vector<std::string> local_addresses() {
  std::vector<std::string> out;
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) != 0) return out;
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
    int fam = i->ifa_addr->sa_family;
    if (fam != AF_INET && fam != AF_INET6) continue;
    Address a;
    a.len = fam == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    std::memcpy(&a.storage, i->ifa_addr, a.len);
    if (fam == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&reinterpret_cast<sockaddr_in6*>(&a.storage)->sin6_addr)) continue;
    out.push_back(a.host_string());
  }
  freeifaddrs(ifs);
  return out;
}

// What remote operands are resolved against (base/remote_path.h): the
// login's home and the users table, read by rcpd itself (no NSS in a static
// binary). Read only when the master asks for remote paths.
struct Login {
  std::string home;  // "" when there is none: operands that need it fail saying so
  PasswdDb users;
};

Login current_login(const Logger& logger) {
  Login login;
  if (auto db = PasswdDb::load(); db) {
    login.users = std::move(*db);
    for (const auto& problem : login.users.problems()) logger.debug("ignored: " + problem);
  } else {
    logger.warn("cannot read the users table: " + db.error().message);
  }
  if (auto home = login_home(std::getenv("HOME"), static_cast<uint32_t>(getuid()), login.users); home)
    login.home = std::move(*home);
  return login;
}

// The next control message from the master, decoded as T; an abort ends the wait.
template <typename T>
Result<T> expect(Link& link, Nanos timeout) {
  auto body = link.recv_message(timeout);
  if (!body) return body.error();
  auto m = decode_message(*body);
  if (!m) return m.error();
  if (m->type == static_cast<uint32_t>(MsgType::abort)) {
    auto why = AbortMsg::decode(*m);
    return make_error(Errc::closed, "master aborted: " + (why ? why->reason : std::string("no reason")));
  }
  return T::decode(*m);
}

// The source's listeners for its one peer: UDP (QUIC) and/or TCP, on one
// port number when both, so the destination needs only one.
struct PeerListeners {
  std::shared_ptr<LinkServer> quic;
  std::shared_ptr<TcpLinkServer> tcp;
  uint16_t port = 0;
};

Result<PeerListeners> listen_on_port(const LinkConfig& cfg, bool quic, bool tcp, uint16_t port,
                                     const TcpLinkOptions& tcp_options) {
  PeerListeners l;
  Address any = *Address::parse("::", 0);
  if (tcp) {
    any.set_port(port);
    auto t = TcpLinkServer::listen(cfg, any, tcp_options);
    if (!t) return t.error();
    l.tcp = *t;
    port = l.tcp->local_address().port();
  }
  if (quic) {
    LinkConfig c = cfg;
    if (tcp) c.quic.port_range = std::to_string(port);  // the TCP listener's port, exactly
    auto u = LinkServer::listen(c, *Address::parse("::", 0));
    if (!u) return u.error();
    l.quic = *u;
    port = l.quic->local_address().port();
  }
  l.port = port;
  return l;
}

Result<PeerListeners> listen_for_peer(const LinkConfig& cfg, const std::string& transport,
                                      const TcpLinkOptions& tcp_options) {
  const bool quic = transport != "tcp", tcp = transport != "quic";
  if (!tcp) return listen_on_port(cfg, true, false, 0, tcp_options);  // the UDP socket walks --port-range itself
  auto ports = PortRange::parse(cfg.quic.port_range);
  if (!ports) return ports.error();
  Error last = make_error(Errc::io, "no port");
  if (ports->any()) {
    // TCP picks a free port, then UDP must get the same: rarely taken, so a few tries.
    for (int i = 0; i < 32; ++i) {
      auto l = listen_on_port(cfg, quic, tcp, 0, tcp_options);
      if (l) return l;
      last = l.error();
    }
    return last;
  }
  for (const PortRange::Span& s : ports->spans()) {
    for (uint32_t p = s.first; p <= s.last; ++p) {
      auto l = listen_on_port(cfg, quic, tcp, static_cast<uint16_t>(p), tcp_options);
      if (l) return l;
      last = l.error();
    }
  }
  return make_error(Errc::io, "no port in " + ports->to_string() + " free for " + (quic ? "both UDP and TCP" : "TCP") +
                                  " (last: " + last.message + ")");
}

// The first peer to connect on either listener; `transport` says which.
Result<std::shared_ptr<Link>> accept_peer(PeerListeners& l, Nanos timeout, std::string* transport) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout);
  const Nanos slice = (l.quic && l.tcp) ? 50 * kMillis : timeout;
  for (;;) {
    if (l.quic) {
      auto p = l.quic->accept(slice);
      if (p) {
        *transport = "quic";
        return p;
      }
      if (p.error().code != Errc::timeout || !l.tcp) return p.error();
    }
    if (l.tcp) {
      auto p = l.tcp->accept(slice);
      if (p) {
        *transport = "tcp";
        return p;
      }
      if (p.error().code != Errc::timeout || !l.quic) return p.error();
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return make_error(Errc::timeout, "no destination connected in time");
  }
}

}  // namespace

Daemon::Daemon(DaemonArgs args) : args_(std::move(args)) {}

Daemon::~Daemon() { stop_reporter(); }

int Daemon::run() {
  logger_ = Logger::from_env(args_.role, LogLevel::info);
  if (args_.log_level) logger_.level = *args_.log_level;
  quic_.logger = logger_;
  if (args_.max_udp_payload) quic_.max_udp_payload = args_.max_udp_payload;
  if (args_.cc) quic_.cc = *args_.cc;
  if (const char* env = std::getenv("SSLKEYLOGFILE")) quic_.keylog_file = env;

  if (auto r = make_identity(); !r) {
    std::fprintf(stderr, "rcpd: %s\n", r.error().message.c_str());
    return kExitFailed;
  }
  if (auto r = read_session_key(); !r) {
    if (r.error().code == Errc::closed) return kExitLink;  // master went away before handing over the key
    std::fprintf(stderr, "rcpd: %s\n", r.error().message.c_str());
    return kExitUsage;
  }
  const bool stdio = args_.masters.empty();
  if (!stdio) start_stdin_watcher();
  if (auto r = stdio ? connect_master_stdio() : connect_master(); !r) {
    std::fprintf(stderr, "rcpd[%s]: no control link to the master: %s\n", args_.role.c_str(),
                 r.error().message.c_str());
    return kExitLink;
  }
  if (stdio) start_link_watcher();
  route_logs_to_master();
  start_reporter();
  const auto started = std::chrono::steady_clock::now();
  auto result = args_.role == "source" ? run_source() : run_destination();
  reporting_ = false;
  if (result) log_throughput(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  stop_reporter();
  send_progress();  // the final numbers
  {
    std::lock_guard<std::mutex> lk(cleanup_mu_);
    hanging_up_ = true;
  }
  const int code = send_outcome(result);
  wait_for_hangup();
  return code;
}

Result<void> Daemon::make_identity() {
  auto cert = Certificate::generate(args_.role);
  if (!cert) return cert.error();
  cert_ = std::move(*cert);
  std::printf("%s\n", Hello::ours(args_.role, cert_.fingerprint_hex()).banner().c_str());
  std::fflush(stdout);
  return {};
}

Result<void> Daemon::read_session_key() {
  // One byte at a time, straight from fd 0: the control link's first bytes
  // may follow the key in the same pipe read, and must stay in the pipe (a
  // buffered reader, C stdio's or iostream's, would swallow them).
  std::string line;
  for (;;) {
    char c;
    const ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(Errc::closed, "stdin closed before the session key");
    if (c == '\n') break;
    if (line.size() > 2 * key_.size()) break;  // too long: refused below
    line.push_back(c);
  }
  auto key = from_hex(line);
  if (!key || key->size() != key_.size())
    return make_error(Errc::invalid_argument, "stdin's first line must be the 32-byte session key in hex");
  std::copy(key->begin(), key->end(), key_.begin());
  return {};
}

void Daemon::start_stdin_watcher() {
  // No rcpd outlives its master: stdin closing means the master (or its SSH
  // session) is gone. Detached: it ends the process, never joins.
  std::thread([this] {
    char buf[256];
    while (std::cin.read(buf, sizeof buf) || std::cin.gcount() > 0) {
    }
    std::lock_guard<std::mutex> lk(cleanup_mu_);
    if (cleanup_) cleanup_();
    std::fprintf(stderr, "rcpd[%s]: stdin closed, exiting\n", args_.role.c_str());
    std::_Exit(kExitLink);
  }).detach();
}

void Daemon::start_link_watcher() {
  // The master closing the link (or its SSH session, its pipes going) ends
  // this rcpd, as stdin closing does with --master. Detached, like that one.
  std::thread([this, link = master_] {
    while (!link->closed()) usleep(20000);
    std::lock_guard<std::mutex> lk(cleanup_mu_);
    if (hanging_up_) return;  // the expected close after the result: run() ends the process
    if (cleanup_) cleanup_();
    std::fprintf(stderr, "rcpd[%s]: the master link closed (%s), exiting\n", args_.role.c_str(),
                 link->error().message.c_str());
    std::_Exit(kExitLink);
  }).detach();
}

Result<void> Daemon::connect_master_stdio() {
  // No certificate on this link: the master is who holds our stdin, and the
  // sealed hello proves it knows the session key.
  LinkConfig cfg{{quic_, {TlsRole::client, cert_, {}, ""}}, key_, args_.role};
  auto stream = FdStream::create(UniqueFd(STDIN_FILENO), UniqueFd(STDOUT_FILENO));
  if (!stream) return stream.error();
  master_ = StreamTransport::start(std::move(*stream), cfg, true);
  if (auto r = master_->wait_ready(kSetupTimeout); !r) return r;
  return {};
}

Result<void> Daemon::connect_master() {
  LinkConfig cfg{{quic_, {TlsRole::client, cert_, {args_.master_fingerprint}, quic_.keylog_file}}, key_, args_.role};
  Result<std::shared_ptr<Link>> master = make_error(Errc::invalid_argument, "no master address");
  for (const auto& m : args_.masters) {
    auto addr = parse_host_port(m);
    if (!addr) {
      master = addr.error();
      continue;
    }
    master = Link::connect(cfg, *addr);
    if (master) break;
  }
  if (!master) return master.error();
  master_ = *master;
  return {};
}

void Daemon::route_logs_to_master() {
  std::weak_ptr<Link> weak_master = master_;
  logger_.sink = [weak_master, role = args_.role](LogLevel level, const std::string& text) {
    if (auto m = weak_master.lock(); m && !m->closed())
      (void)m->send_log(LogMsg{log_level_name(level), text}.encode());
    else
      std::fprintf(stderr, "rcpd[%s] %s: %s\n", role.c_str(), log_level_name(level), text.c_str());
  };
}

void Daemon::send_progress() {
  (void)master_->send_log(ProgressMsg{counters_.bytes_done.load(), counters_.files_done.load(),
                                      counters_.bytes_total.load(), counters_.files_total.load(), counters_.current()}
                              .encode());
}

void Daemon::start_reporter() {
  reporting_ = true;
  reporter_ = std::thread([this] {
    while (reporting_.load()) {
      send_progress();
      for (int i = 0; i < 25 && reporting_.load(); ++i) usleep(10000);
    }
  });
}

void Daemon::stop_reporter() {
  reporting_ = false;
  if (reporter_.joinable()) reporter_.join();
}

Result<CopySummary> Daemon::run_source() {
  auto expect_peer = expect<ExpectPeerMsg>(*master_, kSetupTimeout);
  if (!expect_peer) return expect_peer.error();
  if (auto r = known_transport(expect_peer->transport); !r) return r.error();
  auto fp = parse_fingerprint(expect_peer->fingerprint);
  if (!fp) return fp.error();
  const std::string& transport = expect_peer->transport;
  // One authenticated peer; strangers' handshakes have their own, evictable slots.
  LinkConfig cfg{{quic_, {TlsRole::server, cert_, {*fp}, quic_.keylog_file}, 1}, key_, "source"};
  cfg.quic.port_range = args_.port_range;
  if (transport == kTransportRelay) {
    auto peer = relayed_peer(cfg, false);
    if (!peer) return peer.error();
    return send_job(*peer);
  }
  auto listeners = listen_for_peer(cfg, transport, tcp_options());
  if (!listeners && transport == "auto") {
    // No port in the range free for both: QUIC alone still serves where UDP gets through.
    logger_.warn("cannot listen on TCP as well (" + listeners.error().message + "): QUIC only");
    listeners = listen_for_peer(cfg, "quic", tcp_options());
  }
  if (!listeners) return listeners.error();
  const char* on = listeners->tcp ? (listeners->quic ? "UDP and TCP" : "TCP") : "UDP";
  const auto port = listeners->port;
  (void)master_->send_message(ListeningMsg{port, local_addresses()}.encode());
  logger_.info(std::string("listening on ") + on + " port " + std::to_string(port) + " for the destination");
  std::string used;
  auto peer = accept_peer(*listeners, kSetupTimeout, &used);
  // Exactly one peer: the pinned destination.
  if (listeners->quic) listeners->quic->stop_accepting();
  if (listeners->tcp) listeners->tcp->stop_accepting();
  if (!peer) return peer.error();
  logger_.info("destination connected over " + std::string(used == "tcp" ? "TCP+TLS" : "QUIC") + " (pinned)");
  return send_job(*peer);
}

Result<CopySummary> Daemon::send_job(std::shared_ptr<Link> peer) {
  auto job = expect<SendMsg>(*master_, kSetupTimeout);
  if (!job) return job.error();
  const Login login = job->resolve ? current_login(logger_) : Login{};
  const auto roots = source_roots(job->paths, job->resolve, login.home, login.users);
  auto filters = FilterRules::parse(job->filters);
  if (!filters) {
    peer->close("bad filter rules");
    return filters.error();
  }
  SourceOptions options{.checksum = job->checksum,
                        .filters = std::move(*filters),
                        .sparse = job->sparse,
                        .hard_links = job->hard_links,
                        .inodes = job->inodes,
                        .owners = job->owners,
                        .bandwidth_limit = job->bandwidth_limit,
                        .partial = job->partial};
  // trusted.* only as root: nobody else can read them anyway.
  options.xattrs = XattrPolicy{job->xattrs, job->xattrs && geteuid() == 0, job->acls, job->keep_capabilities};
  options.dereference = job->dereference;
  CopySource source(std::move(peer), options, logger_, counters_);
  return source.run(roots);
}

Result<void> Daemon::known_transport(const std::string& transport) {
  if (transport == kTransportQuic || transport == "tcp" || transport == "auto" || transport == kTransportRelay)
    return {};
  return make_error(Errc::protocol, "unknown transport '" + transport + "' (is this rcpd older than the master?)");
}

Result<std::shared_ptr<Link>> Daemon::relayed_peer(const LinkConfig& cfg, bool client) {
  logger_.info("the link to the " + std::string(client ? "source" : "destination") + " runs through the master");
  auto tunnel = TunnelStream::open(master_, kSetupTimeout);
  if (!tunnel) return tunnel.error();
  auto peer = StreamTransport::start(std::move(*tunnel), cfg, client);
  if (auto r = peer->wait_ready(kSetupTimeout); !r) {
    peer->close("no hello");
    return make_error(r.error().code, "relayed link: " + r.error().message);
  }
  // The sealed hello proves the session key; it must also name the rcpd the
  // master named. A consistency check, not a pin: the fingerprint is a claim
  // sealed under the key both rcpds hold (QUIC would prove the private key).
  const Hello hello = peer->peer_hello();
  const std::string want_role = client ? "source" : "destination";
  if (hello.role != want_role || hello.fingerprint != to_hex(cfg.tls.pinned_peers.front())) {
    peer->close("not the expected peer");
    return make_error(Errc::pin_mismatch, "relayed link: the peer is not the " + want_role + " the master named");
  }
  logger_.info(want_role + " connected through the master (its hello names the expected fingerprint)");
  return peer;
}

Result<CopySummary> Daemon::run_destination() {
  auto where = expect<ConnectPeerMsg>(*master_, kSetupTimeout);
  if (!where) return where.error();
  if (auto r = known_transport(where->transport); !r) return r.error();
  auto fp = parse_fingerprint(where->fingerprint);
  if (!fp) return fp.error();
  LinkConfig cfg{{quic_, {TlsRole::client, cert_, {*fp}, quic_.keylog_file}}, key_, "destination"};
  // One open data stream per worker at most: see QuicConfig::max_uni_streams.
  cfg.quic.max_uni_streams = DestinationOptions{}.workers + 1;
  std::string used = kTransportRelay;
  auto peer = where->transport == kTransportRelay ? relayed_peer(cfg, true) : connect_to_source(*where, cfg, &used);
  if (!peer) return peer.error();
  (void)master_->send_message(PeerConnectedMsg{used}.encode());
  auto job = expect<ReceiveMsg>(*master_, kSetupTimeout);
  if (!job) return job.error();
  DestSpec spec{job->path, job->sources, job->trailing_slash, job->overwrite, {}, job->fsync};
  spec.update = job->update;
  spec.ignore_existing = job->ignore_existing;
  spec.checksum = job->checksum;
  auto filters = FilterRules::parse(job->filters);
  if (!filters) {
    (*peer)->close("bad filter rules");
    return filters.error();
  }
  spec.filters = std::move(*filters);
  spec.delete_extraneous = job->delete_extraneous;
  spec.delete_excluded = job->delete_excluded;
  spec.dry_run = job->dry_run;
  // Owners: asked for, or by default when this rcpd runs as root (as rsync -a and cp -a do).
  const bool root = geteuid() == 0;
  spec.owner = job->owner == ReceiveMsg::kOn || (job->owner == ReceiveMsg::kAuto && root);
  spec.group = job->group == ReceiveMsg::kOn || (job->group == ReceiveMsg::kAuto && root);
  spec.numeric_ids = job->numeric_ids;
  // trusted.* only as root at both ends (the source reads them only as root).
  spec.xattrs = XattrPolicy{job->xattrs, job->xattrs && root, job->acls, job->keep_capabilities};
  if (spec.owner && !root) {
    logger_.warn("--owner: this rcpd does not run as root, so files stay owned by its user");
    spec.owner = false;
  }
  spec.partial = job->partial;
  spec.hard_links = job->hard_links;
  if (job->resolve) {  // home, ~ and ~user; never a wildcard at the destination
    const Login login = current_login(logger_);
    auto resolved = resolve_operand_path(job->path, login.home, login.users);
    if (!resolved) {
      (*peer)->close("destination unusable");
      return make_error(resolved.error().code, job->path + ": " + resolved.error().message);
    }
    spec.path = resolved->joined();
  }
  for (size_t i = 0; i < job->root_rules.size(); ++i) {
    auto rule = parse_root_rule(job->root_rules[i].kind, job->root_rules[i].text);
    if (!rule) return rule.error();
    rule->many = job->wildcards[i] != 0;  // decode() gives one per rule
    spec.rules.push_back(std::move(*rule));
  }
  auto tree = DestTree::open(spec);
  if (!tree) {
    (*peer)->close("destination unusable");
    return tree.error();
  }
  DestinationOptions opts;
  if (args_.stall_timeout_s) opts.stall_timeout = args_.stall_timeout_s * kSeconds;
  CopyDestination dest(*peer, std::move(tree.value()), opts, logger_, counters_);
  {
    std::lock_guard<std::mutex> lk(cleanup_mu_);
    cleanup_ = [&dest] { dest.abort_cleanup(); };
  }
  auto r = dest.run();
  std::lock_guard<std::mutex> lk(cleanup_mu_);
  cleanup_ = nullptr;
  return r;
}

TcpLinkOptions Daemon::tcp_options() const {
  TcpLinkOptions o;
  // --cc applies to TCP too, through the kernel (TCP_CONGESTION).
  if (args_.cc) o.congestion = congestion_control_name(*args_.cc);
  return o;
}

Result<std::shared_ptr<Link>> Daemon::connect_to_source(const ConnectPeerMsg& where, const LinkConfig& cfg,
                                                        std::string* used) {
  const std::string& transport = where.transport;
  std::vector<Address> addresses;
  for (const auto& host : where.addresses) {
    auto address = Address::parse(host, where.port);  // numeric only, like the master's addresses
    if (address)
      addresses.push_back(*address);
    else
      logger_.info("skipping source address " + host + ": " + address.error().message);
  }
  Result<std::shared_ptr<Link>> peer = make_error(Errc::invalid_argument, "the source advertised no address");
  auto refused = [&] {  // not a routing problem: never a reason to try elsewhere or otherwise
    return !peer && (peer.error().code == Errc::pin_mismatch || peer.error().code == Errc::auth);
  };
  if (transport != "tcp") {
    const Nanos no_answer = static_cast<Nanos>(where.fallback_timeout_ms) * kMillis;
    for (const auto& address : addresses) {
      peer = transport == "auto" ? Link::connect(cfg, address, no_answer) : Link::connect(cfg, address);
      if (peer) {
        logger_.info("connected to the source at " + address.to_string() + " over QUIC (pinned)");
        *used = "quic";
        return peer;
      }
      logger_.info("source not reachable over QUIC at " + address.to_string() + ": " + peer.error().message);
      if (refused()) return peer;
    }
    if (transport == "quic") return peer;
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", where.fallback_timeout_ms / 1000.0);
    logger_.warn(std::string("QUIC to the source got no answer within ") + secs +
                 " s (UDP blocked on the way?): falling back to TCP+TLS");
  }
  for (const auto& address : addresses) {
    peer = connect_tcp_link(cfg, address, tcp_options());
    if (peer) {
      logger_.info("connected to the source at " + address.to_string() + " over TCP+TLS (pinned)");
      *used = "tcp";
      return peer;
    }
    logger_.info("source not reachable over TCP at " + address.to_string() + ": " + peer.error().message);
    if (refused()) return peer;
  }
  return peer;
}

void Daemon::log_throughput(double seconds) {
  char line[160];
  std::snprintf(line, sizeof line, "%s %llu files, %llu bytes in %.2f s (%.1f MB/s)",
                args_.role == "source" ? "sent" : "wrote", static_cast<unsigned long long>(counters_.files_done.load()),
                static_cast<unsigned long long>(counters_.bytes_done.load()), seconds,
                seconds > 0 ? static_cast<double>(counters_.bytes_done.load()) / seconds / 1e6 : 0.0);
  logger_.info(line);
}

int Daemon::send_outcome(const Result<CopySummary>& result) {
  if (!result) {
    (void)master_->send_message(ErrorMsg{result.error().message}.encode());
    return kExitFailed;
  }
  const CopySummary& s = result.value();
  // A dry run's plan first, in frames of at most kMaxPlanPerMsg entries and ~256 KiB.
  PlanMsg plan;
  size_t plan_bytes = 0;
  for (size_t i = 0; i < s.plan.size(); ++i) {
    plan.entries.push_back(s.plan[i]);
    plan_bytes += s.plan[i].path.size() + 16;
    if (plan.entries.size() == PlanMsg::kMaxPlanPerMsg || plan_bytes >= (256u << 10) || i + 1 == s.plan.size()) {
      (void)master_->send_message(plan.encode());
      plan.entries.clear();
      plan_bytes = 0;
    }
  }
  (void)master_->send_message(ResultMsg{s.files, s.bytes, s.dirs, s.symlinks, s.kept, s.failed, s.errors, s.unchanged,
                                        s.ignored, s.kept_paths, s.deleted, s.plan_omitted, s.sparse_bytes,
                                        s.hard_links, s.resumed_bytes}
                                  .encode());
  return s.failed ? kExitFailed : kExitOk;
}

void Daemon::wait_for_hangup() {
  // The master hangs up once it has our result; bounded.
  for (int i = 0; i < 600 && !master_->closed(); ++i) {
    auto m = master_->recv_message(100 * kMillis);
    if (!m && m.error().code != Errc::timeout) break;
  }
}

}  // namespace rcp
