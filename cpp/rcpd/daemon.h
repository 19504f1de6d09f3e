// The rcpd daemon: one per host and copy. Its life, in named steps:
// make its certificate and print the hello line, read the session key,
// open the control link to the master — over stdin/stdout by default, or a
// QUIC back-connection with --master (for debugging) — and watch it (no rcpd
// outlives its master), route log lines there, report progress, run its
// role (source or destination), send the result and wait for the master to
// hang up.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "copy/copy_source.h"
#include "copy/transfer_counters.h"
#include "link/link.h"
#include "quic/certificate.h"
#include "quic/quic_config.h"
#include "wire/messages.h"

namespace rcp {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitLink = 3;

// What main() parsed and checked.
struct DaemonArgs {
  std::string role;                  // "source" or "destination"
  std::vector<std::string> masters;  // HOST:PORT, tried in order; empty: the link is stdin/stdout
  Fingerprint master_fingerprint{};
  std::string port_range;      // the source's listener
  size_t max_udp_payload = 0;  // 0: QUIC's default
  std::optional<CongestionControl> cc;
  std::optional<LogLevel> log_level;  // the master's -v: over RCP_LOG
  unsigned stall_timeout_s = 0;       // 0: the destination's default
};

class Daemon {
 public:
  explicit Daemon(DaemonArgs args);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // The whole life of the daemon; returns the process exit status.
  int run();

 private:
  Result<void> make_identity();     // certificate, and the hello line on stdout
  Result<void> read_session_key();  // stdin's first line
  void start_stdin_watcher();       // QUIC: stdin closing ends the process
  void start_link_watcher();        // stdio: the link closing ends the process
  Result<void> connect_master();
  Result<void> connect_master_stdio();
  void route_logs_to_master();
  void start_reporter();
  void stop_reporter();
  void send_progress();
  Result<CopySummary> run_source();
  Result<CopySummary> send_job(std::shared_ptr<Link> peer);  // the source's copy, once linked to the destination
  Result<CopySummary> run_destination();
  static Result<void> known_transport(const std::string& transport);
  // The destination's direct QUIC link to the source, trying its addresses in order.
  Result<std::shared_ptr<Link>> connect_quic(const LinkConfig& cfg, const ConnectPeerMsg& where);
  // --relay: the link to the other rcpd through the master, over two data
  // streams of the control link (link/link_tunnel.h); client: the destination.
  Result<std::shared_ptr<Link>> relayed_peer(const LinkConfig& cfg, bool client);
  void log_throughput(double seconds);
  int send_outcome(const Result<CopySummary>& result);
  void wait_for_hangup();

  DaemonArgs args_;
  Certificate cert_;
  SessionKey key_{};
  QuicConfig quic_;
  Logger logger_;
  std::shared_ptr<Link> master_;
  TransferCounters counters_;
  std::mutex cleanup_mu_;
  std::function<void()> cleanup_;  // runs when stdin (or the stdio link) closes mid-copy
  bool hanging_up_ = false;        // under cleanup_mu_: the result is out, a close is expected
  std::atomic<bool> reporting_{false};
  std::thread reporter_;
};

}  // namespace rcp
