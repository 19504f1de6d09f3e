#include "net/udp_socket.h"

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace rcp {
namespace {

constexpr int kWaitMs = 3000;  // upper bound for any single wait
constexpr size_t kSlot = 2048;

Address addr(const char* host, uint16_t port = 0) {
  auto a = Address::parse(host, port);
  EXPECT_TRUE(a.ok()) << host;
  return a.ok() ? a.value() : Address{};
}

PortRange range(const std::string& spec) {
  auto r = PortRange::parse(spec);
  EXPECT_TRUE(r.ok()) << spec;
  return r.ok() ? r.value() : PortRange{};
}

UdpSocket must_bind(const Address& local, const PortRange& ports = {}, UdpOptions opts = {}) {
  auto s = UdpSocket::bind(local, ports, opts);
  EXPECT_TRUE(s.ok()) << "bind " << local.to_string() << " in " << ports.to_string() << ": "
                      << (s.ok() ? "" : s.error().message);
  return s.ok() ? std::move(s).value() : UdpSocket{};
}

// A random base port in 40000..59000 whose next `n` ports are free right now.
uint16_t free_base(size_t n) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> dist(40000, 59000);
  for (int attempt = 0; attempt < 50; ++attempt) {
    const auto base = static_cast<uint16_t>(dist(rng));
    bool ok = true;
    for (size_t i = 0; i < n && ok; ++i) {
      ok = UdpSocket::bind(addr("127.0.0.1"), range(std::to_string(base + i)), {}).ok();
    }
    if (ok) return base;
  }
  ADD_FAILURE() << "no free port block found";
  return 0;
}

// Collects datagrams until `want` arrived or kWaitMs passed.
struct Received {
  std::vector<std::vector<uint8_t>> payloads;
  std::vector<Address> from;
};

Received receive(UdpSocket& s, size_t want) {
  Received got;
  std::vector<uint8_t> buf(16 * kSlot);
  std::vector<Datagram> dgrams(16);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  while (got.payloads.size() < want) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    pollfd pfd{s.fd(), POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left)) <= 0) break;
    auto n = s.recv(buf, kSlot, dgrams);
    EXPECT_TRUE(n.ok()) << n.error().message;
    if (!n.ok()) break;
    for (size_t i = 0; i < *n; ++i) {
      got.payloads.emplace_back(buf.begin() + i * kSlot, buf.begin() + i * kSlot + dgrams[i].len);
      got.from.push_back(dgrams[i].from);
    }
  }
  return got;
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

bool has_ipv6_loopback() {
  auto s = UdpSocket::bind(addr("::1"), {}, {});
  return s.ok();
}

TEST(UdpSocket, BindLoopbackAnyPort) {
  UdpSocket s = must_bind(addr("127.0.0.1"));
  EXPECT_GE(s.fd(), 0);
  EXPECT_EQ(s.local_address().family(), AF_INET);
  EXPECT_EQ(s.local_address().host_string(), "127.0.0.1");
  EXPECT_NE(s.local_address().port(), 0);
}

TEST(UdpSocket, BindIgnoresPortOfLocalAddress) {
  const uint16_t base = free_base(1);
  UdpSocket s = must_bind(addr("127.0.0.1", 1), range(std::to_string(base)));
  EXPECT_EQ(s.local_address().port(), base);
}

TEST(UdpSocket, BindWithinRange) {
  const uint16_t base = free_base(1);
  const PortRange ports = range(std::to_string(base) + "-" + std::to_string(base + 100));
  UdpSocket s = must_bind(addr("127.0.0.1"), ports);
  EXPECT_TRUE(ports.contains(s.local_address().port())) << s.local_address().to_string();
  EXPECT_EQ(s.local_address().port(), base);  // the first port is tried first
}

TEST(UdpSocket, OccupiedPortIsSkipped) {
  const uint16_t base = free_base(2);
  UdpSocket holder = must_bind(addr("127.0.0.1"), range(std::to_string(base)));
  ASSERT_EQ(holder.local_address().port(), base);
  UdpSocket s = must_bind(addr("127.0.0.1"), range(std::to_string(base) + "-" + std::to_string(base + 10)));
  EXPECT_EQ(s.local_address().port(), base + 1);
}

TEST(UdpSocket, AllPortsTakenIsAnError) {
  const uint16_t base = free_base(2);
  UdpSocket a = must_bind(addr("127.0.0.1"), range(std::to_string(base)));
  UdpSocket b = must_bind(addr("127.0.0.1"), range(std::to_string(base + 1)));
  const std::string spec = std::to_string(base) + "-" + std::to_string(base + 1);
  auto r = UdpSocket::bind(addr("127.0.0.1"), range(spec), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::io);
  EXPECT_NE(r.error().message.find(spec), std::string::npos) << r.error().message;
}

TEST(UdpSocket, MoveTransfersOwnership) {
  UdpSocket a = must_bind(addr("127.0.0.1"));
  const int fd = a.fd();
  const Address local = a.local_address();
  UdpSocket b = std::move(a);
  EXPECT_EQ(b.fd(), fd);
  EXPECT_EQ(a.fd(), -1);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_TRUE(b.local_address() == local);
  UdpSocket c;
  c = std::move(b);
  EXPECT_EQ(c.fd(), fd);
  EXPECT_EQ(b.fd(), -1);  // NOLINT(bugprone-use-after-move)
}

TEST(UdpSocket, RecvOnEmptySocketReturnsZero) {
  UdpSocket s = must_bind(addr("127.0.0.1"));
  std::vector<uint8_t> buf(4 * kSlot);
  std::vector<Datagram> d(4);
  auto n = s.recv(buf, kSlot, d);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 0u);
}

void check_round_trip(const char* host) {
  UdpSocket a = must_bind(addr(host));
  UdpSocket b = must_bind(addr(host));
  const auto msg = pattern(100, 1);
  auto st = a.send(b.local_address(), msg, msg.size());
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(*st, SendStatus::sent);
  Received got = receive(b, 1);
  ASSERT_EQ(got.payloads.size(), 1u);
  EXPECT_EQ(got.payloads[0], msg);
  EXPECT_TRUE(got.from[0] == a.local_address()) << got.from[0].to_string() << " vs " << a.local_address().to_string();

  // And back, with segment_size 0 meaning "one datagram".
  const auto reply = pattern(1500, 9);
  st = b.send(got.from[0], reply, 0);
  ASSERT_TRUE(st.ok()) << st.error().message;
  Received back = receive(a, 1);
  ASSERT_EQ(back.payloads.size(), 1u);
  EXPECT_EQ(back.payloads[0], reply);
}

TEST(UdpSocket, SendRecvIPv4) { check_round_trip("127.0.0.1"); }

TEST(UdpSocket, SendRecvIPv6) {
  ASSERT_TRUE(has_ipv6_loopback()) << "IPv6 loopback ::1 is not available on this host; this test needs it "
                                      "(enable IPv6 on lo, e.g. sysctl net.ipv6.conf.lo.disable_ipv6=0)";
  check_round_trip("::1");
}

void check_batch(bool gso, const char* host = "127.0.0.1") {
  UdpOptions opts;
  opts.gso = gso;
  UdpSocket tx = must_bind(addr(host), {}, opts);
  UdpSocket rx = must_bind(addr(host));
  if (!gso) {
    EXPECT_FALSE(tx.gso_enabled());
  }
  std::vector<uint8_t> batch = pattern(3 * 1200 + 500, 3);
  auto st = tx.send(rx.local_address(), batch, 1200);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(*st, SendStatus::sent);
  Received got = receive(rx, 4);
  ASSERT_EQ(got.payloads.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    const size_t len = i < 3 ? 1200 : 500;
    const std::vector<uint8_t> want(batch.begin() + i * 1200, batch.begin() + i * 1200 + len);
    EXPECT_EQ(got.payloads[i].size(), len) << "datagram " << i;
    EXPECT_EQ(got.payloads[i], want) << "datagram " << i;
    EXPECT_TRUE(got.from[i] == tx.local_address());
  }
  if (gso) {
    std::printf("[ info     ] GSO %s after the batch\n", tx.gso_enabled() ? "still on" : "off (kernel refused it)");
  }
  // Nothing extra arrived.
  std::vector<uint8_t> buf(kSlot);
  std::vector<Datagram> d(1);
  auto n = rx.recv(buf, kSlot, d);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
}

TEST(UdpSocket, GsoBatchArrivesAsSeparateDatagrams) {
  UdpSocket probe = must_bind(addr("127.0.0.1"));
  std::printf("[ info     ] UDP GSO %s\n", probe.gso_enabled() ? "available" : "NOT available (fallback path tested)");
  check_batch(true);
}

TEST(UdpSocket, BatchWithoutGsoArrivesAsSeparateDatagrams) { check_batch(false); }

TEST(UdpSocket, GsoBatchOverIPv6) {
  ASSERT_TRUE(has_ipv6_loopback()) << "IPv6 loopback ::1 is not available on this host";
  check_batch(true, "::1");
  check_batch(false, "::1");
}

TEST(UdpSocket, KernelRefusingGsoFallsBack) {
  UdpSocket tx = must_bind(addr("127.0.0.1"));
  UdpSocket rx = must_bind(addr("127.0.0.1"));
  if (!tx.gso_enabled()) GTEST_SKIP() << "no UDP GSO on this kernel; the fallback is covered by the other batch tests";
  // With checksums off (SO_NO_CHECK) the kernel rejects GSO sends with EINVAL.
  const int one = 1;
  ASSERT_EQ(setsockopt(tx.fd(), SOL_SOCKET, SO_NO_CHECK, &one, sizeof one), 0);
  const auto batch = pattern(3 * 1200 + 500, 6);
  auto st = tx.send(rx.local_address(), batch, 1200);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(*st, SendStatus::sent);
  EXPECT_FALSE(tx.gso_enabled());
  Received got = receive(rx, 4);
  ASSERT_EQ(got.payloads.size(), 4u);
  EXPECT_EQ(got.payloads[3].size(), 500u);
  EXPECT_EQ(0, std::memcmp(got.payloads[3].data(), batch.data() + 3600, 500));
}

// 150 segments: more than one GSO super-packet and more than one sendmmsg call.
void check_large_batch(bool gso, bool refuse_gso = false) {
  UdpOptions opts;
  opts.gso = gso;  // false: as on a kernel without UDP_SEGMENT (before 4.18), whose probe fails
  UdpSocket tx = must_bind(addr("127.0.0.1"), {}, opts);
  UdpSocket rx = must_bind(addr("127.0.0.1"));
  if (refuse_gso) {  // checksums off: the kernel refuses every GSO send (EINVAL)
    const int one = 1;
    ASSERT_EQ(setsockopt(tx.fd(), SOL_SOCKET, SO_NO_CHECK, &one, sizeof one), 0);
  }
  std::vector<uint8_t> batch = pattern(150 * 1000 - 1, 5);
  auto st = tx.send(rx.local_address(), batch, 1000);
  ASSERT_TRUE(st.ok()) << st.error().message;
  ASSERT_EQ(*st, SendStatus::sent);
  if (!gso || refuse_gso) EXPECT_FALSE(tx.gso_enabled());
  Received got = receive(rx, 150);
  ASSERT_EQ(got.payloads.size(), 150u);
  for (size_t i = 0; i < 150; ++i) {
    const size_t len = i < 149 ? 1000 : 999;
    ASSERT_EQ(got.payloads[i].size(), len) << i;
    ASSERT_EQ(0, std::memcmp(got.payloads[i].data(), batch.data() + i * 1000, len)) << i;
  }
}

TEST(UdpSocket, LargeBatchOverManyChunks) { check_large_batch(true); }
TEST(UdpSocket, LargeBatchWithoutGso) { check_large_batch(false); }
TEST(UdpSocket, LargeBatchWhenTheKernelRefusesGso) { check_large_batch(true, true); }

TEST(UdpSocket, TruncatedDatagramsAreDropped) {
  UdpSocket tx = must_bind(addr("127.0.0.1"));
  UdpSocket rx = must_bind(addr("127.0.0.1"));
  const auto small1 = pattern(100, 1), big = pattern(600, 2), small2 = pattern(200, 3);
  for (const auto* m : {&small1, &big, &small2}) ASSERT_TRUE(tx.send(rx.local_address(), *m, 0).ok());

  // Slots of 512 bytes: the 600-byte datagram cannot fit and must vanish,
  // with the next datagram moved into its slot.
  std::vector<uint8_t> buf(4 * 512);
  std::vector<Datagram> d(4);
  std::vector<std::vector<uint8_t>> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  while (got.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{rx.fd(), POLLIN, 0};
    poll(&pfd, 1, 100);
    auto n = rx.recv(buf, 512, d);
    ASSERT_TRUE(n.ok());
    for (size_t i = 0; i < *n; ++i) got.emplace_back(buf.begin() + i * 512, buf.begin() + i * 512 + d[i].len);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], small1);
  EXPECT_EQ(got[1], small2);
}

TEST(UdpSocket, IPv6WildcardReceivesFromIPv4) {
  UdpSocket server = must_bind(addr("::"));
  UdpSocket client = must_bind(addr("127.0.0.1"));
  Address to = addr("127.0.0.1", server.local_address().port());
  const auto msg = pattern(64, 4);
  auto st = client.send(to, msg, 0);
  ASSERT_TRUE(st.ok()) << st.error().message;
  Received got = receive(server, 1);
  ASSERT_EQ(got.payloads.size(), 1u);
  EXPECT_EQ(got.payloads[0], msg);
  EXPECT_EQ(got.from[0].family(), AF_INET6);  // v4-mapped
  EXPECT_EQ(got.from[0].host_string(), "::ffff:127.0.0.1");
  EXPECT_EQ(got.from[0].port(), client.local_address().port());

  // The reply goes back through the v4-mapped address.
  st = server.send(got.from[0], msg, 0);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(receive(client, 1).payloads.size(), 1u);
}

TEST(UdpSocket, SpecificIPv6AddressIsV6Only) {
  ASSERT_TRUE(has_ipv6_loopback()) << "IPv6 loopback ::1 is not available on this host";
  // ::1 and 127.0.0.1 on the same port must coexist: ::1 does not claim v4.
  const uint16_t base = free_base(1);
  UdpSocket v6 = must_bind(addr("::1"), range(std::to_string(base)));
  UdpSocket v4 = must_bind(addr("127.0.0.1"), range(std::to_string(base)));
  EXPECT_EQ(v6.local_address().port(), base);
  EXPECT_EQ(v4.local_address().port(), base);
}

TEST(UdpSocket, BufferSizesApplied) {
  UdpOptions opts;
  opts.buffer_bytes = 4 << 20;
  UdpSocket s = must_bind(addr("127.0.0.1"), {}, opts);
  int rcv = 0;
  socklen_t len = sizeof rcv;
  ASSERT_EQ(getsockopt(s.fd(), SOL_SOCKET, SO_RCVBUF, &rcv, &len), 0);
  EXPECT_GT(rcv, 0);
  if (geteuid() == 0) {
    EXPECT_GE(rcv, 4 << 20);  // FORCE works as root (the kernel doubles it)
  }
}

TEST(UdpSocket, EmptyDatagram) {
  UdpSocket tx = must_bind(addr("127.0.0.1"));
  UdpSocket rx = must_bind(addr("127.0.0.1"));
  auto st = tx.send(rx.local_address(), {}, 1200);
  ASSERT_TRUE(st.ok()) << st.error().message;
  Received got = receive(rx, 1);
  ASSERT_EQ(got.payloads.size(), 1u);
  EXPECT_TRUE(got.payloads[0].empty());
}

TEST(UdpSocket, ClosedSocketErrors) {
  UdpSocket s;
  std::vector<uint8_t> buf(kSlot);
  std::vector<Datagram> d(1);
  EXPECT_FALSE(s.recv(buf, kSlot, d).ok());
  EXPECT_FALSE(s.send(addr("127.0.0.1", 9), buf, 0).ok());
}

}  // namespace
}  // namespace rcp
