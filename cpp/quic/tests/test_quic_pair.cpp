// Two QuicConnections in memory (quic_pair.h): pinned handshake, flow
// control, loss recovery and idle timeout under a simulated clock and
// network; deterministic, no sockets, no threads.
#include "quic/tests/quic_pair.h"

namespace rcp::testing {
namespace {

constexpr int kClient = QuicPair::kClient, kServer = QuicPair::kServer;

struct Certs {
  Certificate client = Certificate::generate().value();
  Certificate server = Certificate::generate().value();
};

QuicConfig small_config() {
  QuicConfig c;
  c.handshake_timeout = 5 * kSeconds;
  c.idle_timeout = 10 * kSeconds;
  c.max_udp_payload = 1452;
  return c;
}

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  return v;
}

bool handshaken(QuicPair& p) {
  return p.conn(kServer) && p.log(kClient).handshake_done && p.log(kServer).handshake_done;
}

TEST(QuicPair, PinnedHandshakeBothWays) {
  Certs c;
  QuicPair p(small_config(), small_config(), c.client, c.server, c.server.fingerprint, c.client.fingerprint);
  p.start();
  ASSERT_TRUE(p.run_until([&] { return handshaken(p); }, 5 * kSeconds));
  EXPECT_EQ(*p.conn(kClient)->peer_fingerprint(), c.server.fingerprint);
  EXPECT_EQ(*p.conn(kServer)->peer_fingerprint(), c.client.fingerprint);
  EXPECT_FALSE(p.log(kClient).closed || p.log(kServer).closed);
}

TEST(QuicPair, WrongPinFailsTheHandshake) {
  Certs c;
  Certificate other = Certificate::generate().value();
  QuicPair p(small_config(), small_config(), c.client, c.server, other.fingerprint, c.client.fingerprint);
  p.start();
  ASSERT_TRUE(p.run_until([&] { return p.log(kClient).closed; }, 10 * kSeconds));
  EXPECT_EQ(p.conn(kClient)->error().code, Errc::pin_mismatch) << p.conn(kClient)->error().message;
  EXPECT_FALSE(p.log(kClient).handshake_done);
  // The server hears the refusal (or gives up): it never serves this peer.
  ASSERT_TRUE(p.run_until([&] { return !p.conn(kServer) || p.log(kServer).closed; }, 20 * kSeconds));
}

TEST(QuicPair, ReceiverThatDoesNotConsumeStopsTheSenderAtTheWindow) {
  Certs c;
  QuicConfig cfg = small_config();
  cfg.stream_window = cfg.max_stream_window = 64u << 10;
  QuicPair p(cfg, cfg, c.client, c.server, c.server.fingerprint, c.client.fingerprint);
  p.auto_consume[kServer] = false;
  p.start();
  ASSERT_TRUE(p.run_until([&] { return handshaken(p); }, 5 * kSeconds));
  const auto body = pattern(1u << 20);
  int64_t id = p.conn(kClient)->open_stream(false).value();
  p.conn(kClient)->send(id, body, true);
  p.run_for(3 * kSeconds);  // plenty of round trips: only the window holds it back
  auto& got = p.log(kServer).received[id];
  EXPECT_EQ(got.size(), cfg.stream_window);
  // Consuming resumes it, window by window, to the end.
  uint64_t consumed = 0;
  for (int round = 0; round < 100 && !p.log(kServer).fins.count(id); ++round) {
    p.conn(kServer)->consume(id, got.size() - consumed);
    consumed = got.size();
    p.run_for(200 * kMillis);
  }
  ASSERT_TRUE(p.log(kServer).fins.count(id));
  EXPECT_EQ(got, body);
}

TEST(QuicPair, AllBytesArriveIntactDespiteLossAndReordering) {
  Certs c;
  QuicPair p(small_config(), small_config(), c.client, c.server, c.server.fingerprint, c.client.fingerprint);
  p.net.loss = 0.10;
  p.net.delay = 10 * kMillis;
  p.net.jitter = 10 * kMillis;  // later datagrams often overtake earlier ones
  p.start();
  ASSERT_TRUE(p.run_until([&] { return handshaken(p); }, 20 * kSeconds));
  const auto up = pattern(2u << 20);
  const auto down = pattern(300000);
  int64_t a = p.conn(kClient)->open_stream(false).value();
  int64_t b = p.conn(kServer)->open_stream(false).value();
  p.conn(kClient)->send(a, up, true);
  p.conn(kServer)->send(b, down, true);
  ASSERT_TRUE(
      p.run_until([&] { return p.log(kServer).fins.count(a) && p.log(kClient).fins.count(b); }, 120 * kSeconds));
  EXPECT_EQ(p.log(kServer).received[a], up);
  EXPECT_EQ(p.log(kClient).received[b], down);
  EXPECT_GT(p.net.dropped, 0u);
  EXPECT_FALSE(p.log(kClient).closed || p.log(kServer).closed);
}

TEST(QuicPair, SilencePastTheIdleTimeoutClosesBothSides) {
  Certs c;
  QuicConfig cfg = small_config();
  cfg.keep_alive = 0;
  cfg.idle_timeout = 3 * kSeconds;
  QuicPair p(cfg, cfg, c.client, c.server, c.server.fingerprint, c.client.fingerprint);
  p.start();
  ASSERT_TRUE(p.run_until([&] { return handshaken(p); }, 5 * kSeconds));
  p.run_for(500 * kMillis);  // the handshake's last packets settle
  const Nanos quiet_since = p.now;
  p.net.partitioned = true;  // and nothing is sent anyway
  ASSERT_TRUE(p.run_until([&] { return p.log(kClient).closed && p.log(kServer).closed; }, 30 * kSeconds));
  EXPECT_GE(p.now - quiet_since, cfg.idle_timeout - 1 * kSeconds);
  EXPECT_EQ(p.conn(kClient)->error().code, Errc::timeout) << p.conn(kClient)->error().message;
  EXPECT_EQ(p.conn(kServer)->error().code, Errc::timeout) << p.conn(kServer)->error().message;
}

TEST(QuicPair, KeepAliveHoldsAnIdleConnectionOpen) {
  Certs c;
  QuicConfig cfg = small_config();
  cfg.keep_alive = 1 * kSeconds;
  cfg.idle_timeout = 3 * kSeconds;
  QuicPair p(cfg, cfg, c.client, c.server, c.server.fingerprint, c.client.fingerprint);
  p.start();
  ASSERT_TRUE(p.run_until([&] { return handshaken(p); }, 5 * kSeconds));
  p.run_for(20 * kSeconds);
  EXPECT_FALSE(p.log(kClient).closed || p.log(kServer).closed);
}

}  // namespace
}  // namespace rcp::testing
