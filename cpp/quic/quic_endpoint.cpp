#include "quic/quic_endpoint.h"

#include <sys/epoll.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <tuple>

namespace rcp {

namespace {

constexpr size_t kRecvSlots = 32;

std::string cid_key(const uint8_t* data, size_t len) { return std::string(reinterpret_cast<const char*>(data), len); }

}  // namespace

Result<std::shared_ptr<QuicEndpoint>> QuicEndpoint::listen(const EndpointConfig& config, const Address& bind_addr,
                                                           ConnectionHandlerFactory factory) {
  if (config.tls.role != TlsRole::server)
    return make_error(Errc::invalid_argument, "listen() needs the server TLS role");
  std::shared_ptr<QuicEndpoint> ep(new QuicEndpoint(config, std::move(factory)));
  ep->server_ = true;
  auto r = ep->start(bind_addr);
  if (!r) return r.error();
  return ep;
}

Result<QuicEndpoint::Handle> QuicEndpoint::connect(const EndpointConfig& config, const Address& remote,
                                                   ConnectionHandlerFactory factory) {
  if (config.tls.role != TlsRole::client)
    return make_error(Errc::invalid_argument, "connect() needs the client TLS role");
  std::shared_ptr<QuicEndpoint> ep(new QuicEndpoint(config, std::move(factory)));
  auto any = Address::parse(remote.family() == AF_INET6 ? "::" : "0.0.0.0", 0);
  if (!any) return any.error();
  EndpointConfig client_cfg = config;
  client_cfg.quic.port_range.clear();  // the client's own port is ephemeral
  ep->config_ = client_cfg;
  auto r = ep->start(*any);
  if (!r) return r.error();

  std::promise<Result<Handle>> made;
  auto fut = made.get_future();
  ep->loop().post([&] {
    auto handle = ep->add_connection(remote, nullptr, nullptr);
    if (!handle) {
      made.set_value(handle.error());
      return;
    }
    ep->schedule_flush(*handle);
    made.set_value(ep->handle_for(ep->conns_.at(*handle).handler));  // last: `ep` is the caller's
  });
  return fut.get();
}

Result<void> QuicEndpoint::start(const Address& bind_addr) {
  auto ports = PortRange::parse(config_.quic.port_range);
  if (!ports) return ports.error();
  auto sock = UdpSocket::bind(bind_addr, *ports, config_.quic.udp);
  if (!sock) return sock.error();
  socket_ = std::move(sock.value());
  auto tls = TlsContext::create(config_.tls);
  if (!tls) return tls.error();
  tls_ = std::move(tls.value());
  if (server_) {
    auto v = AddressValidator::create();
    if (!v) return v.error();
    validator_ = v.value();
    retry_limiter_ = RetryLimiter(config_.retries_per_second, config_.retry_burst, config_.retries_total_per_second);
  }
  rxbuf_.resize(kRecvSlots * kMaxUdpPayload);
  auto lt = LoopThread::start(server_ ? "rcp-quic-srv" : "rcp-quic-cli");
  if (!lt) return lt.error();
  thread_ = std::move(lt.value());
  loop_ = &thread_->loop();
  Result<void> added;
  thread_->run_sync([&] {
    added = loop().add(socket_.fd(), EPOLLIN, [this](uint32_t ev) {
      if (ev & EPOLLOUT) on_writable();
      if (ev & (EPOLLIN | EPOLLERR)) on_readable();
    });
  });
  return added;
}

QuicEndpoint::~QuicEndpoint() {
  if (thread_) {
    thread_->run_sync([this] { shutdown_on_loop(); });
    thread_.reset();  // joins the loop thread before the members it uses go away
  }
}

void QuicEndpoint::shutdown_on_loop() {
  loop().assert_in_loop_thread();
  for (auto& [h, e] : conns_) {
    e.conn->close(e.handler->close_code(), "endpoint shut down");
    e.handler->on_closed(e.conn->error());
  }
  conns_.clear();
  by_cid_.clear();
  if (socket_.fd() >= 0) loop().remove(socket_.fd());
}

QuicEndpoint::Handle QuicEndpoint::handle_for(std::shared_ptr<ConnectionHandler> handler) {
  ConnectionHandler* raw = handler.get();
  return Handle(raw, [handler = std::move(handler), self = shared_from_this()](ConnectionHandler*) mutable {
    handler.reset();
    self.reset();
  });
}

Result<uint64_t> QuicEndpoint::add_connection(const Address& remote, const ngtcp2_pkt_hd* hd, const ngtcp2_cid* odcid) {
  loop().assert_in_loop_thread();
  uint64_t handle = next_handle_++;
  Entry e;
  e.handler = factory_(ConnectionPort(this, handle));
  if (!e.handler) return make_error(Errc::invalid_argument, "no handler for a new connection");
  QuicConnection::Events ev;
  // Events fire inside ngtcp2 calls; they reach the handler through the
  // handle so a connection removed meanwhile is simply not found.
  auto handler_of = [this, handle]() -> ConnectionHandler* {
    auto it = conns_.find(handle);
    return it == conns_.end() ? nullptr : it->second.handler.get();
  };
  if (server_) ev.admit = [this, handle] { return admit_authenticated(handle); };
  ev.handshake_done = [handler_of] {
    if (auto* h = handler_of()) h->on_handshake_done();
  };
  ev.stream_data = [handler_of](int64_t id, std::span<const uint8_t> d, bool fin) {
    if (auto* h = handler_of()) h->on_stream_data(id, d, fin);
  };
  ev.stream_acked = [handler_of](int64_t id, uint64_t freed) {
    if (auto* h = handler_of()) h->on_stream_acked(id, freed);
  };
  ev.stream_closed = [handler_of](int64_t id, uint64_t code) {
    if (auto* h = handler_of()) h->on_stream_closed(id, code);
  };
  ev.streams_available = [handler_of] {
    if (auto* h = handler_of()) h->on_streams_available();
  };
  // The handler outlives its connection (Entry), so it may be captured.
  ev.classify_app_error = [h = e.handler.get()](uint64_t code) { return h->classify_app_error(code); };
  ev.closed = [this, handle] {
    // Removal is deferred: we are inside the connection's own call stack.
    loop().post([this, handle] { remove_connection(handle); });
  };
  ev.cid_changed = [this, handle](const ngtcp2_cid& cid, bool added) {
    if (added)
      by_cid_[cid_key(cid.data, cid.datalen)] = handle;
    else
      by_cid_.erase(cid_key(cid.data, cid.datalen));
  };
  const Nanos now = monotonic_now();
  const Address& local = socket_.local_address();
  auto conn = hd ? QuicConnection::accept(config_.quic, tls_, sink_, local, remote, *hd, odcid, std::move(ev), now)
                 : QuicConnection::connect(config_.quic, tls_, sink_, local, remote, std::move(ev), now);
  if (!conn) return conn.error();
  e.conn = std::move(conn.value());
  auto timer = Timer::create(loop(), [this, handle] { on_timer(handle); });
  if (!timer) return timer.error();
  e.timer = std::move(timer.value());
  for (const auto& cid : e.conn->cids()) by_cid_[cid_key(cid.data, cid.datalen)] = handle;
  if (hd) by_cid_[cid_key(hd->dcid.data, hd->dcid.datalen)] = handle;  // the client's first, chosen DCID
  conns_.emplace(handle, std::move(e));
  return handle;
}

void QuicEndpoint::remove_connection(uint64_t handle) {
  loop().assert_in_loop_thread();
  auto it = conns_.find(handle);
  if (it == conns_.end()) return;
  const Error& err = it->second.conn->error();
  if (server_ && !it->second.session_ready)
    rejected_peer(err.message.empty() ? "closed before the session was established" : err.message);
  it->second.handler->on_closed(err);
  for (auto i = by_cid_.begin(); i != by_cid_.end();) i = i->second == handle ? by_cid_.erase(i) : std::next(i);
  conns_.erase(it);
}

QuicConnection* QuicEndpoint::connection(uint64_t handle) {
  loop().assert_in_loop_thread();
  auto it = conns_.find(handle);
  return it == conns_.end() ? nullptr : it->second.conn.get();
}

void QuicEndpoint::on_readable() {
  loop().assert_in_loop_thread();
  Datagram dgrams[kRecvSlots];
  for (int round = 0; round < 64; ++round) {  // bounded, so timers and posts get their turn
    auto n = socket_.recv(rxbuf_, kMaxUdpPayload, dgrams);
    if (!n || *n == 0) break;
    for (size_t i = 0; i < *n; ++i) dispatch({rxbuf_.data() + i * kMaxUdpPayload, dgrams[i].len}, dgrams[i].from);
    for (auto& [h, e] : conns_) e.handler->wake_readers();
  }
  flush_scheduled();
}

void QuicEndpoint::dispatch(std::span<const uint8_t> pkt, const Address& from) {
  if (!server_) {
    if (!conns_.empty()) {
      auto& [h, e] = *conns_.begin();
      e.conn->on_datagram(pkt, from, monotonic_now());
      schedule_flush(h);
    }
    return;
  }
  ngtcp2_version_cid vc;
  if (ngtcp2_pkt_decode_version_cid(&vc, pkt.data(), pkt.size(), kQuicCidLen) != 0) return;  // not for us
  auto it = by_cid_.find(cid_key(vc.dcid, vc.dcidlen));
  if (it != by_cid_.end()) {
    if (QuicConnection* c = connection(it->second)) {
      c->on_datagram(pkt, from, monotonic_now());
      schedule_flush(it->second);
    }
    return;
  }
  accept_initial(pkt, from);
}

void QuicEndpoint::accept_initial(std::span<const uint8_t> pkt, const Address& from) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!accepting_) return;
  }
  ngtcp2_pkt_hd hd;
  if (ngtcp2_accept(&hd, pkt.data(), pkt.size()) != 0 || hd.type != NGTCP2_PKT_INITIAL) return;
  const Nanos now = monotonic_now();
  std::optional<ngtcp2_cid> odcid;
  if (hd.tokenlen == 0) {
    // An idle server takes the Initial as it is: a Retry costs every peer a
    // round trip, which on a lossy path can cost the handshake. Once any
    // handshake is in progress, strangers get only a stateless Retry, so at
    // most one unvalidated handshake exists at a time and a validated one
    // evicts it first (make_room_for_handshake).
    if (handshakes_in_progress() > 0 || config_.max_handshakes == 0) {
      send_retry(hd, from);  // stateless: no slot, no memory
      return;
    }
  } else {
    auto checked = validator_->check_token(hd, from, now);
    if (!checked) {
      std::lock_guard<std::mutex> lk(mu_);
      ++counters_.invalid_tokens;  // silently: a replayed or forged token earns no answer
      return;
    }
    odcid = *checked;
    if (!make_room_for_handshake(from)) return;
  }
  auto handle = add_connection(from, &hd, odcid ? &*odcid : nullptr);
  if (!handle) {
    config_.quic.logger.warn("cannot accept connection from " + from.to_string() + ": " + handle.error().message);
    return;
  }
  conns_.at(*handle).address_validated = odcid.has_value();
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++counters_.handshakes_started;
    if (!odcid) ++counters_.handshakes_unvalidated;
  }
  if (QuicConnection* c = connection(*handle)) {
    c->on_datagram(pkt, from, monotonic_now());
    schedule_flush(*handle);
  }
}

void QuicEndpoint::send_retry(const ngtcp2_pkt_hd& hd, const Address& from) {
  const Nanos now = monotonic_now();
  if (!retry_limiter_.allow(from, now)) {
    std::lock_guard<std::mutex> lk(mu_);
    ++counters_.retries_suppressed;
    return;
  }
  auto pkt = validator_->retry_packet(hd, from, now);
  if (!pkt) {
    config_.quic.logger.warn("cannot answer " + from.to_string() + " with a Retry: " + pkt.error().message);
    return;
  }
  (void)socket_.send(from, *pkt, pkt->size());  // lost or refused: the client's Initial is retransmitted
  std::lock_guard<std::mutex> lk(mu_);
  ++counters_.retries_sent;
}

bool QuicEndpoint::make_room_for_handshake(const Address& from) {
  if (config_.max_handshakes == 0) return false;
  // Handshakes in progress by client address, oldest first (handles grow).
  std::map<std::string, std::vector<std::pair<uint64_t, Entry*>>> by_ip;
  size_t in_progress = 0;
  for (auto& [h, e] : conns_) {
    if (e.conn->closed() || e.conn->handshake_done()) continue;
    by_ip[e.conn->remote().ip_bytes()].emplace_back(h, &e);
    ++in_progress;
  }
  if (in_progress < config_.max_handshakes) return true;
  // Full. An unvalidated handshake (taken without a Retry) goes first: its
  // peer may not even be at its address.
  for (auto& [h, e] : conns_) {
    if (e.conn->closed() || e.conn->handshake_done() || e.address_validated) continue;
    evict(e);
    return true;
  }
  // Otherwise: the newcomer proved its address just now; make way at the address
  // holding the most handshakes (the newcomer counting for its own), there
  // the oldest; on a tie the newcomer's own address pays, else the oldest.
  // Strangers at one address, even replaying their Retry tokens, then only
  // ever evict each other, never a peer at another address.
  const std::string mine = from.ip_bytes();
  auto rank = [&](const auto& item) {
    const auto& [ip, entries] = item;
    return std::make_tuple(entries.size() + (ip == mine ? 1 : 0), ip == mine, UINT64_MAX - entries.front().first);
  };
  auto pick =
      std::max_element(by_ip.begin(), by_ip.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  evict(*pick->second.front().second);
  return true;
}

void QuicEndpoint::evict(Entry& victim) {
  victim.conn->close(victim.handler->close_code(), "handshake evicted by a newer one");
  std::lock_guard<std::mutex> lk(mu_);
  ++counters_.handshakes_evicted;
}

size_t QuicEndpoint::handshakes_in_progress() const {
  size_t n = 0;
  for (const auto& [h, e] : conns_)
    if (!e.conn->closed() && !e.conn->handshake_done()) ++n;
  return n;
}

bool QuicEndpoint::admit_authenticated(uint64_t handle) {
  size_t authenticated = 0;
  for (auto& [h, e] : conns_)
    if (h != handle && !e.conn->closed() && e.conn->handshake_done()) ++authenticated;
  if (authenticated < config_.max_connections) return true;
  std::lock_guard<std::mutex> lk(mu_);
  ++counters_.refused_no_slot;
  return false;
}

void QuicEndpoint::schedule_flush(uint64_t handle) {
  loop().assert_in_loop_thread();
  to_flush_.push_back(handle);
  if (!flush_posted_) {
    flush_posted_ = true;
    loop().post([this] { flush_scheduled(); });
  }
}

void QuicEndpoint::flush_scheduled() {
  loop().assert_in_loop_thread();
  flush_posted_ = false;
  std::vector<uint64_t> handles;
  handles.swap(to_flush_);
  std::sort(handles.begin(), handles.end());
  handles.erase(std::unique(handles.begin(), handles.end()), handles.end());
  const Nanos now = monotonic_now();
  for (uint64_t h : handles) {
    QuicConnection* c = connection(h);
    if (c == nullptr) continue;
    if (c->flush(now)) schedule_flush(h);  // budget used up: continue after other events
    rearm_timer(h);
  }
  update_write_interest();
}

void QuicEndpoint::on_timer(uint64_t handle) {
  loop().assert_in_loop_thread();
  if (QuicConnection* c = connection(handle)) {
    c->on_timer(monotonic_now());
    rearm_timer(handle);
    update_write_interest();
  }
}

void QuicEndpoint::rearm_timer(uint64_t handle) {
  auto it = conns_.find(handle);
  if (it == conns_.end()) return;
  const Nanos at = it->second.conn->expiry();
  if (at == QuicConnection::kNever)
    it->second.timer->disarm();
  else
    it->second.timer->arm_at(at);
}

void QuicEndpoint::on_writable() {
  for (auto& [h, e] : conns_)
    if (e.conn->blocked_on_socket()) schedule_flush(h);
}

void QuicEndpoint::update_write_interest() {
  bool want = false;
  for (auto& [h, e] : conns_) want |= e.conn->blocked_on_socket();
  if (want != want_write_) {
    want_write_ = want;
    (void)loop().modify(socket_.fd(), EPOLLIN | (want ? EPOLLOUT : 0u));
  }
}

Result<QuicEndpoint::Handle> QuicEndpoint::accept(Nanos timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout);
  if (!cv_.wait_until(lk, deadline, [&] { return !ready_.empty(); }))
    return make_error(Errc::timeout,
                      "no peer completed the handshake in time" +
                          (last_rejection_.empty() ? std::string() : " (last refused: " + last_rejection_ + ")"));
  auto handler = ready_.front();
  ready_.pop_front();
  lk.unlock();
  return handle_for(std::move(handler));
}

void QuicEndpoint::session_ready(uint64_t handle) {
  loop().assert_in_loop_thread();
  auto it = conns_.find(handle);
  if (it == conns_.end() || it->second.session_ready) return;
  it->second.session_ready = true;
  if (!server_) return;  // a client's connect() already handed out its handle
  std::lock_guard<std::mutex> lk(mu_);
  ready_.push_back(it->second.handler);
  cv_.notify_all();
}

void QuicEndpoint::rejected_peer(const std::string& why) {
  config_.quic.logger.info("refused a peer: " + why);
  std::lock_guard<std::mutex> lk(mu_);
  ++rejected_;
  last_rejection_ = why;
  cv_.notify_all();
}

uint64_t QuicEndpoint::rejected() const {
  std::lock_guard<std::mutex> lk(mu_);
  return rejected_;
}

ServerCounters QuicEndpoint::counters() const {
  std::lock_guard<std::mutex> lk(mu_);
  return counters_;
}

std::string QuicEndpoint::last_rejection() const {
  std::lock_guard<std::mutex> lk(mu_);
  return last_rejection_;
}

void QuicEndpoint::stop_accepting() {
  std::lock_guard<std::mutex> lk(mu_);
  accepting_ = false;
}

void ConnectionPort::post(std::function<void(QuicConnection*)> fn) const {
  QuicEndpoint* ep = endpoint_;
  uint64_t h = handle_;
  ep->loop().post([ep, h, fn = std::move(fn)] {
    QuicConnection* c = ep->connection(h);
    fn(c);
    if (c) ep->schedule_flush(h);
  });
}

QuicConnection* ConnectionPort::connection() const { return endpoint_->connection(handle_); }

void ConnectionPort::session_ready() const { endpoint_->session_ready(handle_); }

}  // namespace rcp
