// rcpd: the daemon the master starts on each host (over SSH, or locally).
//
//   rcpd --role source|destination --master HOST:PORT[,HOST:PORT...] --master-fingerprint HEX
//        [--port-range SPEC] [--max-udp-payload N]
//   rcpd --version
//
// It prints one hello line on stdout ("RCPD <protocol> <fingerprint> <version>"),
// reads the per-session key (hex) as the first line of stdin, connects to the
// master over pinned QUIC and does what the master asks. It exits when stdin
// closes or the master link is lost, so no rcpd outlives its master.
#include <ifaddrs.h>
#include <malloc.h>
#include <net/if.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "quic/certificate.h"
#include "copy/copy_destination.h"
#include "copy/copy_source.h"
#include "link/link.h"
#include "link/link_server.h"

using namespace rcp;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitLink = 3;

struct Args {
  std::string role;
  std::vector<std::string> masters;
  std::string master_fp;
  std::string port_range;
  size_t max_udp_payload = 0;
  std::string cc;
  std::string log_level;
  unsigned stall_timeout_s = 0;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == sep) {
      if (i > start) out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return out;
}

// "127.0.0.1:5000" or "[::1]:5000"
Result<Address> parse_host_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return make_error(Errc::invalid_argument, "expected HOST:PORT, got " + text);
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = std::atoi(text.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return make_error(Errc::invalid_argument, "bad port in " + text);
  auto all = Address::resolve(host, static_cast<uint16_t>(port));
  if (!all) return all.error();
  if (all->empty()) return make_error(Errc::invalid_argument, "no address for " + host);
  return all->front();
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

int usage(const char* why) {
  std::fprintf(stderr, "rcpd: %s\nusage: rcpd --role source|destination --master HOST:PORT --master-fingerprint HEX "
                       "[--port-range SPEC]\n       rcpd --version\n", why);
  return kExitUsage;
}

Result<Message> expect(Link& link, MsgType type, Nanos timeout) {
  auto body = link.recv_message(timeout);
  if (!body) return body.error();
  auto m = decode_message(*body);
  if (!m) return m.error();
  if (m->type == static_cast<uint32_t>(MsgType::abort)) {
    auto why = m->get_str(0, "reason");
    return make_error(Errc::closed, "master aborted: " + (why ? *why : std::string("no reason")));
  }
  if (m->type != static_cast<uint32_t>(type))
    return make_error(Errc::protocol, "master sent message type " + std::to_string(m->type) + ", expected " +
                                          std::to_string(static_cast<uint32_t>(type)));
  return m;
}

std::vector<std::string> string_list(const Message& m, size_t i, const char* what, Error& err) {
  std::vector<std::string> out;
  if (i >= m.fields.size() || m.fields[i].type != msgpack::type::ARRAY) {
    err = make_error(Errc::protocol, std::string("field '") + what + "' must be a list");
    return out;
  }
  const auto& arr = m.fields[i].via.array;
  for (uint32_t k = 0; k < arr.size; ++k) {
    const auto& o = arr.ptr[k];
    if (o.type != msgpack::type::STR && o.type != msgpack::type::BIN) {
      err = make_error(Errc::protocol, std::string("field '") + what + "' must hold strings");
      return {};
    }
    out.emplace_back(o.type == msgpack::type::STR ? std::string(o.via.str.ptr, o.via.str.size)
                                                  : std::string(o.via.bin.ptr, o.via.bin.size));
  }
  return out;
}

void send_result(Link& master, const CopySummary& s) {
  std::vector<std::vector<std::string>> errors;
  for (const auto& [path, what] : s.errors) errors.push_back({path, what});
  (void)master.send_message(
      encode_message(MsgType::result, s.files, s.bytes, s.dirs, s.symlinks, s.skipped, s.failed, errors));
}

struct Daemon {
  Args args;
  Certificate cert;
  SessionKey key{};
  QuicConfig quic;
  Logger logger;
  std::shared_ptr<Link> master;
  TransferCounters counters;
  std::function<void()> cleanup;  // runs on abnormal exit (stdin closed)
  std::mutex cleanup_mu;

  Result<CopySummary> run_source() {
    auto m = expect(*master, MsgType::expect_peer, 60 * kSeconds);
    if (!m) return m.error();
    auto fp_hex = m->get_str(0, "fingerprint");
    if (!fp_hex) return fp_hex.error();
    auto fp = parse_fingerprint(*fp_hex);
    if (!fp) return fp.error();
    // One authenticated peer; strangers' handshakes have their own, evictable slots.
    LinkConfig cfg{{quic, {TlsRole::server, cert, {*fp}, quic.keylog_file}, 1}, key, "source"};
    cfg.quic.port_range = args.port_range;
    auto any = Address::parse("::", 0);
    auto listener = LinkServer::listen(cfg, *any);
    if (!listener) return listener.error();
    const auto port = (*listener)->local_address().port();
    (void)master->send_message(encode_message(MsgType::listening, port, local_addresses()));
    logger.info("listening on UDP port " + std::to_string(port) + " for the destination");
    auto peer = (*listener)->accept(60 * kSeconds);
    (*listener)->stop_accepting();  // exactly one peer: the pinned destination
    if (!peer) return peer.error();
    logger.info("destination connected (pinned)");
    auto job = expect(*master, MsgType::send, 60 * kSeconds);
    if (!job) return job.error();
    Error err;
    auto roots = string_list(*job, 0, "paths", err);
    if (err.code != Errc::ok) return err;
    CopySource source(*peer, SourceOptions{}, logger, counters);
    return source.run(roots);
  }

  Result<CopySummary> run_destination() {
    auto m = expect(*master, MsgType::connect_peer, 60 * kSeconds);
    if (!m) return m.error();
    Error err;
    auto addrs = string_list(*m, 0, "addresses", err);
    if (err.code != Errc::ok) return err;
    auto port = m->get_uint(1, "port");
    auto fp_hex = m->get_str(2, "fingerprint");
    if (!port || !fp_hex || *port == 0 || *port > 65535) return make_error(Errc::protocol, "malformed connect_peer");
    auto fp = parse_fingerprint(*fp_hex);
    if (!fp) return fp.error();
    LinkConfig cfg{{quic, {TlsRole::client, cert, {*fp}, quic.keylog_file}}, key, "destination"};
    // One open data stream per worker at most: see QuicConfig::max_uni_streams.
    cfg.quic.max_uni_streams = DestinationOptions{}.workers + 1;
    Result<std::shared_ptr<Link>> peer = make_error(Errc::invalid_argument, "the source advertised no address");
    for (const auto& host : addrs) {
      auto resolved = Address::resolve(host, static_cast<uint16_t>(*port));
      if (!resolved || resolved->empty()) continue;
      peer = Link::connect(cfg, resolved->front());
      if (peer) {
        logger.info("connected to the source at " + resolved->front().to_string() + " (pinned)");
        break;
      }
      logger.info("source not reachable at " + host + ": " + peer.error().message);
      if (peer.error().code == Errc::pin_mismatch || peer.error().code == Errc::auth) break;  // not a routing problem
    }
    if (!peer) return peer.error();
    (void)master->send_message(encode_message(MsgType::peer_connected));
    auto job = expect(*master, MsgType::receive, 60 * kSeconds);
    if (!job) return job.error();
    auto path = job->get_str(0, "path", kMaxPathBytes);
    auto n = job->get_uint(1, "sources");
    if (!path || !n || *n == 0 || *n > 100000) return make_error(Errc::protocol, "malformed receive");
    bool slash = job->fields.size() > 2 && job->fields[2].type == msgpack::type::BOOLEAN && job->fields[2].via.boolean;
    bool overwrite = job->fields.size() > 3 && job->fields[3].type == msgpack::type::BOOLEAN && job->fields[3].via.boolean;
    bool fsync = job->fields.size() > 5 && job->fields[5].type == msgpack::type::BOOLEAN && job->fields[5].via.boolean;
    DestSpec spec{*path, static_cast<uint32_t>(*n), slash, overwrite, {}, fsync};
    // What each operand lets the source name its root: [kind, text] pairs, flat.
    auto rules = string_list(*job, 4, "root_rules", err);
    if (err.code != Errc::ok) return err;
    if (rules.size() != 2 * spec.sources) return make_error(Errc::protocol, "receive: one root rule per source");
    for (size_t i = 0; i < rules.size(); i += 2) {
      auto rule = parse_root_rule(rules[i], rules[i + 1]);
      if (!rule) return rule.error();
      spec.rules.push_back(std::move(*rule));
    }
    auto tree = DestTree::open(spec);
    if (!tree) {
      (*peer)->close("destination unusable");
      return tree.error();
    }
    DestinationOptions opts;
    if (args.stall_timeout_s) opts.stall_timeout = args.stall_timeout_s * kSeconds;
    CopyDestination dest(*peer, std::move(tree.value()), opts, logger, counters);
    {
      std::lock_guard<std::mutex> lk(cleanup_mu);
      cleanup = [&dest] { dest.abort_cleanup(); };
    }
    auto r = dest.run();
    std::lock_guard<std::mutex> lk(cleanup_mu);
    cleanup = nullptr;
    return r;
  }
};

}  // namespace

int main(int argc, char** argv) {
  // First of all: no core dump, and no same-user ptrace or /proc/<pid>/mem,
  // may expose the session key or the TLS secrets this process will hold.
  (void)prctl(PR_SET_DUMPABLE, 0);
  // Buffers of 256 KiB-1 MiB come and go for every chunk: served by mmap they
  // would be fresh pages each time (a page fault and a zeroing per 4 KiB).
  // Kept in the heap they are reused; the total stays bounded by the link's
  // send limit and the workers' buffers.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  // The walk holds a directory fd per level and per queued file's directory:
  // take what the hard limit allows rather than fail at 1024.
  if (rlimit nofile{}; getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &nofile);
  }
  Daemon d;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : std::string(); };
    if (a == "--version") {
      std::printf("rcpd %s protocol %u\n", RCP_VERSION, kProtocolVersion);
      return kExitOk;
    } else if (a == "--role") {
      d.args.role = value();
    } else if (a == "--master") {
      d.args.masters = split(value(), ',');
    } else if (a == "--master-fingerprint") {
      d.args.master_fp = value();
    } else if (a == "--port-range") {
      d.args.port_range = value();
    } else if (a == "--stall-timeout") {  // seconds; tests shorten it
      d.args.stall_timeout_s = static_cast<unsigned>(std::strtoul(value().c_str(), nullptr, 10));
    } else if (a == "--log-level") {
      d.args.log_level = value();
    } else if (a == "--cc") {
      d.args.cc = value();
    } else if (a == "--max-udp-payload") {
      d.args.max_udp_payload = static_cast<size_t>(std::strtoul(value().c_str(), nullptr, 10));
    } else {
      return usage(("unknown argument " + a).c_str());
    }
  }
  if (d.args.role != "source" && d.args.role != "destination") return usage("--role must be source or destination");
  if (d.args.masters.empty()) return usage("--master is required");
  auto master_fp = parse_fingerprint(d.args.master_fp);
  if (!master_fp) return usage(master_fp.error().message.c_str());
  if (auto r = PortRange::parse(d.args.port_range); !r) return usage(r.error().message.c_str());

  d.logger = Logger::from_env(d.args.role, LogLevel::info);
  // The master's -vv/-vvv: more detail than RCP_LOG on the remote host asks for.
  if (!d.args.log_level.empty() && !parse_log_level(d.args.log_level, d.logger.level))
    return usage("--log-level must be error, warn, info, debug or trace");
  d.quic.logger = d.logger;
  if (d.args.max_udp_payload) d.quic.max_udp_payload = d.args.max_udp_payload;
  if (!d.args.cc.empty()) {
    auto cc = parse_congestion_control(d.args.cc);
    if (!cc) return usage(cc.error().message.c_str());
    d.quic.cc = *cc;
  }
  if (const char* env = std::getenv("SSLKEYLOGFILE")) d.quic.keylog_file = env;
  auto cert = Certificate::generate(d.args.role);
  if (!cert) {
    std::fprintf(stderr, "rcpd: %s\n", cert.error().message.c_str());
    return kExitFailed;
  }
  d.cert = std::move(*cert);
  std::printf("RCPD %u %s %s\n", kProtocolVersion, d.cert.fingerprint_hex().c_str(), RCP_VERSION);
  std::fflush(stdout);

  std::string key_line;
  if (!std::getline(std::cin, key_line)) return kExitLink;  // master went away before handing over the key
  auto key = from_hex(key_line);
  if (!key || key->size() != d.key.size()) return usage("stdin's first line must be the 32-byte session key in hex");
  std::copy(key->begin(), key->end(), d.key.begin());

  // No rcpd outlives its master: stdin closing means the master (or its SSH session) is gone.
  std::thread([&d] {
    char buf[256];
    while (std::cin.read(buf, sizeof buf) || std::cin.gcount() > 0) {
    }
    std::lock_guard<std::mutex> lk(d.cleanup_mu);
    if (d.cleanup) d.cleanup();
    std::fprintf(stderr, "rcpd[%s]: stdin closed, exiting\n", d.args.role.c_str());
    std::_Exit(kExitLink);
  }).detach();

  LinkConfig mcfg{{d.quic, {TlsRole::client, d.cert, {*master_fp}, d.quic.keylog_file}}, d.key, d.args.role};
  Result<std::shared_ptr<Link>> master = make_error(Errc::invalid_argument, "no master address");
  for (const auto& m : d.args.masters) {
    auto addr = parse_host_port(m);
    if (!addr) {
      master = addr.error();
      continue;
    }
    master = Link::connect(mcfg, *addr);
    if (master) break;
  }
  if (!master) {
    std::fprintf(stderr, "rcpd[%s]: cannot reach the master: %s\n", d.args.role.c_str(), master.error().message.c_str());
    return kExitLink;
  }
  d.master = *master;
  // From here on, log lines travel to the master on the log stream.
  std::weak_ptr<Link> weak_master = d.master;
  d.logger.sink = [weak_master, role = d.args.role](LogLevel level, const std::string& text) {
    if (auto m = weak_master.lock(); m && !m->closed())
      (void)m->send_log(encode_message(MsgType::log, std::string(log_level_name(level)), text));
    else
      std::fprintf(stderr, "rcpd[%s] %s: %s\n", role.c_str(), log_level_name(level), text.c_str());
  };

  std::atomic<bool> reporting{true};
  std::thread reporter([&] {
    while (reporting.load()) {
      (void)d.master->send_log(encode_message(MsgType::progress, d.counters.bytes_done.load(),
                                              d.counters.files_done.load(), d.counters.bytes_total.load(),
                                              d.counters.files_total.load()));
      for (int i = 0; i < 25 && reporting.load(); ++i) usleep(10000);
    }
  });

  const auto started = std::chrono::steady_clock::now();
  auto result = d.args.role == "source" ? d.run_source() : d.run_destination();
  reporting = false;
  if (result) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    char line[160];
    std::snprintf(line, sizeof line, "%s %llu files, %llu bytes in %.2f s (%.1f MB/s)",
                  d.args.role == "source" ? "sent" : "wrote", static_cast<unsigned long long>(d.counters.files_done.load()),
                  static_cast<unsigned long long>(d.counters.bytes_done.load()), secs,
                  secs > 0 ? static_cast<double>(d.counters.bytes_done.load()) / secs / 1e6 : 0.0);
    d.logger.info(line);
  }
  reporter.join();
  (void)d.master->send_log(encode_message(MsgType::progress, d.counters.bytes_done.load(), d.counters.files_done.load(),
                                          d.counters.bytes_total.load(), d.counters.files_total.load()));
  int code = kExitOk;
  if (result) {
    send_result(*d.master, *result);
    code = result->failed ? kExitFailed : kExitOk;
  } else {
    (void)d.master->send_message(encode_message(MsgType::error, result.error().message));
    code = kExitFailed;
  }
  // Wait for the master to hang up (it has our result), bounded.
  for (int i = 0; i < 600 && !d.master->closed(); ++i) {
    auto m = d.master->recv_message(100 * kMillis);
    if (!m && m.error().code != Errc::timeout) break;
  }
  return code;
}
