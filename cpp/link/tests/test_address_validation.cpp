// Strangers and handshake slots: Retry tokens bound to the client's address,
// the Retry rate limit, and slot accounting that never lets unauthenticated
// handshakes lock the pinned peer out (docs/security.md, "Strangers").
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include <ngtcp2/ngtcp2_crypto.h>

#include "link/link.h"
#include "link/link_server.h"
#include "quic/address_validation.h"
#include "quic/certificate.h"

namespace rcp {
namespace {

Address loopback(uint16_t port = 0) { return Address::parse("127.0.0.1", port).value(); }

ngtcp2_cid random_cid(size_t len) {
  ngtcp2_cid cid{};
  cid.datalen = len;
  EXPECT_TRUE(random_bytes({cid.data, len}).ok());
  return cid;
}

// The client's Initial after a Retry: DCID is the Retry's SCID, token attached.
struct Retried {
  std::vector<uint8_t> token;
  ngtcp2_pkt_hd hd{};
};

Retried answer_retry(const std::vector<uint8_t>& retry) {
  Retried out;
  ngtcp2_pkt_hd rhd{};
  EXPECT_GT(ngtcp2_pkt_decode_hd_long(&rhd, retry.data(), retry.size()), 0);
  EXPECT_EQ(rhd.type, NGTCP2_PKT_RETRY);
  // A Retry's token runs to the 16-byte integrity tag at the end.
  const uint8_t* token_start = retry.data() + 1 + 4 + 1 + rhd.dcid.datalen + 1 + rhd.scid.datalen;
  out.token.assign(token_start, retry.data() + retry.size() - 16);
  out.hd.version = NGTCP2_PROTO_VER_V1;
  out.hd.type = NGTCP2_PKT_INITIAL;
  out.hd.dcid = rhd.scid;
  out.hd.scid = rhd.dcid;
  out.hd.token = out.token.data();
  out.hd.tokenlen = out.token.size();
  return out;
}

ngtcp2_pkt_hd first_initial(const ngtcp2_cid& dcid, const ngtcp2_cid& scid) {
  ngtcp2_pkt_hd hd{};
  hd.version = NGTCP2_PROTO_VER_V1;
  hd.type = NGTCP2_PKT_INITIAL;
  hd.dcid = dcid;
  hd.scid = scid;
  return hd;
}

TEST(AddressValidation, RetryTokenIsBoundToAddressConnectionIdAndTime) {
  auto v = AddressValidator::create(2 * kSeconds).value();
  const ngtcp2_cid odcid = random_cid(8), client_scid = random_cid(18);
  const Address client = loopback(40000);
  const Nanos t0 = monotonic_now();
  auto retry = v.retry_packet(first_initial(odcid, client_scid), client, t0);
  ASSERT_TRUE(retry.ok()) << retry.error().message;
  Retried r = answer_retry(*retry);
  ASSERT_EQ(r.token.front(), NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY2);

  auto ok = v.check_token(r.hd, client, t0 + kMillis);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ngtcp2_cid_eq(&*ok, &odcid));  // the original DCID comes back for the transport parameters

  EXPECT_FALSE(v.check_token(r.hd, loopback(40001), t0).ok()) << "another port";
  EXPECT_FALSE(v.check_token(r.hd, Address::parse("127.0.0.2", 40000).value(), t0).ok()) << "another host";
  EXPECT_FALSE(v.check_token(r.hd, client, t0 + 3 * kSeconds).ok()) << "expired";
  EXPECT_FALSE(AddressValidator::create().value().check_token(r.hd, client, t0).ok()) << "another endpoint's secret";
  Retried other_dcid = r;
  other_dcid.hd.dcid = random_cid(18);
  other_dcid.hd.token = other_dcid.token.data();
  EXPECT_FALSE(v.check_token(other_dcid.hd, client, t0).ok()) << "another connection ID";
  Retried tampered = r;
  tampered.token[tampered.token.size() / 2] ^= 1;
  tampered.hd.token = tampered.token.data();
  EXPECT_FALSE(v.check_token(tampered.hd, client, t0).ok()) << "tampered";
  ngtcp2_pkt_hd no_token = r.hd;
  no_token.token = nullptr;
  no_token.tokenlen = 0;
  EXPECT_FALSE(v.check_token(no_token, client, t0).ok());
}

TEST(AddressValidation, TokenBucketLimitsRetries) {
  TokenBucket bucket(100, 10);
  const Nanos t0 = 1000 * kSeconds;
  int granted = 0;
  for (int i = 0; i < 1000; ++i) granted += bucket.take(t0);
  EXPECT_EQ(granted, 10);  // the burst, then nothing at the same instant
  granted = 0;
  for (int ms = 1; ms <= 1000; ++ms) granted += bucket.take(t0 + ms * kMillis);
  EXPECT_NEAR(granted, 100, 2);  // 100 a second
}

TEST(AddressValidation, RetriesLimitedPerClientAddressAndInTotal) {
  RetryLimiter limiter(100, 10, 1000);
  const Nanos t0 = 1000 * kSeconds;
  const Address flooder = Address::parse("127.0.0.2", 1).value(), peer = loopback(2);
  int granted = 0;
  for (uint16_t port = 1; port < 1000; ++port) {
    Address a = flooder;
    a.set_port(port);  // a spoofer varies the port: still one address
    granted += limiter.allow(a, t0);
  }
  EXPECT_EQ(granted, 10);
  EXPECT_TRUE(limiter.allow(peer, t0)) << "a flood from one address starved another";
  // In total: many addresses share the total budget (its burst is a tenth of a second's worth).
  granted = 0;
  for (int i = 0; i < 1000; ++i) {
    Address a = Address::parse("10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1), 9).value();
    granted += limiter.allow(a, t0);
  }
  EXPECT_LE(granted, 100);
}

// --- real endpoints on loopback ---

struct Party {
  Certificate server_cert = Certificate::generate().value();
  Certificate client_cert = Certificate::generate().value();
  SessionKey key{};
  QuicConfig quic;
  Party() {
    EXPECT_TRUE(random_bytes(key).ok());
    quic.handshake_timeout = 3 * kSeconds;
    quic.idle_timeout = 5 * kSeconds;
  }
  LinkConfig server_config(size_t max_connections, size_t max_handshakes) {
    LinkConfig c{{quic, {TlsRole::server, server_cert, {client_cert.fingerprint}, ""}, max_connections}, key, "server"};
    c.max_handshakes = max_handshakes;
    return c;
  }
  LinkConfig client_config(Nanos handshake_timeout) {
    LinkConfig c{{quic, {TlsRole::client, client_cert, {server_cert.fingerprint}, ""}}, key, "client"};
    c.quic.handshake_timeout = handshake_timeout;
    return c;
  }
};

// Waits up to `timeout` for one datagram on `fd`.
std::vector<uint8_t> recv_one(int fd, Address& from, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return {};
  std::vector<uint8_t> buf(kMaxUdpPayload);
  from.len = sizeof from.storage;
  ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), 0, from.sa(), &from.len);
  if (n <= 0) return {};
  buf.resize(static_cast<size_t>(n));
  return buf;
}

void send_to(int fd, const Address& to, std::span<const uint8_t> data) {
  (void)::sendto(fd, data.data(), data.size(), 0, to.sa(), to.len);
}

// A real client's first Initial, captured at a socket that never answers:
// what a stranger who once saw our traffic can replay.
std::vector<uint8_t> capture_initial(Party& p) {
  auto sink = UdpSocket::bind(loopback(), PortRange{}, UdpOptions{}).value();
  std::thread client([&] { (void)Link::connect(p.client_config(1 * kSeconds), sink.local_address()); });
  Address from;
  auto pkt = recv_one(sink.fd(), from, 3000);
  client.join();
  return pkt;
}

// A Retry costs every peer a round trip, and on a lossy path each extra
// flight is one more chance to lose the handshake: an idle server (no
// handshake in progress) takes a token-less Initial as it is.
TEST(ServerSlots, IdleServerTakesTheFirstInitialWithoutARetry) {
  Party p;
  auto server = LinkServer::listen(p.server_config(1, 1), loopback()).value();
  Result<std::shared_ptr<Link>> accepted = make_error(Errc::timeout, "");
  std::thread t([&] { accepted = server->accept(5 * kSeconds); });
  auto client = Link::connect(p.client_config(3 * kSeconds), server->local_address());
  t.join();
  ASSERT_TRUE(client.ok()) << client.error().message;
  ASSERT_TRUE(accepted.ok()) << accepted.error().message;
  auto n = server->counters();
  EXPECT_EQ(n.retries_sent, 0u);
  EXPECT_EQ(n.handshakes_started, 1u);
  EXPECT_EQ(n.handshakes_unvalidated, 1u);
}

TEST(ServerSlots, ReplayedInitialsCostOnlyRetries) {
  Party p;
  auto server = LinkServer::listen(p.server_config(1, 1), loopback()).value();
  auto initial = capture_initial(p);
  ASSERT_GE(initial.size(), 1200u);
  // Another address than the peer's (all of 127/8 is loopback): its Retries
  // are rate-limited on their own.
  auto stranger = UdpSocket::bind(Address::parse("127.0.0.2", 0).value(), PortRange{}, UdpOptions{}).value();
  std::atomic<bool> stop{false};
  std::thread flood([&] {
    for (int i = 0; i < 20000 && !stop; ++i) {
      send_to(stranger.fd(), server->local_address(), initial);
      if (i % 16 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the flood is on before the peer comes
  Result<std::shared_ptr<Link>> accepted = make_error(Errc::timeout, "");
  std::thread t([&] { accepted = server->accept(5 * kSeconds); });
  const auto started = std::chrono::steady_clock::now();
  auto client = Link::connect(p.client_config(3 * kSeconds), server->local_address());
  const auto took = std::chrono::steady_clock::now() - started;
  stop = true;
  flood.join();
  t.join();
  ASSERT_TRUE(client.ok()) << client.error().message;
  ASSERT_TRUE(accepted.ok()) << accepted.error().message;
  EXPECT_LT(took, std::chrono::seconds(1));
  auto n = server->counters();
  // The first replay reaching the idle server is taken without a Retry;
  // the copies that follow belong to that handshake (same connection ID)
  // and make no state. The pinned client, busy server, gets a Retry and,
  // validated, evicts it (one handshake slot here). Once the client is
  // through, the server is idle again: at most one more.
  EXPECT_EQ(n.handshakes_started - n.handshakes_unvalidated, 1u) << "only the pinned client's validated Initial";
  EXPECT_GE(n.handshakes_unvalidated, 1u);
  EXPECT_LE(n.handshakes_unvalidated, 2u);
  EXPECT_GE(n.handshakes_evicted, 1u);
  EXPECT_GE(n.retries_sent, 1u);
}

// Forwards client->server; server->client only Retries. A client behind it
// validates its address and then its handshake stalls: a stranger holding a
// handshake slot the most it can.
class StallingProxy {
 public:
  explicit StallingProxy(const Address& server) : server_(server) {
    front_ = UdpSocket::bind(loopback(), PortRange{}, UdpOptions{}).value();
    back_ = UdpSocket::bind(loopback(), PortRange{}, UdpOptions{}).value();
    thread_ = std::thread([this] { run(); });
  }
  ~StallingProxy() {
    stop_ = true;
    thread_.join();
  }
  const Address& address() const { return front_.local_address(); }

 private:
  void run() {
    Address client, from;
    bool have_client = false;
    for (int round = 0; round < 2000 && !stop_; ++round) {  // 10 ms polls: at most 20 s
      auto up = recv_one(front_.fd(), from, 5);
      if (!up.empty()) {
        client = from;
        have_client = true;
        send_to(back_.fd(), server_, up);
      }
      auto down = recv_one(back_.fd(), from, 5);
      if (!down.empty() && have_client && (down[0] & 0xf0) == 0xf0) send_to(front_.fd(), client, down);
    }
  }
  Address server_;
  UdpSocket front_, back_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(ServerSlots, StalledValidatedHandshakesCannotLockOutThePinnedPeer) {
  Party p;
  auto server = LinkServer::listen(p.server_config(1, 2), loopback()).value();
  // Three strangers that pass address validation, then go silent (their
  // certificates would be refused, but they never get that far).
  std::vector<std::unique_ptr<StallingProxy>> proxies;
  std::vector<std::thread> strangers;
  for (int i = 0; i < 3; ++i) {
    proxies.push_back(std::make_unique<StallingProxy>(server->local_address()));
    Address via = proxies.back()->address();
    strangers.emplace_back([&p, via] {
      Party other;
      other.server_cert = p.server_cert;
      (void)Link::connect(other.client_config(2 * kSeconds), via);
    });
  }
  for (int i = 0; i < 200 && server->counters().handshakes_started < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(server->counters().handshakes_started, 3u);
  EXPECT_EQ(server->counters().handshakes_evicted, 1u);  // two slots: the third evicted the first

  Result<std::shared_ptr<Link>> accepted = make_error(Errc::timeout, "");
  std::thread t([&] { accepted = server->accept(5 * kSeconds); });
  const auto started = std::chrono::steady_clock::now();
  auto client = Link::connect(p.client_config(3 * kSeconds), server->local_address());
  const auto took = std::chrono::steady_clock::now() - started;
  t.join();
  for (auto& s : strangers) s.join();
  proxies.clear();
  ASSERT_TRUE(client.ok()) << client.error().message;
  ASSERT_TRUE(accepted.ok()) << accepted.error().message;
  EXPECT_LT(took, std::chrono::seconds(1)) << "the pinned peer waited for a stranger's slot";
  // At least the second stranger made way (an evicted one may come back with its token, still valid).
  EXPECT_GE(server->counters().handshakes_evicted, 2u);
}

// Like StallingProxy, from another address (127.0.0.2), and it keeps the
// token-bearing Initials its client sends after its Retry and replays them
// again and again: a stranger recycling a valid Retry token.
class ReplayingProxy {
 public:
  explicit ReplayingProxy(const Address& server) : server_(server) {
    front_ = UdpSocket::bind(loopback(), PortRange{}, UdpOptions{}).value();
    back_ = UdpSocket::bind(Address::parse("127.0.0.2", 0).value(), PortRange{}, UdpOptions{}).value();
    thread_ = std::thread([this] { run(); });
  }
  ~ReplayingProxy() {
    stop_ = true;
    thread_.join();
  }
  const Address& address() const { return front_.local_address(); }
  size_t replayed() const { return replayed_; }

 private:
  void run() {
    Address client, from;
    bool retried = false;
    std::vector<std::vector<uint8_t>> tokens;
    for (int round = 0; round < 20000 && !stop_; ++round) {  // 1 ms polls: at most 20 s
      auto up = recv_one(front_.fd(), from, 0);
      if (!up.empty()) {
        client = from;
        if (retried && (up[0] & 0xf0) == 0xc0 && tokens.size() < 16) tokens.push_back(up);  // Initial after a Retry
        send_to(back_.fd(), server_, up);
      }
      auto down = recv_one(back_.fd(), from, 1);
      if (!down.empty() && (down[0] & 0xf0) == 0xf0) {
        retried = true;
        send_to(front_.fd(), client, down);
      }
      for (const auto& t : tokens) send_to(back_.fd(), server_, t);
      replayed_ += tokens.size();
    }
  }
  Address server_;
  UdpSocket front_, back_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> replayed_{0};
  std::thread thread_;
};

TEST(ServerSlots, RecycledRetryTokensFromOneAddressCannotEvictAPeerAtAnother) {
  Party p;
  auto server = LinkServer::listen(p.server_config(1, 2), loopback()).value();
  std::vector<std::unique_ptr<ReplayingProxy>> proxies;  // one per stranger, all at 127.0.0.2
  std::vector<std::thread> strangers;
  for (int i = 0; i < 4; ++i) {
    proxies.push_back(std::make_unique<ReplayingProxy>(server->local_address()));
    strangers.emplace_back([&p, via = proxies.back()->address()] {
      Party other;
      other.server_cert = p.server_cert;
      (void)Link::connect(other.client_config(1 * kSeconds), via);
    });
  }
  for (int i = 0; i < 300 && server->counters().handshakes_evicted < 20; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const uint64_t churned = server->counters().handshakes_evicted;

  Result<std::shared_ptr<Link>> accepted = make_error(Errc::timeout, "");
  std::thread t([&] { accepted = server->accept(5 * kSeconds); });
  auto client = Link::connect(p.client_config(3 * kSeconds), server->local_address());
  t.join();
  for (auto& s : strangers) s.join();
  size_t replayed = 0;
  for (auto& proxy : proxies) replayed += proxy->replayed();
  proxies.clear();
  EXPECT_GE(churned, 20u) << "the replay is not churning the handshake slots";
  EXPECT_GT(replayed, 100u);
  ASSERT_TRUE(client.ok()) << client.error().message;
  ASSERT_TRUE(accepted.ok()) << accepted.error().message;
}

TEST(ServerSlots, AuthenticatedLimitRefusesASecondPeer) {
  Party p;
  auto server = LinkServer::listen(p.server_config(1, 4), loopback()).value();
  Result<std::shared_ptr<Link>> accepted = make_error(Errc::timeout, "");
  std::thread t([&] { accepted = server->accept(5 * kSeconds); });
  auto first = Link::connect(p.client_config(3 * kSeconds), server->local_address());
  t.join();
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_TRUE(accepted.ok());
  auto second = Link::connect(p.client_config(3 * kSeconds), server->local_address());
  EXPECT_FALSE(second.ok()) << "a second pinned peer got a slot";
  EXPECT_EQ(server->counters().refused_no_slot, 1u);
  // The first is untouched.
  ASSERT_TRUE((*first)->send_message(encode_message(MsgType::user, std::string("still here"))).ok());
  auto got = (*accepted)->recv_message(2 * kSeconds);
  ASSERT_TRUE(got.ok()) << got.error().message;
}

}  // namespace
}  // namespace rcp
