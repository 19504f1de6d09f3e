// LinkShaper, the WAN emulator's per-direction model: exact timings with an
// injected clock, and statistics with a seeded generator.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "wanem/ip_packet.h"
#include "wanem/link_shaper.h"
#include "wanem/wan_options.h"

using namespace rcp;
using namespace rcp::wanem;

namespace {

constexpr Nanos kMs = 1000000ull;

// An IPv4 (or IPv6) UDP packet with `payload` and a correct UDP checksum.
std::vector<uint8_t> udp_packet(std::vector<uint8_t> payload, bool v6 = false) {
  std::vector<uint8_t> p(v6 ? 40 : 20, 0);
  if (v6) {
    p[0] = 0x60;
    p[6] = 17;
    p[7] = 64;
    p[8 + 15] = 1;   // source ::1
    p[24 + 15] = 2;  // destination ::2
  } else {
    p[0] = 0x45;
    p[8] = 64;
    p[9] = 17;
    p[12] = 198, p[13] = 18, p[14] = 0, p[15] = 1;
    p[16] = 198, p[17] = 18, p[18] = 0, p[19] = 2;
  }
  const size_t udp_len = 8 + payload.size();
  const uint8_t udp[8] = {0x12, 0x34, 0x01, 0xbb, static_cast<uint8_t>(udp_len >> 8), static_cast<uint8_t>(udp_len),
                          0,    0};
  p.insert(p.end(), udp, udp + 8);
  p.insert(p.end(), payload.begin(), payload.end());
  const size_t total = p.size();
  if (!v6)
    p[2] = static_cast<uint8_t>(total >> 8), p[3] = static_cast<uint8_t>(total);
  else
    p[4] = static_cast<uint8_t>(udp_len >> 8), p[5] = static_cast<uint8_t>(udp_len);
  auto view = find_udp(p);
  const uint16_t ck = compute_udp_checksum(p, *view);
  p[view->udp_offset + 6] = static_cast<uint8_t>(ck >> 8);
  p[view->udp_offset + 7] = static_cast<uint8_t>(ck);
  return p;
}

std::vector<uint8_t> sized(size_t total, uint8_t first_payload_byte = 0x40) {
  std::vector<uint8_t> payload(total - 28, 0xab);
  payload[0] = first_payload_byte;
  return udp_packet(payload);
}

uint16_t stored_checksum(const std::vector<uint8_t>& p) {
  auto v = find_udp(p);
  return static_cast<uint16_t>(p[v->udp_offset + 6] << 8 | p[v->udp_offset + 7]);
}

}  // namespace

TEST(IpPacket, FindsUdpPayloadInIpv4AndIpv6) {
  auto v4 = udp_packet({1, 2, 3});
  auto u4 = find_udp(v4);
  ASSERT_TRUE(u4);
  EXPECT_EQ(u4->payload_offset, 28u);
  EXPECT_EQ(u4->payload_len, 3u);
  auto v6 = udp_packet({1, 2, 3, 4}, true);
  auto u6 = find_udp(v6);
  ASSERT_TRUE(u6);
  EXPECT_EQ(u6->payload_offset, 48u);
  EXPECT_EQ(u6->payload_len, 4u);
  v4[9] = 6;  // TCP
  EXPECT_FALSE(find_udp(v4));
  EXPECT_FALSE(find_udp(std::vector<uint8_t>{0x45, 0}));
}

TEST(IpPacket, RewriteKeepsUdpChecksumValid) {
  for (bool v6 : {false, true}) {
    auto p = udp_packet({9, 8, 7, 6, 5}, v6);  // odd length: the last byte is padded
    auto u = find_udp(p);
    for (size_t i = 0; i < u->payload_len; ++i) {
      rewrite_udp_byte(p, *u, u->payload_offset + i, static_cast<uint8_t>(0x5a + i));
      EXPECT_EQ(stored_checksum(p), compute_udp_checksum(p, *u)) << "v6=" << v6 << " byte " << i;
    }
  }
}

TEST(LinkShaper, DelaysByTheConfiguredOneWayDelay) {
  LinkShaper s(ShaperConfig{.delay = 15 * kMs}, 1, 0);
  s.submit(sized(100), 1000);
  ASSERT_TRUE(s.next_due());
  EXPECT_EQ(*s.next_due(), 1000 + 15 * kMs);
  EXPECT_TRUE(s.take_due(1000 + 15 * kMs - 1).empty());
  EXPECT_EQ(s.take_due(1000 + 15 * kMs).size(), 1u);
  EXPECT_FALSE(s.next_due());
}

TEST(LinkShaper, RateLimitSerializesPackets) {
  // 10 Mbit/s: a 1250-byte packet takes exactly 1 ms on the wire.
  LinkShaper s(ShaperConfig{.delay = 5 * kMs, .rate_bps = 10000000}, 1, 0);
  for (int i = 0; i < 3; ++i) s.submit(sized(1250), 0);
  EXPECT_EQ(*s.next_due(), 6 * kMs);
  EXPECT_EQ(s.take_due(6 * kMs).size(), 1u);
  EXPECT_EQ(*s.next_due(), 7 * kMs);
  EXPECT_EQ(s.take_due(8 * kMs).size(), 2u);
  EXPECT_EQ(s.backlog_bytes(8 * kMs), 0u);
}

TEST(LinkShaper, BoundedQueueTailDrops) {
  LinkShaper s(ShaperConfig{.rate_bps = 10000000, .queue_bytes = 5000}, 1, 0);
  for (int i = 0; i < 10; ++i) s.submit(sized(1250), 0);
  EXPECT_EQ(s.stats().queue_drops, 6u);
  EXPECT_EQ(s.take_due(100 * kMs).size(), 4u);
  // Once the queue has drained, packets fit again.
  s.submit(sized(1250), 100 * kMs);
  EXPECT_EQ(s.stats().queue_drops, 6u);
}

TEST(LinkShaper, RandomLossMatchesTheRate) {
  LinkShaper s(ShaperConfig{.loss = 0.02}, 42, 0);
  for (int i = 0; i < 50000; ++i) s.submit(sized(60), i * kMs);
  const double rate = static_cast<double>(s.stats().lost) / 50000;
  EXPECT_NEAR(rate, 0.02, 0.003);
}

TEST(LinkShaper, LossBurstsAreCapped) {
  LinkShaper s(ShaperConfig{.loss = 0.9, .max_loss_burst = 3}, 7, 0);
  int run = 0, longest = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto before = s.stats().lost;
    s.submit(sized(60), 0);
    run = s.stats().lost > before ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  EXPECT_EQ(longest, 3);
  EXPECT_GT(s.stats().lost, 1000u);
}

TEST(LinkShaper, HandshakeOnlyLossSparesShortHeaderPackets) {
  LinkShaper s(ShaperConfig{.loss = 1.0, .loss_handshake_only = true}, 3, 0);
  s.submit(sized(1200, 0xc3), 0);  // QUIC Initial (long header)
  s.submit(sized(1200, 0x43), 0);  // 1-RTT (short header)
  EXPECT_EQ(s.stats().lost, 1u);
  auto out = s.take_due(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0][28], 0x43);
}

TEST(LinkShaper, CorruptsOneByteInTheFirstBytesWithValidChecksum) {
  LinkShaper s(ShaperConfig{.corrupt = 1.0, .corrupt_first = 50}, 11, 0);
  const auto original = sized(1200);
  for (int i = 0; i < 500; ++i) s.submit(original, 0);
  auto out = s.take_due(0);
  ASSERT_EQ(out.size(), 500u);
  EXPECT_EQ(s.stats().corrupted, 500u);
  for (const auto& p : out) {
    int changed = 0;
    for (size_t i = 0; i < p.size(); ++i)
      if (p[i] != original[i] && (i < 26 || i > 27)) {  // ignore the UDP checksum field
        ++changed;
        EXPECT_GE(i, 28u);
        EXPECT_LT(i, 28u + 50);
      }
    EXPECT_EQ(changed, 1);
    EXPECT_EQ(stored_checksum(p), compute_udp_checksum(p, *find_udp(p)));
  }
}

TEST(LinkShaper, CorruptionRateIsRespected) {
  LinkShaper s(ShaperConfig{.corrupt = 0.3}, 5, 0);
  for (int i = 0; i < 10000; ++i) s.submit(sized(200), 0);
  EXPECT_NEAR(static_cast<double>(s.stats().corrupted) / 10000, 0.3, 0.02);
}

TEST(LinkShaper, JitterNeverReorders) {
  LinkShaper s(ShaperConfig{.delay = 50 * kMs, .jitter = 40 * kMs}, 9, 0);
  for (int i = 0; i < 1000; ++i) {
    auto p = sized(100);
    p[30] = static_cast<uint8_t>(i), p[31] = static_cast<uint8_t>(i >> 8);
    s.submit(p, i * 100000ull);  // one every 0.1 ms
  }
  auto out = s.take_due(10 * kSeconds);
  ASSERT_EQ(out.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(out[i][30] | out[i][31] << 8, i);
}

TEST(LinkShaper, JitterStaysWithinBounds) {
  LinkShaper s(ShaperConfig{.delay = 50 * kMs, .jitter = 10 * kMs}, 9, 0);
  Nanos lo = ~0ull, hi = 0;
  for (int i = 0; i < 200; ++i) {
    const Nanos now = i * 100 * kMs;  // far apart: FIFO never holds one back
    s.submit(sized(100), now);
    const Nanos due = *s.next_due() - now;
    lo = std::min(lo, due), hi = std::max(hi, due);
    (void)s.take_due(now + kSeconds);
  }
  EXPECT_GE(lo, 40 * kMs);
  EXPECT_LE(hi, 60 * kMs);
  EXPECT_LT(lo, 45 * kMs);
  EXPECT_GT(hi, 55 * kMs);
}

TEST(LinkShaper, ScheduledAndImmediateBlackholes) {
  LinkShaper s(ShaperConfig{.blackholes = {Window{100 * kMs, 50 * kMs}}}, 1, 1000 * kMs);
  s.submit(sized(100), 1099 * kMs);
  s.submit(sized(100), 1100 * kMs);
  s.submit(sized(100), 1149 * kMs);
  s.submit(sized(100), 1150 * kMs);
  EXPECT_EQ(s.stats().blackholed, 2u);
  s.blackhole_now(2000 * kMs, 2 * kSeconds);
  s.submit(sized(100), 3999 * kMs);
  s.submit(sized(100), 4000 * kMs);
  EXPECT_EQ(s.stats().blackholed, 3u);
  EXPECT_EQ(s.take_due(5000 * kMs).size(), 3u);
}

TEST(LinkShaper, SameSeedSameFate) {
  auto run = [](uint64_t seed) {
    LinkShaper s(ShaperConfig{.loss = 0.3, .max_loss_burst = 3, .corrupt = 0.1}, seed, 0);
    for (int i = 0; i < 1000; ++i) s.submit(sized(200), 0);
    std::string fate;
    for (const auto& p : s.take_due(0)) fate += std::to_string(p[28 + 1]) + ",";
    return std::to_string(s.stats().lost) + "/" + fate;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

TEST(WanOptions, ParsesPerDirectionFlags) {
  std::vector<std::string> args = {"--a",
                                   "ns1:wan0",
                                   "--b",
                                   "ns2:wan0",
                                   "--seed",
                                   "9",
                                   "--delay",
                                   "7.5",
                                   "--rate",
                                   "10",
                                   "--dir",
                                   "a2b",
                                   "--loss",
                                   "2%",
                                   "--loss-burst",
                                   "3",
                                   "--loss-handshake-only",
                                   "--dir",
                                   "b2a",
                                   "--corrupt",
                                   "0.3",
                                   "--blackhole",
                                   "1000:2000"};
  auto o = parse_wan_options(args);
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->a.netns, "ns1");
  EXPECT_EQ(o->b.ifname, "wan0");
  EXPECT_EQ(o->seed, 9u);
  EXPECT_EQ(o->a2b.delay, 7500000u);
  EXPECT_EQ(o->b2a.delay, 7500000u);
  EXPECT_EQ(o->a2b.rate_bps, 10000000u);
  EXPECT_DOUBLE_EQ(o->a2b.loss, 0.02);
  EXPECT_DOUBLE_EQ(o->b2a.loss, 0.0);
  EXPECT_EQ(o->a2b.max_loss_burst, 3u);
  EXPECT_TRUE(o->a2b.loss_handshake_only);
  EXPECT_DOUBLE_EQ(o->b2a.corrupt, 0.3);
  ASSERT_EQ(o->b2a.blackholes.size(), 1u);
  EXPECT_EQ(o->b2a.blackholes[0].start, 1000 * kMs);
  EXPECT_TRUE(o->a2b.blackholes.empty());
}

TEST(WanOptions, RejectsBadValues) {
  for (std::vector<std::string> bad : {std::vector<std::string>{"--a", "x:t"},
                                       {"--a", "x:t", "--b", "y:t", "--loss", "150%"},
                                       {"--a", "x:t", "--b", "y:t", "--delay", "-1"},
                                       {"--a", "x:t", "--b", "y:t", "--dir", "up"},
                                       {"--a", "x:t", "--b", "y:t", "--rate"},
                                       {"--a", "x:t", "--b", "y:t", "--frobnicate", "1"}})
    EXPECT_FALSE(parse_wan_options(bad));
}
