// The relay's pieces (link_tunnel.h) as the copy uses them: two rcpds'
// control links (StreamTransports over socketpairs, the master at the other
// end of each), a TunnelSplice at the master, a TunnelStream at each rcpd.
// Bytes both ways, the end of a stream, a side that stops reading (the
// writer waits, nothing grows past the windows), shutdown and stop, a
// control link lost mid-tunnel, and a whole Link over the tunnel.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <thread>

#include "link/link_tunnel.h"
#include "link/stream_transport.h"
#include "quic/certificate.h"

namespace rcp {
namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 31 + seed + (i >> 16));
  return v;
}

class TunnelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    ASSERT_TRUE(random_bytes(key).ok());
    for (int i = 0; i < 2; ++i) control_link(rcpd[i], master[i]);
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(rcpd[i]->wait_ready(5 * kSeconds).ok());
      ASSERT_TRUE(master[i]->wait_ready(5 * kSeconds).ok());
    }
  }

  LinkConfig config(bool client, const std::string& role) {
    LinkConfig c{};
    c.tls = {client ? TlsRole::client : TlsRole::server,
             client ? rcpd_cert : master_cert,
             {client ? master_cert.fingerprint : rcpd_cert.fingerprint},
             ""};
    c.session_key = key;
    c.role = role;
    return c;
  }

  // An rcpd's control link (the client) and the master's end of it.
  void control_link(std::shared_ptr<Link>& client, std::shared_ptr<Link>& server) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    auto a = FdStream::create(UniqueFd(dup(sv[0])), UniqueFd(sv[0]));
    auto b = FdStream::create(UniqueFd(dup(sv[1])), UniqueFd(sv[1]));
    ASSERT_TRUE(a.ok() && b.ok());
    client = StreamTransport::start(std::move(*a), config(true, "rcpd"), true);
    server = StreamTransport::start(std::move(*b), config(false, "master"), false);
  }

  std::unique_ptr<TunnelStream> tunnel(int side) {
    auto t = TunnelStream::open(rcpd[side], 5 * kSeconds);
    EXPECT_TRUE(t.ok()) << t.error().message;
    return t ? std::move(*t) : nullptr;
  }

  // Reads `s` to its end (or an error, returned in *err).
  static std::vector<uint8_t> read_to_end(ByteStream& s, Error* err = nullptr) {
    std::vector<uint8_t> got, buf(100000);
    for (;;) {
      auto n = s.read_some(buf);
      if (!n && err) *err = n.error();
      if (!n || *n == 0) return got;
      got.insert(got.end(), buf.begin(), buf.begin() + static_cast<long>(*n));
    }
  }

  static std::vector<uint8_t> read_exactly(ByteStream& s, size_t n) {
    std::vector<uint8_t> got(n);
    size_t have = 0;
    while (have < n) {
      auto r = s.read_some(std::span<uint8_t>(got.data() + have, n - have));
      EXPECT_TRUE(r.ok() && *r > 0) << (r ? "end of stream" : r.error().message);
      if (!r || *r == 0) break;
      have += *r;
    }
    got.resize(have);
    return got;
  }

  Certificate rcpd_cert = Certificate::generate().value();
  Certificate master_cert = Certificate::generate().value();
  SessionKey key{};
  std::shared_ptr<Link> rcpd[2], master[2];
};

TEST_F(TunnelTest, BytesBothWaysThenTheEnd) {
  auto splice = TunnelSplice::start(master[0], master[1], 5 * kSeconds);
  auto a = tunnel(0), b = tunnel(1);
  ASSERT_TRUE(a && b);
  // More than two stream windows each way, at once.
  const auto ab = pattern(5u << 20, 1), ba = pattern(3u << 20, 2);
  std::thread wa([&] { EXPECT_TRUE(a->write_all(ab).ok()); });
  std::thread wb([&] { EXPECT_TRUE(b->write_all(ba).ok()); });
  const auto got_ab = read_exactly(*b, ab.size());
  const auto got_ba = read_exactly(*a, ba.size());
  wa.join();
  wb.join();
  EXPECT_TRUE(got_ab == ab);
  EXPECT_TRUE(got_ba == ba);
  a.reset();  // ends a's outgoing stream: b reads the end, said as such
  Error err;
  EXPECT_EQ(read_to_end(*b, &err).size(), 0u);
  EXPECT_EQ(err.code, Errc::closed);
  EXPECT_NE(err.message.find("the relay through the master ended"), std::string::npos) << err.message;
  b.reset();
  ASSERT_TRUE(splice->wait(5 * kSeconds));
  EXPECT_EQ(splice->error().code, Errc::ok) << splice->error().message;
  EXPECT_EQ(splice->bytes(0), ab.size());
  EXPECT_EQ(splice->bytes(1), ba.size());
}

TEST_F(TunnelTest, ASideThatStopsReadingHoldsTheWriterBackWithBoundedBuffering) {
  auto splice = TunnelSplice::start(master[0], master[1], 5 * kSeconds);
  auto a = tunnel(0), b = tunnel(1);
  ASSERT_TRUE(a && b);
  const auto piece = pattern(1u << 20, 3);
  constexpr uint64_t kPieces = 64;
  std::atomic<uint64_t> written{0};
  std::thread writer([&] {
    for (uint64_t i = 0; i < kPieces && a->write_all(piece).ok(); ++i) written += piece.size();
  });
  // b accepts its stream (on its first read) but then takes nothing.
  uint8_t one = 0;
  ASSERT_EQ(b->read_some(std::span<uint8_t>(&one, 1)).value(), 1u);
  usleep(2'000'000);  // ~20 MiB fill the way in well under this, even on a loaded machine
  const uint64_t stalled = written.load();
  usleep(500'000);
  // In flight at most: the two control links' stream windows, the send
  // limits of a's link and of the master's link to b, the pump's buffer.
  EXPECT_EQ(written.load(), stalled) << "the writer was not held back";
  EXPECT_LT(stalled, 32u << 20);
  EXPECT_LT(splice->bytes(0), 20u << 20) << "the master took more than the windows allow";
  EXPECT_FALSE(rcpd[0]->closed() || rcpd[1]->closed() || master[0]->closed() || master[1]->closed());
  // b reads again: all of it arrives, in order.
  auto rest = read_exactly(*b, kPieces * piece.size() - 1);
  writer.join();
  EXPECT_EQ(written.load(), kPieces * piece.size());
  bool same = one == piece[0];
  for (size_t i = 0; i < rest.size() && same; ++i) same = rest[i] == piece[(i + 1) % piece.size()];
  EXPECT_TRUE(same);
}

TEST_F(TunnelTest, ShutdownWakesABlockedReadAndWrite) {
  auto splice = TunnelSplice::start(master[0], master[1], 5 * kSeconds);
  auto a = tunnel(0), b = tunnel(1);
  ASSERT_TRUE(a && b);
  Result<size_t> read = size_t{0};
  std::thread reader([&] {
    std::vector<uint8_t> buf(100);
    read = a->read_some(buf);  // nothing comes
  });
  Result<void> wrote;
  const auto big = pattern(64u << 20, 4);  // b reads nothing: this blocks
  std::thread writer([&] { wrote = a->write_all(big); });
  usleep(300'000);
  const auto t0 = std::chrono::steady_clock::now();
  a->shutdown();
  reader.join();
  writer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(read.error().code, Errc::closed);
  EXPECT_EQ(wrote.error().code, Errc::closed);
}

TEST_F(TunnelTest, StoppingTheSpliceEndsBothSidesStreams) {
  auto splice = TunnelSplice::start(master[0], master[1], 5 * kSeconds);
  auto a = tunnel(0), b = tunnel(1);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->write_all(pattern(1000, 5)).ok());
  std::vector<uint8_t> buf(1000);
  size_t got = 0;
  while (got < 1000) got += b->read_some(std::span<uint8_t>(buf.data() + got, 1000 - got)).value();
  splice->stop();
  ASSERT_TRUE(splice->wait(2 * kSeconds));
  EXPECT_EQ(read_to_end(*a).size(), 0u);
  EXPECT_EQ(read_to_end(*b).size(), 0u);
}

TEST_F(TunnelTest, AControlLinkLostMidTunnelEndsTheOtherSidesStream) {
  auto splice = TunnelSplice::start(master[0], master[1], 5 * kSeconds);
  auto a = tunnel(0), b = tunnel(1);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->write_all(pattern(4096, 6)).ok());
  std::vector<uint8_t> buf(4096);
  size_t got = 0;
  while (got < 4096) got += b->read_some(std::span<uint8_t>(buf.data() + got, 4096 - got)).value();
  rcpd[0]->close("the source died");      // a's whole control link goes
  EXPECT_EQ(read_to_end(*b).size(), 0u);  // b: the end of its stream, at once
  ASSERT_TRUE(splice->wait(5 * kSeconds));
  EXPECT_NE(splice->error().code, Errc::ok);
  Error err;
  read_to_end(*a, &err);
  EXPECT_EQ(err.code, Errc::closed) << err.message;
}

TEST_F(TunnelTest, NoStreamFromASideTimesOut) {
  auto splice = TunnelSplice::start(master[0], master[1], 300 * kMillis);
  auto a = tunnel(0);  // side 1 never opens its stream
  ASSERT_TRUE(a->write_all(pattern(1000, 8)).ok());
  // One direction failing stops the other: the tunnel works whole or not at all.
  ASSERT_TRUE(splice->wait(3 * kSeconds));
  EXPECT_EQ(splice->error().code, Errc::timeout);
}

// The copy's use: a whole Link (hello, sealed messages, data streams) over
// the two tunnels, as the destination (client) and the source (server).
TEST_F(TunnelTest, ALinkRunsOverTheTunnel) {
  auto splice = TunnelSplice::start(master[0], master[1], 5 * kSeconds);
  auto a = tunnel(0), b = tunnel(1);
  ASSERT_TRUE(a && b);
  auto source = StreamTransport::start(std::move(a), config(false, "source"), false);
  auto destination = StreamTransport::start(std::move(b), config(true, "destination"), true);
  ASSERT_TRUE(source->wait_ready(5 * kSeconds).ok());
  ASSERT_TRUE(destination->wait_ready(5 * kSeconds).ok());
  EXPECT_EQ(source->peer_hello().role, "destination");
  ASSERT_TRUE(destination->send_message(std::vector<uint8_t>{1, 2, 3}).ok());
  EXPECT_EQ(source->recv_message(5 * kSeconds).value(), (std::vector<uint8_t>{1, 2, 3}));
  const auto body = pattern(6u << 20, 9);
  std::thread writer([&] {
    auto id = source->open_data();
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(source->write(*id, body, 10 * kSeconds).ok());
    ASSERT_TRUE(source->finish(*id).ok());
  });
  auto in = destination->accept_data(5 * kSeconds);
  ASSERT_TRUE(in.ok());
  std::vector<uint8_t> got, buf(1u << 16);
  for (;;) {
    auto n = destination->read(*in, buf, 5 * kSeconds);
    ASSERT_TRUE(n.ok()) << n.error().message;
    if (*n == 0) break;
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<long>(*n));
  }
  writer.join();
  EXPECT_TRUE(got == body);
  source->close("done");
  for (int i = 0; i < 300 && !destination->closed(); ++i) usleep(10000);
  EXPECT_TRUE(destination->closed());
  EXPECT_NE(destination->error().message.find("peer closed the connection: done"), std::string::npos)
      << destination->error().message;
  // The control links carried it all and are still up.
  EXPECT_FALSE(rcpd[0]->closed() || rcpd[1]->closed());
}

}  // namespace
}  // namespace rcp
