// The TCP+TLS data link over real loopback sockets: TlsStream's pinning
// both ways, hostile and silent peers, the join that binds connections to
// one session, StreamTransport over several connections (streams spread
// and reordered across them, flow control, close), and TcpLinkServer's
// stranger limits: silent, junk-sending, unpinned and key-less clients
// never keep the real peer out, and the unauthenticated slots stay bounded.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <future>
#include <thread>

#include "link/tcp_link.h"
#include "net/tcp_socket.h"
#include "quic/certificate.h"

namespace rcp {
namespace {

struct Party {
  Certificate server_cert = Certificate::generate().value();
  Certificate client_cert = Certificate::generate().value();
  SessionKey key{};
  QuicConfig quic;

  Party() {
    std::signal(SIGPIPE, SIG_IGN);
    EXPECT_TRUE(random_bytes(key).ok());
    quic.handshake_timeout = 3 * kSeconds;
  }
  LinkConfig server_config() {
    LinkConfig c{{quic, {TlsRole::server, server_cert, {client_cert.fingerprint}, ""}}, key, "server"};
    c.max_handshakes = 4;
    return c;
  }
  LinkConfig client_config(const Certificate& cert, Fingerprint pin) {
    return LinkConfig{{quic, {TlsRole::client, cert, {pin}, ""}}, key, "client"};
  }
  LinkConfig client_config() { return client_config(client_cert, server_cert.fingerprint); }
};

Address loopback() { return Address::parse("127.0.0.1", 0).value(); }

// A connected pair of plain TCP sockets on loopback.
std::pair<UniqueFd, UniqueFd> tcp_pair() {
  auto l = tcp_listen(loopback()).value();
  auto addr = local_address_of(l.get()).value();
  auto c = tcp_connect(addr, kSeconds).value();
  Result<UniqueFd> s = make_error(Errc::timeout, "");
  for (int i = 0; i < 200 && !s; ++i) {
    s = tcp_accept(l.get());
    if (!s) usleep(5000);
  }
  return {std::move(c), std::move(s.value())};
}

std::unique_ptr<TlsStream> tls_on(UniqueFd fd, TlsRole role, const Certificate& cert, Fingerprint pin) {
  auto ctx = TlsContext::create({role, cert, {pin}, ""}, TlsCarrier::tcp).value();
  return TlsStream::create(std::move(fd), ctx).value();
}

// Both handshakes at once; their results.
std::pair<Result<void>, Result<void>> handshake_both(TlsStream& client, TlsStream& server, Nanos timeout) {
  auto s = std::async(std::launch::async, [&] { return server.handshake(timeout); });
  auto c = client.handshake(timeout);
  return {c, s.get()};
}

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

// ---------------------------------------------------------------- TlsStream

TEST(TlsStream, PinnedBothWaysCarriesBytesBothWays) {
  Party p;
  auto [cfd, sfd] = tcp_pair();
  auto client = tls_on(std::move(cfd), TlsRole::client, p.client_cert, p.server_cert.fingerprint);
  auto server = tls_on(std::move(sfd), TlsRole::server, p.server_cert, p.client_cert.fingerprint);
  auto [c, s] = handshake_both(*client, *server, 3 * kSeconds);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(client->peer_fingerprint(), p.server_cert.fingerprint);
  EXPECT_EQ(server->peer_fingerprint(), p.client_cert.fingerprint);
  // 3 MiB one way while the other way talks too: read and write on two threads.
  std::vector<uint8_t> big(3u << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 31 + 7);
  std::thread w([&] { ASSERT_TRUE(client->write_all(big).ok()); });
  std::thread w2([&] { ASSERT_TRUE(server->write_all(bytes_of("pong")).ok()); });
  std::vector<uint8_t> got(big.size());
  ASSERT_TRUE(server->read_exact(got).ok());
  std::vector<uint8_t> pong(4);
  ASSERT_TRUE(client->read_exact(pong).ok());
  w.join();
  w2.join();
  EXPECT_EQ(got, big);
  EXPECT_EQ(pong, bytes_of("pong"));
}

TEST(TlsStream, AServerPinningSomeoneElseRefusesTheClient) {
  Party p;
  Certificate other = Certificate::generate().value();
  auto [cfd, sfd] = tcp_pair();
  auto client = tls_on(std::move(cfd), TlsRole::client, p.client_cert, p.server_cert.fingerprint);
  auto server = tls_on(std::move(sfd), TlsRole::server, p.server_cert, other.fingerprint);
  auto [c, s] = handshake_both(*client, *server, 3 * kSeconds);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::pin_mismatch);
  EXPECT_NE(s.error().message.find("does not match the pinned fingerprint"), std::string::npos) << s.error().message;
  // TLS 1.3: the client's side is done before the server checks its
  // certificate; it learns of the refusal (an alert) on its first read.
  if (c.ok()) {
    std::vector<uint8_t> buf(16);
    auto r = client->read_some(buf);
    EXPECT_TRUE(!r.ok() || *r == 0);
  }
}

TEST(TlsStream, AClientPinningSomeoneElseRefusesTheServer) {
  Party p;
  Certificate other = Certificate::generate().value();
  auto [cfd, sfd] = tcp_pair();
  auto client = tls_on(std::move(cfd), TlsRole::client, p.client_cert, other.fingerprint);
  auto server = tls_on(std::move(sfd), TlsRole::server, p.server_cert, p.client_cert.fingerprint);
  auto [c, s] = handshake_both(*client, *server, 3 * kSeconds);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::pin_mismatch);
  EXPECT_NE(c.error().message.find(to_hex(p.server_cert.fingerprint)), std::string::npos) << c.error().message;
  EXPECT_FALSE(s.ok());
}

TEST(TlsStream, GarbageInsteadOfAClientHelloFailsAtOnce) {
  Party p;
  auto [cfd, sfd] = tcp_pair();
  auto server = tls_on(std::move(sfd), TlsRole::server, p.server_cert, p.client_cert.fingerprint);
  const std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(3000, 'z');
  ASSERT_EQ(::write(cfd.get(), junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  const auto t0 = std::chrono::steady_clock::now();
  auto s = server->handshake(3 * kSeconds);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().code, Errc::timeout) << s.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
}

TEST(TlsStream, ASilentPeerTimesOutAndShutdownCutsAHandshakeShort) {
  Party p;
  auto [cfd, sfd] = tcp_pair();
  auto server = tls_on(std::move(sfd), TlsRole::server, p.server_cert, p.client_cert.fingerprint);
  auto s = server->handshake(300 * kMillis);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::timeout);

  auto [cfd2, sfd2] = tcp_pair();
  auto server2 = tls_on(std::move(sfd2), TlsRole::server, p.server_cert, p.client_cert.fingerprint);
  std::thread cut([&] {
    usleep(100000);
    server2->shutdown();
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto s2 = server2->handshake(10 * kSeconds);
  cut.join();
  ASSERT_FALSE(s2.ok());
  EXPECT_EQ(s2.error().code, Errc::closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

// ---------------------------------------------------------------- join

TEST(TcpJoin, RoundTripsAndRefusesAnotherKeyOrFingerprint) {
  Party p;
  LinkToken token{};
  token[3] = 9;
  auto join = encode_tcp_join(p.key, p.client_cert.fingerprint, p.server_cert.fingerprint, token, 2, 4);
  auto j = decode_tcp_join(join, p.key, p.client_cert.fingerprint, p.server_cert.fingerprint);
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ(j->token, token);
  EXPECT_EQ(j->index, 2);
  EXPECT_EQ(j->count, 4);
  SessionKey other = p.key;
  other[0] ^= 1;
  EXPECT_EQ(decode_tcp_join(join, other, p.client_cert.fingerprint, p.server_cert.fingerprint).error().code,
            Errc::auth);
  EXPECT_EQ(decode_tcp_join(join, p.key, p.server_cert.fingerprint, p.client_cert.fingerprint).error().code,
            Errc::auth);
  auto bad = encode_tcp_join(p.key, p.client_cert.fingerprint, p.server_cert.fingerprint, token, 4, 4);
  EXPECT_EQ(decode_tcp_join(bad, p.key, p.client_cert.fingerprint, p.server_cert.fingerprint).error().code,
            Errc::protocol);
  join[0] = 'X';
  EXPECT_EQ(decode_tcp_join(join, p.key, p.client_cert.fingerprint, p.server_cert.fingerprint).error().code,
            Errc::protocol);
}

// ---------------------------------------------------------------- links

struct Linked {
  std::shared_ptr<TcpLinkServer> server;
  std::shared_ptr<Link> server_link, client_link;
};

Linked link_pair(Party& p, size_t connections, const LinkConfig& client_cfg) {
  Linked l;
  l.server = TcpLinkServer::listen(p.server_config(), loopback()).value();
  auto accepted = std::async(std::launch::async, [&] { return l.server->accept(5 * kSeconds); });
  auto c = connect_tcp_link(client_cfg, l.server->local_address(), {connections, ""});
  auto s = accepted.get();
  EXPECT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(s.ok()) << s.error().message;
  if (c) l.client_link = *c;
  if (s) l.server_link = *s;
  return l;
}

TEST(TcpLink, ManyStreamsOverFourConnectionsArriveIntactAndClose) {
  Party p;
  auto l = link_pair(p, 4, p.client_config());
  ASSERT_TRUE(l.client_link && l.server_link);
  EXPECT_EQ(l.server_link->peer_fingerprint(), p.client_cert.fingerprint);
  EXPECT_EQ(l.client_link->peer_fingerprint(), p.server_cert.fingerprint);
  EXPECT_EQ(l.server_link->peer_hello().role, "client");
  ASSERT_TRUE(l.client_link->send_message(bytes_of("hi")).ok());
  EXPECT_EQ(l.server_link->recv_message(3 * kSeconds).value(), bytes_of("hi"));

  // 12 streams at once, each over a window's worth, from the server (the
  // source's side): they spread over the connections and their ids arrive
  // out of order at the client, opening lower ones implicitly.
  constexpr int kStreams = 12;
  auto pattern = [](int s, size_t i) { return static_cast<uint8_t>(i * 13 + s * 101 + (i >> 16)); };
  const size_t size = (3u << 20) + 12345;
  std::vector<std::thread> writers;
  writers.reserve(kStreams);
  for (int s = 0; s < kStreams; ++s) {
    writers.emplace_back([&, s] {
      std::vector<uint8_t> body(size);
      body[0] = static_cast<uint8_t>(s);
      for (size_t i = 1; i < size; ++i) body[i] = pattern(s, i);
      auto id = l.server_link->open_data();
      ASSERT_TRUE(id.ok()) << id.error().message;
      ASSERT_TRUE(l.server_link->write(*id, body, 20 * kSeconds).ok());
      ASSERT_TRUE(l.server_link->finish(*id).ok());
    });
  }
  std::vector<std::future<bool>> readers;
  for (int k = 0; k < kStreams; ++k) {
    auto in = l.client_link->accept_data(10 * kSeconds);
    ASSERT_TRUE(in.ok()) << in.error().message;
    readers.push_back(std::async(std::launch::async, [&, id = *in] {
      std::vector<uint8_t> got, buf(1 << 16);
      for (;;) {
        auto n = l.client_link->read(id, buf, 10 * kSeconds);
        if (!n) return false;
        if (*n == 0) break;
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<long>(*n));
      }
      if (got.size() != size) return false;
      for (size_t i = 1; i < size; ++i)
        if (got[i] != pattern(got[0], i)) return false;
      return true;
    }));
  }
  for (auto& r : readers) EXPECT_TRUE(r.get());
  for (auto& w : writers) w.join();

  l.client_link->close("done");
  for (int i = 0; i < 300 && !l.server_link->closed(); ++i) usleep(10000);
  ASSERT_TRUE(l.server_link->closed());
  EXPECT_NE(l.server_link->error().message.find("peer closed the connection: done"), std::string::npos)
      << l.server_link->error().message;
}

TEST(TcpLink, OneStreamLargerThanTheUnsentBoundArrivesWhenTheReaderIsLate) {
  // The source writes a 64 MiB chunk into one stream; the Link lets up to
  // its send buffer (32 MiB) wait for credit. The stdio link's 16 MiB
  // "peer is not reading" bound failed this copy; a data link's bound is
  // above the send buffer.
  Party p;
  auto l = link_pair(p, 2, p.client_config());
  ASSERT_TRUE(l.client_link && l.server_link);
  std::vector<uint8_t> body(40u << 20);
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<uint8_t>(i * 7 + (i >> 20));
  std::thread writer([&] {
    auto id = l.server_link->open_data();
    ASSERT_TRUE(id.ok());
    auto w = l.server_link->write(*id, body, 20 * kSeconds);
    ASSERT_TRUE(w.ok()) << w.error().message;
    ASSERT_TRUE(l.server_link->finish(*id).ok());
  });
  usleep(500000);  // the writer fills the send buffer meanwhile
  auto in = l.client_link->accept_data(5 * kSeconds);
  ASSERT_TRUE(in.ok()) << in.error().message;
  std::vector<uint8_t> got, buf(1 << 16);
  for (;;) {
    auto n = l.client_link->read(*in, buf, 10 * kSeconds);
    ASSERT_TRUE(n.ok()) << n.error().message;
    if (*n == 0) break;
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<long>(*n));
  }
  writer.join();
  EXPECT_TRUE(got == body);
}

TEST(TcpLink, AReceiverThatDoesNotReadHoldsTheSenderBack) {
  Party p;
  p.quic.send_buffer = 4u << 20;
  auto l = link_pair(p, 2, p.client_config());
  ASSERT_TRUE(l.client_link && l.server_link);
  auto id = l.server_link->open_data();
  ASSERT_TRUE(id.ok());
  std::vector<uint8_t> body(64u << 20, 1);
  // Nobody reads: the stream window and the send buffer stop the writer.
  auto w = l.server_link->write(*id, body, 1500 * kMillis);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, Errc::timeout) << w.error().message;
  EXPECT_FALSE(l.server_link->closed());
}

TEST(TcpLink, AWrongPinOnTheClientIsAPinMismatch) {
  Party p;
  Certificate other = Certificate::generate().value();
  auto server = TcpLinkServer::listen(p.server_config(), loopback()).value();
  auto c = connect_tcp_link(p.client_config(p.client_cert, other.fingerprint), server->local_address(), {4, ""});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::pin_mismatch) << c.error().message;
}

// ---------------------------------------------------------------- strangers

// A TLS client with `cert` pinning the server, which sends `join` after the handshake.
struct RawClient {
  std::unique_ptr<TlsStream> tls;
  Result<void> handshake;
};
RawClient raw_tls_client(Party& p, const Address& to, const Certificate& cert) {
  auto fd = tcp_connect(to, kSeconds).value();
  RawClient r{tls_on(std::move(fd), TlsRole::client, cert, p.server_cert.fingerprint), {}};
  r.handshake = r.tls->handshake(3 * kSeconds);
  return r;
}

TEST(TcpLinkServer, StrangersNeverKeepThePinnedPeerOut) {
  Party p;
  auto server = TcpLinkServer::listen(p.server_config(), loopback()).value();
  const Address at = server->local_address();
  // Twice the slots of silent strangers, junk senders, an unpinned client.
  std::vector<UniqueFd> silent;
  silent.reserve(20);
  for (int i = 0; i < 8; ++i) silent.push_back(tcp_connect(at, kSeconds).value());
  for (int i = 0; i < 3; ++i) {
    auto fd = tcp_connect(at, kSeconds).value();
    std::string junk(5000, '\x16');  // a record header, then a body that never completes
    if (i > 0) junk = "GET / HTTP/1.0\r\n\r\n";
    (void)!::write(fd.get(), junk.data(), junk.size());
    silent.push_back(std::move(fd));
  }
  Certificate stranger = Certificate::generate().value();
  auto unpinned = raw_tls_client(p, at, stranger);
  if (unpinned.handshake.ok()) {  // TLS 1.3: the refusal comes after the client's side is done
    std::vector<uint8_t> buf(16);
    unpinned.tls->set_deadline(std::chrono::steady_clock::now() + std::chrono::seconds(3));
    auto r = unpinned.tls->read_some(buf);
    EXPECT_TRUE(!r.ok() || *r == 0);
    EXPECT_FALSE(!r.ok() && r.error().code == Errc::timeout);
  }
  // And more silent ones while the real peer connects.
  for (int i = 0; i < 8; ++i) silent.push_back(tcp_connect(at, kSeconds).value());
  auto accepted = std::async(std::launch::async, [&] { return server->accept(5 * kSeconds); });
  auto c = connect_tcp_link(p.client_config(), at, {4, ""});
  auto s = accepted.get();
  const auto k = server->counters();
  ASSERT_TRUE(c.ok()) << c.error().message << "; server: " << server->last_rejection() << ", evicted "
                      << k.handshakes_evicted << ", tls failures " << k.tls_failures;
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_LE(k.max_pending, 8u);  // twice max_handshakes: the hard bound on unauthenticated state
  EXPECT_GT(k.handshakes_evicted, 0u);
  EXPECT_GT(k.tls_failures, 0u);  // junk and the unpinned certificate
  EXPECT_GE(k.connections_accepted, 24u);
  EXPECT_EQ(k.links_started, 1u);
}

TEST(TcpLinkServer, APinnedClientWithoutTheSessionKeyCannotJoin) {
  Party p;
  auto server = TcpLinkServer::listen(p.server_config(), loopback()).value();
  const Address at = server->local_address();
  // The pinned certificate, but another session's key: its join is refused
  // whatever token it names, and it starts no link.
  SessionKey wrong = p.key;
  wrong[5] ^= 0x40;
  auto raw = raw_tls_client(p, at, p.client_cert);
  ASSERT_TRUE(raw.handshake.ok()) << raw.handshake.error().message;
  LinkToken token{};
  auto join = encode_tcp_join(wrong, p.client_cert.fingerprint, p.server_cert.fingerprint, token, 0, 1);
  ASSERT_TRUE(raw.tls->write_all(join).ok());
  for (int i = 0; i < 200 && server->counters().join_failures == 0; ++i) usleep(10000);
  EXPECT_EQ(server->counters().join_failures, 1u);
  EXPECT_NE(server->last_rejection().find("bad session tag"), std::string::npos) << server->last_rejection();
  EXPECT_FALSE(server->accept(200 * kMillis).ok());
  // The real peer still gets in, and a later copy of a join into its
  // (complete) link is refused.
  auto accepted = std::async(std::launch::async, [&] { return server->accept(5 * kSeconds); });
  auto c = connect_tcp_link(p.client_config(), at, {2, ""});
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(accepted.get().ok());
  EXPECT_EQ(server->counters().links_started, 1u);
}

TEST(TcpLinkServer, ASilentStrangerTimesOutAndStopAcceptingClosesThePort) {
  Party p;
  p.quic.handshake_timeout = 400 * kMillis;
  auto server = TcpLinkServer::listen(p.server_config(), loopback()).value();
  const Address at = server->local_address();
  auto fd = tcp_connect(at, kSeconds).value();
  for (int i = 0; i < 200 && server->counters().handshake_timeouts == 0; ++i) usleep(10000);
  EXPECT_EQ(server->counters().handshake_timeouts, 1u);
  server->stop_accepting();
  usleep(300000);
  auto again = tcp_connect(at, kSeconds);
  EXPECT_FALSE(again.ok());
}

}  // namespace
}  // namespace rcp
