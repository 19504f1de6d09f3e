// rcpd: the daemon the master starts on each host (over SSH, or locally).
// This file only parses and checks the arguments; rcpd/daemon.h does the rest.
#include <malloc.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <csignal>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/port_range.h"
#include "rcpd/daemon.h"
#include "wire/message.h"

using namespace rcp;

namespace {

constexpr const char* kUsage =
    "usage: rcpd --role source|destination [--master HOST:PORT[,HOST:PORT...] --master-fingerprint HEX]\n"
    "            [--port-range SPEC] [--cc bbr|cubic|reno] [--log-level error|warn|info|debug|trace]\n"
    "            [--stall-timeout SECONDS] [--max-udp-payload BYTES]\n"
    "       rcpd --version\n"
    "It prints \"RCPD <protocol> <fingerprint> <version>\", reads the session key (hex) as the first\n"
    "line of stdin; then stdin/stdout carry its control link to the master, and it exits when that\n"
    "closes. --master (debugging): connect back to a master's QUIC server instead, and exit when\n"
    "stdin closes. --port-range: the source's UDP listener (e.g.\n"
    "8000-8999,9100); --log-level: the master's -v (over RCP_LOG); --stall-timeout: how long the\n"
    "destination waits for announced files once the source is done.\n";

int usage(const std::string& why) {
  std::fprintf(stderr, "rcpd: %s\n%s", why.c_str(), kUsage);
  return kExitUsage;
}

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

// Buffers of 256 KiB-1 MiB come and go for every chunk; open file limits.
void tune_process() {
  // No core dump, and no same-user ptrace or /proc/<pid>/mem, may expose the
  // session key or the TLS secrets this process will hold.
  (void)prctl(PR_SET_DUMPABLE, 0);
  // The control link writes to stdout: a master gone is an error there, not a signal.
  (void)std::signal(SIGPIPE, SIG_IGN);
  // Served by mmap, chunk buffers would be fresh pages each time (a page
  // fault and a zeroing per 4 KiB). Kept in the heap they are reused; the
  // total stays bounded by the link's send limit and the workers' buffers.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  // The walk holds a directory fd per level and per queued file's directory:
  // take what the hard limit allows rather than fail at 1024.
  if (rlimit nofile{}; getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &nofile);
  }
}

}  // namespace

int main(int argc, char** argv) {
  tune_process();  // first of all: before any secret exists
  DaemonArgs args;
  std::string master_fp, port_range, log_level, cc;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : std::string(); };
    if (a == "--version") {
      std::printf("rcpd %s protocol %u\n", RCP_VERSION, kProtocolVersion);
      return kExitOk;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    } else if (a == "--role") {
      args.role = value();
    } else if (a == "--master") {
      args.masters = split(value(), ',');
    } else if (a == "--master-fingerprint") {
      master_fp = value();
    } else if (a == "--port-range") {
      args.port_range = value();
    } else if (a == "--stall-timeout") {  // seconds; tests shorten it
      args.stall_timeout_s = static_cast<unsigned>(std::strtoul(value().c_str(), nullptr, 10));
    } else if (a == "--log-level") {
      log_level = value();
    } else if (a == "--cc") {
      cc = value();
    } else if (a == "--max-udp-payload") {
      args.max_udp_payload = static_cast<size_t>(std::strtoul(value().c_str(), nullptr, 10));
    } else {
      return usage("unknown argument " + a);
    }
  }
  if (args.role != "source" && args.role != "destination") return usage("--role must be source or destination");
  // The source: one malloc arena for all threads (set before any thread
  // exists). Its blocks are allocated by 16 reader threads and freed by the
  // loop thread once acknowledged; with an arena per thread each arena kept
  // its own high-water mark (M_TRIM_THRESHOLD above), so the RSS grew with
  // the file: 131 MiB for 1 GiB, 46 MiB with one arena. Allocations are per
  // 256 KiB block, so its lock is not contended. The destination keeps the
  // default: one arena there measured 85 MiB against 34 (its loop thread
  // allocates every packet's data, which then mixes with the writers' buffers).
  if (args.role == "source") mallopt(M_ARENA_MAX, 1);
  if (args.masters.empty() != master_fp.empty())
    return usage("--master and --master-fingerprint go together (without both, the link is stdin/stdout)");
  if (!args.masters.empty()) {
    auto fp = parse_fingerprint(master_fp);
    if (!fp) return usage(fp.error().message);
    args.master_fingerprint = *fp;
  }
  if (auto r = PortRange::parse(args.port_range); !r) return usage(r.error().message);
  if (!log_level.empty()) {
    LogLevel level;
    if (!parse_log_level(log_level, level)) return usage("--log-level must be error, warn, info, debug or trace");
    args.log_level = level;
  }
  if (!cc.empty()) {
    auto parsed = parse_congestion_control(cc);
    if (!parsed) return usage(parsed.error().message);
    args.cc = *parsed;
  }
  Daemon daemon(std::move(args));
  return daemon.run();
}
