// Test support: two QuicConnections joined by a simulated network (loss,
// delay, jitter that reorders) under a simulated clock. No sockets, no
// threads, no clock reads: a run is a bounded loop of "deliver what is due,
// fire due timers, flush". The server side answers the first Initial with a
// Retry, as QuicEndpoint does, since accept() needs the Retry's token.
#pragma once

#include <gtest/gtest.h>
#include <ngtcp2/ngtcp2.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "quic/address_validation.h"
#include "quic/certificate.h"
#include "quic/quic_connection.h"
#include "quic/tls_session.h"

namespace rcp::testing {

struct SimNetwork {
  struct Packet {
    Nanos at;
    uint64_t seq;  // ties keep send order
    int to;        // 0 client, 1 server
    std::vector<uint8_t> bytes;
  };
  double loss = 0;  // probability each datagram is dropped
  Nanos delay = 5 * kMillis;
  Nanos jitter = 0;  // uniform extra delay: reorders datagrams
  bool partitioned = false;
  std::mt19937_64 rng{20261130};  // fixed seed: the same drops every run
  std::vector<Packet> in_flight;
  uint64_t seq = 0, sent = 0, dropped = 0;

  void send(int to, std::span<const uint8_t> bytes, Nanos now) {
    ++sent;
    std::uniform_real_distribution<double> u(0, 1);
    if (partitioned || u(rng) < loss) {
      ++dropped;
      return;
    }
    Nanos extra = jitter ? std::uniform_int_distribution<Nanos>(0, jitter)(rng) : 0;
    in_flight.push_back({now + delay + extra, seq++, to, {bytes.begin(), bytes.end()}});
  }
  Nanos next_at() const {
    Nanos t = QuicConnection::kNever;
    for (const auto& p : in_flight) t = std::min(t, p.at);
    return t;
  }
  std::vector<Packet> take_due(Nanos now) {
    std::vector<Packet> due;
    for (auto it = in_flight.begin(); it != in_flight.end();) {
      if (it->at <= now) {
        due.push_back(std::move(*it));
        it = in_flight.erase(it);
      } else {
        ++it;
      }
    }
    std::sort(due.begin(), due.end(),
              [](const Packet& a, const Packet& b) { return a.at != b.at ? a.at < b.at : a.seq < b.seq; });
    return due;
  }
};

// A connection's DatagramSink: splits GSO batches into datagrams for the network.
class SimSink : public DatagramSink {
 public:
  SimSink(SimNetwork& net, int peer, const Nanos& now) : net_(net), peer_(peer), now_(now) {}
  Result<SendStatus> send_datagrams(const Address&, std::span<const uint8_t> data, size_t segment) override {
    for (size_t off = 0; off < data.size(); off += segment)
      net_.send(peer_, data.subspan(off, std::min(segment, data.size() - off)), now_);
    return SendStatus::sent;
  }

 private:
  SimNetwork& net_;
  int peer_;
  const Nanos& now_;
};

// What one side saw (the default events record here).
struct SideLog {
  bool handshake_done = false;
  bool closed = false;
  std::map<int64_t, std::vector<uint8_t>> received;
  std::set<int64_t> fins;
  uint64_t acked = 0;
  int streams_available = 0;
};

class QuicPair {
 public:
  static constexpr int kClient = 0, kServer = 1;
  using EventsFor = std::function<QuicConnection::Events(int side)>;

  QuicPair(const QuicConfig& client_cfg, const QuicConfig& server_cfg, const Certificate& client_cert,
           const Certificate& server_cert, Fingerprint client_pins, Fingerprint server_pins, EventsFor events = {})
      : client_cfg_(client_cfg), server_cfg_(server_cfg), events_(std::move(events)) {
    if (!events_) events_ = [this](int side) { return record_events(side); };
    ctls_ = TlsContext::create({TlsRole::client, client_cert, {client_pins}, ""}).value();
    stls_ = TlsContext::create({TlsRole::server, server_cert, {server_pins}, ""}).value();
    validator_.emplace(AddressValidator::create().value());
  }

  // Starts the client's handshake (the server appears at its first valid Initial).
  void start() {
    conns_[kClient] = QuicConnection::connect(client_cfg_, ctls_, sinks_[kClient], addr_[kClient], addr_[kServer],
                                              events_(kClient), now)
                          .value();
  }

  QuicConnection* conn(int side) { return conns_[side].get(); }
  SideLog& log(int side) { return logs_[side]; }
  bool auto_consume[2] = {true, true};  // grant credit for every byte at once

  // Runs the simulation until pred() holds or `span` of simulated time has
  // passed; every loop is bounded. Returns pred().
  bool run_until(const std::function<bool()>& pred, Nanos span, int max_steps = 500000) {
    const Nanos end = now + span;
    for (int step = 0; step < max_steps; ++step) {
      flush_all();
      if (pred()) return true;
      Nanos next = std::min({net.next_at(), expiry(kClient), expiry(kServer)});
      if (next > end) {
        now = end;
        return pred();
      }
      now = std::max(now, next);
      busy = true;
      for (auto& p : net.take_due(now)) deliver(p);
      for (int side : {kClient, kServer})
        if (conns_[side] && expiry(side) <= now) conns_[side]->on_timer(now);
      busy = false;
      if (after_events) after_events();
    }
    return pred();
  }
  void run_for(Nanos span) {
    run_until([] { return false; }, span);
  }

  Nanos now = 1 * kSeconds;
  SimNetwork net;
  bool busy = false;                   // inside the connections' callbacks
  std::function<void()> after_events;  // runs what callbacks deferred

 private:
  Nanos expiry(int side) const { return conns_[side] ? conns_[side]->expiry() : QuicConnection::kNever; }
  void flush_all() {
    busy = true;
    for (auto& c : conns_)
      for (int k = 0; c && k < 64 && c->flush(now); ++k) {
      }
    busy = false;
  }
  void deliver(const SimNetwork::Packet& p) {
    const int from = 1 - p.to;
    if (p.to == kServer && !conns_[kServer]) {
      ngtcp2_pkt_hd hd;
      if (ngtcp2_accept(&hd, p.bytes.data(), p.bytes.size()) != 0) return;
      if (hd.tokenlen == 0) {
        auto retry = validator_->retry_packet(hd, addr_[kClient], now);
        if (retry) net.send(kClient, *retry, now);
        return;
      }
      auto odcid = validator_->check_token(hd, addr_[kClient], now);
      if (!odcid) return;
      conns_[kServer] = QuicConnection::accept(server_cfg_, stls_, sinks_[kServer], addr_[kServer], addr_[kClient], hd,
                                               &*odcid, events_(kServer), now)
                            .value();
    }
    if (conns_[p.to]) conns_[p.to]->on_datagram(p.bytes, addr_[from], now);
  }
  QuicConnection::Events record_events(int side) {
    QuicConnection::Events ev;
    SideLog& l = logs_[side];
    ev.handshake_done = [&l] { l.handshake_done = true; };
    ev.stream_data = [this, side, &l](int64_t id, std::span<const uint8_t> d, bool fin) {
      auto& buf = l.received[id];
      buf.insert(buf.end(), d.begin(), d.end());
      if (fin) l.fins.insert(id);
      if (auto_consume[side]) conns_[side]->consume(id, d.size());
    };
    ev.stream_acked = [&l](int64_t, uint64_t freed) { l.acked += freed; };
    ev.streams_available = [&l] { ++l.streams_available; };
    ev.closed = [&l] { l.closed = true; };
    return ev;
  }

  QuicConfig client_cfg_, server_cfg_;
  EventsFor events_;
  std::shared_ptr<TlsContext> ctls_, stls_;
  std::optional<AddressValidator> validator_;
  Address addr_[2] = {Address::parse("10.0.0.1", 40000).value(), Address::parse("10.0.0.2", 4433).value()};
  SimSink sinks_[2] = {SimSink(net, kServer, now), SimSink(net, kClient, now)};
  std::unique_ptr<QuicConnection> conns_[2];
  SideLog logs_[2];
};

}  // namespace rcp::testing
