#include "link/tcp_link.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>

#include "link/stream_transport.h"
#include "net/tcp_socket.h"

namespace rcp {

namespace {

constexpr std::array<uint8_t, 8> kJoinMagic{'R', 'C', 'P', 'J', 'O', 'I', 'N', '1'};
constexpr char kJoinLabel[] = "rcp tcp join v1";
// A data link's peer may keep as many data streams open as it has readers
// (the destination's max_uni_streams); this only caps a config that says more.
constexpr uint64_t kTcpUniStreamCap = 64;
// A connection that has sent nothing for this long is taken as a silent stranger.
constexpr auto kSilentAfter = std::chrono::milliseconds(20);

Sha256Digest join_tag(const SessionKey& key, const Fingerprint& client_fp, const Fingerprint& server_fp,
                      const LinkToken& token, uint8_t index, uint8_t count) {
  HmacSha256 mac(key);
  mac.update({reinterpret_cast<const uint8_t*>(kJoinLabel), sizeof kJoinLabel - 1});
  mac.update(client_fp);
  mac.update(server_fp);
  mac.update(token);
  const uint8_t tail[2] = {index, count};
  mac.update(tail);
  return mac.finish();
}

StreamTransportOptions transport_options(const LinkConfig& config) {
  StreamTransportOptions o;
  o.uni_stream_cap = kTcpUniStreamCap;
  // The Link holds its data writers to send_buffer unsent bytes in all: keep
  // all of it (StreamTransport bounds the send buffer to half of this).
  o.max_unsent_per_stream = std::max<size_t>(kMaxUnsentPerStream, 2 * config.quic.send_buffer);
  return o;
}

auto deadline_after(Nanos t) { return std::chrono::steady_clock::now() + std::chrono::nanoseconds(t); }

// TCP_CONGESTION on `fd`; the first failure per link is worth one warning.
void apply_congestion(int fd, const std::string& name, const Logger& logger, bool* warned) {
  if (name.empty()) return;
  if (auto r = set_tcp_congestion(fd, name); !r && !*warned) {
    *warned = true;
    const std::string now = tcp_congestion(fd);
    logger.warn("TCP congestion control " + name + " is not available here (" + r.error().message + "); using " +
                (now.empty() ? std::string("the kernel's default") : now));
  }
}

}  // namespace

std::array<uint8_t, kTcpJoinSize> encode_tcp_join(const SessionKey& key, const Fingerprint& client_fp,
                                                  const Fingerprint& server_fp, const LinkToken& token, uint8_t index,
                                                  uint8_t count) {
  std::array<uint8_t, kTcpJoinSize> out{};
  auto* p = out.data();
  p = std::copy(kJoinMagic.begin(), kJoinMagic.end(), p);
  *p++ = index;
  *p++ = count;
  p = std::copy(token.begin(), token.end(), p);
  const auto tag = join_tag(key, client_fp, server_fp, token, index, count);
  std::copy(tag.begin(), tag.end(), p);
  return out;
}

Result<TcpJoin> decode_tcp_join(std::span<const uint8_t> bytes, const SessionKey& key, const Fingerprint& client_fp,
                                const Fingerprint& server_fp) {
  if (bytes.size() != kTcpJoinSize || !std::equal(kJoinMagic.begin(), kJoinMagic.end(), bytes.begin()))
    return make_error(Errc::protocol, "not an rcp TCP join");
  TcpJoin j;
  j.index = bytes[8];
  j.count = bytes[9];
  std::copy(bytes.begin() + 10, bytes.begin() + 26, j.token.begin());
  const auto tag = join_tag(key, client_fp, server_fp, j.token, j.index, j.count);
  if (!constant_time_equal(tag, bytes.subspan(26, 32)))
    return make_error(Errc::auth, "TCP join: bad session tag (not this session's peer)");
  if (j.count == 0 || j.count > kMaxTcpConnections || j.index >= j.count)
    return make_error(Errc::protocol, "TCP join: connection " + std::to_string(j.index) + " of " +
                                          std::to_string(j.count) + " is out of bounds");
  return j;
}

// ---------------------------------------------------------------- client

Result<std::shared_ptr<Link>> connect_tcp_link(const LinkConfig& config, const Address& remote,
                                               const TcpLinkOptions& options) {
  if (config.tls.pinned_peers.empty()) return make_error(Errc::invalid_argument, "no peer fingerprint to pin");
  const size_t n = std::clamp<size_t>(options.connections, 1, kMaxTcpConnections);
  auto ctx = TlsContext::create(config.tls, TlsCarrier::tcp);
  if (!ctx) return ctx.error();
  LinkToken token{};
  if (auto r = random_bytes(token); !r) return r.error();
  const auto deadline = deadline_after(config.quic.handshake_timeout);
  std::atomic<bool> warned{false};
  auto one = [&](size_t index) -> Result<std::unique_ptr<TlsStream>> {
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now());
    auto fd = tcp_connect(remote, std::max<Nanos>(left.count(), 0));
    if (!fd) return fd.error();
    bool w = warned.exchange(true);  // one warning per link at most
    apply_congestion(fd->get(), options.congestion, config.quic.logger, &w);
    auto stream = TlsStream::create(std::move(*fd), *ctx);
    if (!stream) return stream.error();
    const auto rest = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now());
    if (auto r = (*stream)->handshake(std::max<Nanos>(rest.count(), 1)); !r) return r.error();
    const auto join =
        encode_tcp_join(config.session_key, config.tls.identity.fingerprint, (*stream)->peer_fingerprint(), token,
                        static_cast<uint8_t>(index), static_cast<uint8_t>(n));
    if (auto r = (*stream)->write_all(join); !r) return r.error();
    return std::move(*stream);
  };
  std::vector<std::future<Result<std::unique_ptr<TlsStream>>>> tries;
  for (size_t i = 0; i < n; ++i) tries.push_back(std::async(std::launch::async, one, i));
  std::vector<std::unique_ptr<ByteStream>> streams;
  Error first;
  for (auto& t : tries) {
    auto s = t.get();
    if (s) {
      streams.push_back(std::move(*s));
      continue;
    }
    // The most telling failure wins: a pin mismatch over a timeout.
    if (first.code == Errc::ok || s.error().code == Errc::pin_mismatch) first = s.error();
  }
  if (first.code != Errc::ok) return first;
  auto link = StreamTransport::start(std::move(streams), config, true, transport_options(config));
  if (auto r = link->wait_ready(config.quic.handshake_timeout); !r) return r.error();
  return link;
}

// ---------------------------------------------------------------- server

Result<std::shared_ptr<TcpLinkServer>> TcpLinkServer::listen(const LinkConfig& config, const Address& bind_addr,
                                                             const TcpLinkOptions& options) {
  std::shared_ptr<TcpLinkServer> s(new TcpLinkServer(config, options));
  auto ctx = TlsContext::create(config.tls, TlsCarrier::tcp);
  if (!ctx) return ctx.error();
  s->tls_ = std::move(*ctx);
  auto fd = tcp_listen(bind_addr);
  if (!fd) return fd.error();
  s->listen_fd_ = std::move(*fd);
  auto local = local_address_of(s->listen_fd_.get());
  if (!local) return local.error();
  s->local_ = *local;
  s->wake_fd_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (s->wake_fd_.get() < 0) return errno_error("eventfd", errno);
  s->acceptor_ = std::thread([raw = s.get()] { raw->run(); });
  return s;
}

TcpLinkServer::~TcpLinkServer() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  wake();
  if (acceptor_.joinable()) acceptor_.join();
}

void TcpLinkServer::wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof one);
}

void TcpLinkServer::stop_accepting() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    accepting_ = false;
  }
  wake();
}

uint64_t TcpLinkServer::rejected() const {
  std::lock_guard<std::mutex> lk(mu_);
  return rejected_;
}

std::string TcpLinkServer::last_rejection() const {
  std::lock_guard<std::mutex> lk(mu_);
  return last_rejection_;
}

TcpServerCounters TcpLinkServer::counters() const {
  std::lock_guard<std::mutex> lk(mu_);
  return counters_;
}

void TcpLinkServer::reject(const std::string& why, uint64_t TcpServerCounters::*counter) {
  std::lock_guard<std::mutex> lk(mu_);
  ++rejected_;
  last_rejection_ = why;
  if (counter) ++(counters_.*counter);
  config_.quic.logger.debug("TCP peer refused: " + why);
}

void TcpLinkServer::run() {
  for (;;) {
    bool accepting;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stopping_) break;
      accepting = accepting_;
      // Groups that never completed in time are dropped with their connections.
      const auto now = std::chrono::steady_clock::now();
      for (auto it = groups_.begin(); it != groups_.end();) {
        if (now - it->second.since > std::chrono::nanoseconds(config_.quic.handshake_timeout)) {
          ++rejected_;
          last_rejection_ = "a TCP link's connections did not all join in time";
          it = groups_.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (!accepting && listen_fd_.get() >= 0) {
      listen_fd_.reset();
      reap(true);
    }
    reap(false);
    // Over the soft bound, the connections that stayed silent go first.
    while (holding() > config_.max_handshakes && evict(false)) {
    }
    const int wait_ms = holding() > config_.max_handshakes ? 10 : 100;
    pollfd fds[2] = {{wake_fd_.get(), POLLIN, 0}, {listen_fd_.get(), POLLIN, 0}};
    const int n = ::poll(fds, listen_fd_.get() >= 0 ? 2 : 1, wait_ms);
    if (n < 0 && errno != EINTR) break;
    if (fds[0].revents) {
      uint64_t v;
      (void)!::read(wake_fd_.get(), &v, sizeof v);
    }
    if (listen_fd_.get() >= 0 && fds[1].revents) {
      for (;;) {
        auto fd = tcp_accept(listen_fd_.get());
        if (!fd) break;
        admit(std::move(*fd));
      }
    }
  }
  reap(true);
}

void TcpLinkServer::admit(UniqueFd fd) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++counters_.connections_accepted;
    apply_congestion(fd.get(), options_.congestion, config_.quic.logger, &cc_warned_);
  }
  // At the hard bound, one must go now: the oldest that has been silent a
  // while, else the oldest not heard from yet, else the oldest.
  if (holding() >= 2 * config_.max_handshakes) evict(true);
  auto stream = TlsStream::create(std::move(fd), tls_);
  if (!stream) {
    reject(stream.error().message, nullptr);
    return;
  }
  auto p = std::make_shared<Pending>();
  p->raw = stream->get();
  p->stream = std::move(*stream);
  p->since = std::chrono::steady_clock::now();
  pending_.push_back(p);
  const size_t held = holding();  // unauthenticated connections now: the bound tests check
  {
    std::lock_guard<std::mutex> lk(mu_);
    counters_.max_pending = std::max(counters_.max_pending, held);
  }
  p->worker = std::thread([this, p] { handshake(p); });
}

size_t TcpLinkServer::holding() const {
  size_t n = 0;
  for (auto& p : pending_) n += !p->done.load() && !p->evicted.load();
  return n;
}

bool TcpLinkServer::evict(bool any) {
  const auto now = std::chrono::steady_clock::now();
  // 0: silent for kSilentAfter; 1: not heard from yet; 2: has sent something.
  auto rank = [&](const std::shared_ptr<Pending>& p) {
    if (!p->active.load()) {
      std::lock_guard<std::mutex> lk(p->mu);
      pollfd pf{p->stream ? p->stream->fd() : -1, POLLIN, 0};
      if (pf.fd >= 0 && ::poll(&pf, 1, 0) > 0) p->active = true;  // asked of the socket: not read yet
    }
    if (p->active.load()) return 2;
    return now - p->since >= kSilentAfter ? 0 : 1;
  };
  std::shared_ptr<Pending> victim;
  int victim_rank = 3;
  for (auto& p : pending_) {
    if (p->done.load() || p->evicted.load()) continue;
    const int r = rank(p);
    if (r < victim_rank || (r == victim_rank && p->since < victim->since)) {
      victim = p;
      victim_rank = r;
    }
  }
  if (!victim || (!any && victim_rank != 0)) return false;
  {
    std::lock_guard<std::mutex> lk(victim->mu);
    victim->evicted = true;
    if (victim->stream) victim->stream->shutdown();
  }
  std::lock_guard<std::mutex> g(mu_);
  ++counters_.handshakes_evicted;
  return true;
}

void TcpLinkServer::reap(bool all) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    auto& p = *it;
    if (all && !p->done.load()) {
      std::lock_guard<std::mutex> lk(p->mu);
      p->evicted = true;
      if (p->stream) p->stream->shutdown();
    }
    if (all || p->done.load()) {
      if (p->worker.joinable()) p->worker.join();
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void TcpLinkServer::handshake(const std::shared_ptr<Pending>& p) {
  TlsStream& s = *p->raw;
  const auto deadline = deadline_after(config_.quic.handshake_timeout);
  auto left = [&] {
    return std::max<Nanos>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now()).count(), 1);
  };
  auto failed = [&](const Error& e) {
    if (e.code == Errc::timeout)
      reject("handshake timed out", &TcpServerCounters::handshake_timeouts);
    else if (e.code == Errc::closed && p->evicted)
      reject("handshake evicted for a newer connection", nullptr);
    else if (e.code == Errc::auth || e.code == Errc::protocol)
      reject(e.message, &TcpServerCounters::join_failures);
    else
      reject(e.message, &TcpServerCounters::tls_failures);
    std::lock_guard<std::mutex> lk(p->mu);
    p->stream.reset();
    p->done = true;
  };
  if (auto r = s.wait_readable(left()); !r) return failed(r.error());
  p->active = true;
  if (auto r = s.handshake(left()); !r) return failed(r.error());
  std::array<uint8_t, kTcpJoinSize> buf{};
  s.set_deadline(deadline);
  if (auto r = s.read_exact(buf); !r) return failed(r.error());
  s.clear_deadline();
  auto join = decode_tcp_join(buf, config_.session_key, s.peer_fingerprint(), config_.tls.identity.fingerprint);
  if (!join) return failed(join.error());
  std::unique_ptr<TlsStream> taken;
  {
    std::lock_guard<std::mutex> lk(p->mu);
    if (!p->evicted) taken = std::move(p->stream);
  }
  if (!taken) return failed(make_error(Errc::closed, "evicted"));
  joined(std::move(taken), *join);
  p->done = true;
}

void TcpLinkServer::joined(std::unique_ptr<TlsStream> stream, const TcpJoin& join) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!accepting_) {
    ++rejected_;
    last_rejection_ = "a TCP connection joined after the listener stopped accepting";
    return;
  }
  auto it = groups_.find(join.token);
  if (it == groups_.end()) {
    if (groups_.size() >= config_.max_connections) {
      ++rejected_;
      ++counters_.join_failures;
      last_rejection_ = "too many TCP links starting at once";
      return;
    }
    Group g;
    g.members.resize(join.count);
    g.peer = stream->peer_fingerprint();
    g.since = std::chrono::steady_clock::now();
    it = groups_.emplace(join.token, std::move(g)).first;
  }
  Group& g = it->second;
  // One link, one peer: every connection of it from the same certificate,
  // each index once, the same count throughout.
  if (g.members.size() != join.count || g.members[join.index] ||
      !constant_time_equal(g.peer, stream->peer_fingerprint())) {
    ++rejected_;
    ++counters_.join_failures;
    last_rejection_ = "a TCP connection that does not fit the link it names";
    return;
  }
  g.members[join.index] = std::move(stream);
  if (++g.joined < g.members.size()) return;
  std::vector<std::unique_ptr<ByteStream>> streams;
  for (auto& m : g.members) streams.push_back(std::move(m));
  LinkConfig cfg = config_;
  cfg.tls.pinned_peers = {g.peer};  // the certificate this peer proved: what its hello must name
  groups_.erase(it);
  ++counters_.links_started;
  ready_.push_back(StreamTransport::start(std::move(streams), cfg, false, transport_options(cfg)));
  lk.unlock();
  cv_.notify_all();
}

Result<std::shared_ptr<Link>> TcpLinkServer::accept(Nanos timeout) {
  const auto deadline = deadline_after(timeout);
  for (;;) {
    std::shared_ptr<Link> link;
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (!cv_.wait_until(lk, deadline, [&] { return !ready_.empty() || stopping_; }))
        return make_error(Errc::timeout, "no TCP peer in time");
      if (ready_.empty()) return make_error(Errc::closed, "listener stopped");
      link = std::move(ready_.front());
      ready_.pop_front();
    }
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now());
    if (auto r = link->wait_ready(std::max<Nanos>(left.count(), kSeconds)); r)
      return link;
    else
      reject("hello failed: " + r.error().message, nullptr);
  }
}

}  // namespace rcp
