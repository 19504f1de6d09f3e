// Links over the in-memory QUIC pair (quic/tests/quic_pair.h), through the
// Transport interface: the hello, and the head-of-line rule that a peer's
// unidirectional stream credit returns only once a data stream is read to
// its end (docs/architecture.md, "Link protocol"). Single-threaded: the
// test thread is also the transport's.
#include <deque>

#include "link/link.h"
#include "quic/tests/quic_pair.h"

namespace rcp::testing {
namespace {

constexpr int kClient = QuicPair::kClient, kServer = QuicPair::kServer;

// A Transport on one side of the pair. Work a Link posts runs at once, but
// not from inside the connection's callbacks: then it waits for the end of
// the simulation step, as the endpoint's loop would run it after the event.
class PairTransport : public Transport {
 public:
  PairTransport(QuicPair*& pair, int side) : pair_(pair), side_(side) {}

  void execute(std::function<void(Transport*)> fn) override {
    if (pair_->busy) {
      deferred_.push_back(std::move(fn));
      return;
    }
    fn(conn() ? this : nullptr);
  }
  void run_deferred() {
    for (int i = 0; i < 1000 && !deferred_.empty(); ++i) {
      auto fn = std::move(deferred_.front());
      deferred_.pop_front();
      fn(conn() ? this : nullptr);
    }
  }
  Result<int64_t> open_stream(bool bidi) override { return conn()->open_stream(bidi); }
  void send(int64_t id, std::vector<uint8_t> data, bool fin) override { conn()->send(id, std::move(data), fin); }
  void consume(int64_t id, uint64_t n) override { conn()->consume(id, n); }
  void grant_peer_uni_stream() override { conn()->grant_peer_uni_stream(); }
  bool close(uint64_t app_error, const std::string& reason) override {
    conn()->close(app_error, reason);
    return true;
  }
  bool closed() const override { return conn() == nullptr || conn()->closed(); }
  Fingerprint peer_fingerprint() const override { return conn()->peer_fingerprint().value_or(Fingerprint{}); }
  TransportStats stats() const override { return {}; }
  void session_ready() override {}

 private:
  QuicConnection* conn() const { return pair_->conn(side_); }
  QuicPair*& pair_;
  int side_;
  std::deque<std::function<void(Transport*)>> deferred_;
};

QuicConnection::Events link_events(Link& link) {
  QuicConnection::Events ev;
  ev.handshake_done = [&link] { link.on_handshake_done(); };
  ev.stream_data = [&link](int64_t id, std::span<const uint8_t> d, bool fin) { link.on_stream_data(id, d, fin); };
  ev.stream_acked = [&link](int64_t id, uint64_t freed) { link.on_stream_acked(id, freed); };
  ev.stream_closed = [&link](int64_t id, uint64_t code) { link.on_stream_closed(id, code); };
  ev.streams_available = [&link] { link.on_streams_available(); };
  ev.closed = [&link] { link.on_closed(make_error(Errc::closed, "closed")); };
  ev.classify_app_error = classify_app_error;
  return ev;
}

struct LinkPair {
  Certificate client_cert = Certificate::generate().value();
  Certificate server_cert = Certificate::generate().value();
  QuicPair* pair = nullptr;
  PairTransport client_transport{pair, kClient};
  PairTransport server_transport{pair, kServer};
  std::unique_ptr<Link> client, server;
  std::unique_ptr<QuicPair> owned;

  explicit LinkPair(uint64_t server_uni_streams) {
    SessionKey key{};
    EXPECT_TRUE(random_bytes(key).ok());
    QuicConfig cq;
    cq.max_udp_payload = 1452;
    QuicConfig sq = cq;
    sq.max_uni_streams = server_uni_streams;
    LinkConfig ccfg{{cq, {TlsRole::client, client_cert, {server_cert.fingerprint}, ""}}, key, "client"};
    LinkConfig scfg{{sq, {TlsRole::server, server_cert, {client_cert.fingerprint}, ""}}, key, "server"};
    client = std::make_unique<Link>(client_transport, ccfg, true);
    server = std::make_unique<Link>(server_transport, scfg, false);
    owned =
        std::make_unique<QuicPair>(cq, sq, client_cert, server_cert, server_cert.fingerprint, client_cert.fingerprint,
                                   [this](int side) { return link_events(side == kClient ? *client : *server); });
    pair = owned.get();
    pair->after_events = [this] {
      client_transport.run_deferred();
      server_transport.run_deferred();
    };
    pair->start();
  }
  void run(Nanos span = 300 * kMillis) { pair->run_for(span); }
};

TEST(LinkPair, HelloOverTheInMemoryTransport) {
  LinkPair lp(4);
  lp.run(2 * kSeconds);
  ASSERT_TRUE(lp.client->wait_ready(0).ok());
  ASSERT_TRUE(lp.server->wait_ready(0).ok());
  EXPECT_EQ(lp.client->peer_hello().role, "server");
  EXPECT_EQ(lp.server->peer_hello().role, "client");
  EXPECT_EQ(lp.server->peer_fingerprint(), lp.client_cert.fingerprint);
}

TEST(LinkPair, UniStreamCreditReturnsOnlyWhenAStreamIsReadToItsEnd) {
  LinkPair lp(2);  // the receiver lets two data streams be open at once
  lp.run(2 * kSeconds);
  ASSERT_TRUE(lp.client->wait_ready(0).ok());
  auto a = lp.client->open_data();
  auto b = lp.client->open_data();
  ASSERT_TRUE(a.ok() && b.ok());
  const std::vector<uint8_t> big(100000, 0xab), small{1, 2, 3};
  ASSERT_TRUE(lp.client->write(*a, big, 0).ok());
  ASSERT_TRUE(lp.client->finish(*a).ok());
  ASSERT_TRUE(lp.client->write(*b, small, 0).ok());
  ASSERT_TRUE(lp.client->finish(*b).ok());
  lp.run();
  auto ra = lp.server->accept_data(0);
  auto rb = lp.server->accept_data(0);
  ASSERT_TRUE(ra.ok() && rb.ok());
  ASSERT_EQ(*ra, *a);
  ASSERT_EQ(*rb, *b);

  // Both streams arrived whole, FIN included, but neither is read: no credit.
  EXPECT_EQ(lp.pair->conn(kClient)->open_stream(false).error().code, Errc::too_large);
  std::vector<uint8_t> buf(1000);
  ASSERT_EQ(lp.server->read(*ra, buf, 0).value(), buf.size());  // partly read
  lp.run();
  EXPECT_EQ(lp.pair->conn(kClient)->open_stream(false).error().code, Errc::too_large);

  // Read to its end (the 0 after the data): the sender may open one more.
  ASSERT_EQ(lp.server->read(*rb, buf, 0).value(), small.size());
  ASSERT_EQ(lp.server->read(*rb, buf, 0).value(), 0u);
  lp.run();
  auto c = lp.client->open_data();
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(lp.pair->conn(kClient)->open_stream(false).error().code, Errc::too_large);  // just one

  // The other stream, drained too, returns the other credit.
  size_t total = buf.size();
  for (int i = 0; i < 1000; ++i) {
    auto n = lp.server->read(*ra, buf, 0);
    ASSERT_TRUE(n.ok()) << n.error().message;
    if (*n == 0) break;
    total += *n;
    lp.run(10 * kMillis);
  }
  EXPECT_EQ(total, big.size());
  lp.run();
  EXPECT_TRUE(lp.client->open_data().ok());
}

TEST(LinkPair, OwnedHandOffsDeliverTheirBytesAndRefuseOversizedBuffers) {
  LinkPair lp(4);
  lp.run(2 * kSeconds);
  ASSERT_TRUE(lp.client->wait_ready(0).ok());
  auto a = lp.client->open_data();
  ASSERT_TRUE(a.ok());
  std::vector<uint8_t> block(Link::kHandOffBytes);
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<uint8_t>(i * 7);
  const std::vector<uint8_t> expect = block;
  ASSERT_TRUE(lp.client->write_owned(*a, std::move(block), 0).ok());
  EXPECT_EQ(lp.client->write_owned(*a, std::vector<uint8_t>(Link::kHandOffBytes + 1), 0).error().code, Errc::too_large);
  ASSERT_TRUE(lp.client->finish(*a).ok());
  // A whole stream: byte 0 is room for the kind, which the link writes.
  ASSERT_TRUE(lp.client->send_data_stream_owned({0xee, 1, 2, 3}, 0).ok());
  EXPECT_EQ(lp.client->send_data_stream_owned({}, 0).error().code, Errc::invalid_argument);

  std::vector<uint8_t> got, buf(65536);
  lp.run();
  auto ra = lp.server->accept_data(0);
  for (int i = 0; i < 1000 && ra.ok(); ++i) {
    lp.run();
    auto n = lp.server->read(*ra, buf, 0);
    if (!n.ok() && n.error().code == Errc::timeout) continue;
    ASSERT_TRUE(n.ok()) << n.error().message;
    if (*n == 0) break;
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<long>(*n));
  }
  ASSERT_TRUE(ra.ok());
  EXPECT_EQ(got, expect);
  lp.run();
  auto rb = lp.server->accept_data(0);
  ASSERT_TRUE(rb.ok());
  lp.run();
  auto n = lp.server->read(*rb, buf, 0);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(std::vector<uint8_t>(buf.begin(), buf.begin() + static_cast<long>(*n)), (std::vector<uint8_t>{1, 2, 3}));
}

// The destination's copy path reads through views of the link's receive
// blocks: bytes are not copied out, a view stays valid while the link keeps
// appending (and after the stream is gone), and a reader is woken per batch.
TEST(LinkPair, ViewsHoldTheirBytesWhileTheLinkKeepsFilling) {
  LinkPair lp(4);
  lp.run(2 * kSeconds);
  ASSERT_TRUE(lp.client->wait_ready(0).ok());
  auto a = lp.client->open_data();
  ASSERT_TRUE(a.ok());
  std::vector<uint8_t> expect(3 * Link::kHandOffBytes + 12345);
  for (size_t i = 0; i < expect.size(); ++i) expect[i] = static_cast<uint8_t>(i * 13 + i / 251);
  // A first piece smaller than a batch, not yet ended.
  const size_t first = 1000;
  ASSERT_TRUE(lp.client->write(*a, {expect.data(), first}, 0).ok());
  lp.run();
  auto ra = lp.server->accept_data(0);
  ASSERT_TRUE(ra.ok());
  std::vector<Link::View> views;
  // Fewer bytes than the batch are there, the stream goes on: the reader waits.
  ASSERT_GT(lp.server->read_batch(), first);
  EXPECT_EQ(lp.server->read_views(*ra, 1u << 20, views, 0).error().code, Errc::timeout);
  // ...unless it asks for no more than is there.
  ASSERT_EQ(lp.server->read_views(*ra, 10, views, 0).value(), 10u);
  std::vector<uint8_t> small(20);
  ASSERT_EQ(lp.server->read(*ra, small, 0).value(), small.size());  // plain reads mix with views
  ASSERT_TRUE(lp.client->write(*a, {expect.data() + first, expect.size() - first}, 0).ok());
  ASSERT_TRUE(lp.client->finish(*a).ok());
  size_t taken = 10 + small.size();
  for (int i = 0; i < 1000; ++i) {
    lp.run(10 * kMillis);
    auto n = lp.server->read_views(*ra, 100000, views, 0);
    if (!n.ok() && n.error().code == Errc::timeout) continue;
    ASSERT_TRUE(n.ok()) << n.error().message;
    ASSERT_LE(*n, 100000u);
    if (*n == 0) break;
    taken += *n;
  }
  EXPECT_EQ(taken, expect.size());
  // Every view still holds what arrived, though the link kept filling its
  // blocks behind them and the stream is gone.
  std::vector<uint8_t> got(views.front().bytes.begin(), views.front().bytes.end());
  got.insert(got.end(), expect.begin() + 10, expect.begin() + 10 + static_cast<long>(small.size()));
  EXPECT_EQ(small, std::vector<uint8_t>(expect.begin() + 10, expect.begin() + 30));
  for (size_t i = 1; i < views.size(); ++i) got.insert(got.end(), views[i].bytes.begin(), views[i].bytes.end());
  EXPECT_EQ(got, expect);
  // Read to its end through views: the sender may open another stream.
  lp.run();
  EXPECT_TRUE(lp.client->open_data().ok());
}

}  // namespace
}  // namespace rcp::testing
