// The TCP+TLS data link: when UDP does not get through, a Link runs over
// several TLS 1.3 connections (TlsStream) carrying StreamTransport's
// framing, so big and many-file copies stay parallel. docs/protocol.md,
// "Link over TCP+TLS".
//
// Every connection is pinned both ways as on QUIC, and its client's first
// bytes inside TLS are a join: "RCPJOIN1", the connection's index and the
// count, a 16-byte link token (random, one per link) and an HMAC-SHA256
// under the session key over both fingerprints, the token, index and
// count. The listener groups connections by token and starts the Link once
// all `count` joined, so a party without the session key cannot splice a
// connection into someone's link, nor start one.
//
// TcpLinkServer has QuicEndpoint's stranger limits: unauthenticated
// connections (TLS handshake and join in progress) have their own slots,
// each with a deadline. Above EndpointConfig::max_handshakes, connections
// silent for 20 ms are evicted (oldest first); at twice that, a new
// connection evicts one at once: the oldest silent, else the oldest not
// heard from, else the oldest. A real peer speaks at once and finishes in a
// few round trips; only pinned peers that prove the session key get further.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/address.h"
#include "base/unique_fd.h"
#include "link/link.h"
#include "link/link_config.h"
#include "link/tls_stream.h"

namespace rcp {

inline constexpr size_t kMaxTcpConnections = 16;  // per link
inline constexpr size_t kTcpJoinSize = 8 + 1 + 1 + 16 + 32;
using LinkToken = std::array<uint8_t, 16>;

struct TcpLinkOptions {
  size_t connections = 4;  // 1..kMaxTcpConnections (the client decides)
  // TCP_CONGESTION for every connection ("bbr", "cubic", "reno"); empty: the
  // kernel's default. Where the kernel lacks it: the default, and one warning.
  std::string congestion;
};

// The join a client sends on connection `index` of `count` (tested directly).
std::array<uint8_t, kTcpJoinSize> encode_tcp_join(const SessionKey& key, const Fingerprint& client_fp,
                                                  const Fingerprint& server_fp, const LinkToken& token, uint8_t index,
                                                  uint8_t count);
struct TcpJoin {
  LinkToken token{};
  uint8_t index = 0;
  uint8_t count = 0;
};
// Errc::auth when the tag is wrong, Errc::protocol when it is no join.
Result<TcpJoin> decode_tcp_join(std::span<const uint8_t> bytes, const SessionKey& key, const Fingerprint& client_fp,
                                const Fingerprint& server_fp);

// A client Link over TCP+TLS to `remote`: connects options.connections
// connections in parallel, each pinned and joined, then the hello.
Result<std::shared_ptr<Link>> connect_tcp_link(const LinkConfig& config, const Address& remote,
                                               const TcpLinkOptions& options = {});

struct TcpServerCounters {
  uint64_t connections_accepted = 0;
  uint64_t handshakes_evicted = 0;
  uint64_t handshake_timeouts = 0;
  uint64_t tls_failures = 0;   // junk, wrong ALPN, no or unpinned certificate
  uint64_t join_failures = 0;  // pinned, but no valid join (wrong key, another session's...)
  uint64_t links_started = 0;
  size_t max_pending = 0;  // most unauthenticated connections held at once
};

class TcpLinkServer : public std::enable_shared_from_this<TcpLinkServer> {
 public:
  // Listens on bind_addr's port exactly (the source pairs it with UDP).
  static Result<std::shared_ptr<TcpLinkServer>> listen(const LinkConfig& config, const Address& bind_addr,
                                                       const TcpLinkOptions& options = {});
  ~TcpLinkServer();
  TcpLinkServer(const TcpLinkServer&) = delete;
  TcpLinkServer& operator=(const TcpLinkServer&) = delete;

  // Next peer whose connections all joined and whose hello arrived.
  Result<std::shared_ptr<Link>> accept(Nanos timeout);
  const Address& local_address() const { return local_; }
  uint64_t rejected() const;
  std::string last_rejection() const;
  TcpServerCounters counters() const;
  void add_pin(const Fingerprint& fp) { tls_->add_pin(fp); }
  // Closes the listening socket and drops every connection not in a Link.
  void stop_accepting();

 private:
  struct Pending {
    std::mutex mu;                      // stream: the worker takes it, eviction shuts it
    std::unique_ptr<TlsStream> stream;  // until it joined (or failed)
    TlsStream* raw = nullptr;           // the worker's while it runs
    std::atomic<bool> evicted{false};
    std::chrono::steady_clock::time_point since;
    std::atomic<bool> active{false};  // the peer has sent something
    std::atomic<bool> done{false};
    std::thread worker;
  };
  struct Group {
    std::vector<std::unique_ptr<TlsStream>> members;  // by index
    size_t joined = 0;
    Fingerprint peer{};
    std::chrono::steady_clock::time_point since;
  };

  TcpLinkServer(const LinkConfig& config, const TcpLinkOptions& options) : config_(config), options_(options) {}
  void run();
  void admit(UniqueFd fd);
  void handshake(const std::shared_ptr<Pending>& p);
  void joined(std::unique_ptr<TlsStream> stream, const TcpJoin& join);
  void reject(const std::string& why, uint64_t TcpServerCounters::*counter);
  void reap(bool all);
  size_t holding() const;  // unauthenticated connections held (acceptor thread)
  // Evicts one unauthenticated connection: only a silent one, or (any) the
  // best victim there is. false when none qualified.
  bool evict(bool any);
  void wake();

  LinkConfig config_;
  TcpLinkOptions options_;
  std::shared_ptr<TlsContext> tls_;
  UniqueFd listen_fd_;
  UniqueFd wake_fd_;
  Address local_;
  std::thread acceptor_;
  std::vector<std::shared_ptr<Pending>> pending_;  // acceptor thread

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<LinkToken, Group> groups_;
  std::deque<std::shared_ptr<Link>> ready_;
  bool accepting_ = true;
  bool stopping_ = false;
  bool cc_warned_ = false;
  uint64_t rejected_ = 0;
  std::string last_rejection_;
  TcpServerCounters counters_;
};

}  // namespace rcp
