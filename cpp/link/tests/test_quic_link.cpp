// End-to-end over a real UDP socket on loopback: handshake with mutual
// pinning, hello exchange, sealed messages and a 64 MiB bulk transfer.
#include <gtest/gtest.h>

#include <thread>

#include "link/link.h"
#include "link/link_server.h"
#include "quic/certificate.h"

namespace rcp {
namespace {

struct Pair {
  Certificate server_cert = Certificate::generate().value();
  Certificate client_cert = Certificate::generate().value();
  SessionKey key{};
  QuicConfig quic;

  Pair() {
    EXPECT_TRUE(random_bytes(key).ok());
    quic.handshake_timeout = 3 * kSeconds;
    quic.idle_timeout = 5 * kSeconds;
  }
  LinkConfig server_config(std::vector<Fingerprint> pins) {
    return LinkConfig{{quic, {TlsRole::server, server_cert, std::move(pins), ""}}, key, "server"};
  }
  LinkConfig client_config(Fingerprint pin) {
    return LinkConfig{{quic, {TlsRole::client, client_cert, {pin}, ""}}, key, "client"};
  }
};

Address loopback(const char* host = "127.0.0.1") { return Address::parse(host, 0).value(); }

struct Connected {
  std::shared_ptr<LinkServer> server;
  std::shared_ptr<Link> server_link;
  std::shared_ptr<Link> client_link;
};

Connected connect_pair(Pair& p, const char* host = "127.0.0.1") {
  Connected c;
  auto server = LinkServer::listen(p.server_config({p.client_cert.fingerprint}), loopback(host));
  EXPECT_TRUE(server.ok()) << (server.ok() ? "" : server.error().message);
  c.server = server.value();
  Result<std::shared_ptr<Link>> accepted = make_error(Errc::timeout, "");
  std::thread t([&] { accepted = c.server->accept(5 * kSeconds); });
  auto client = Link::connect(p.client_config(p.server_cert.fingerprint), c.server->local_address());
  t.join();
  EXPECT_TRUE(client.ok()) << (client.ok() ? "" : client.error().message);
  EXPECT_TRUE(accepted.ok()) << (accepted.ok() ? "" : accepted.error().message);
  if (client) c.client_link = client.value();
  if (accepted) c.server_link = accepted.value();
  return c;
}

TEST(QuicLink, HandshakeExchangesHelloAndFingerprints) {
  Pair p;
  auto c = connect_pair(p);
  ASSERT_TRUE(c.client_link && c.server_link);
  EXPECT_EQ(c.client_link->peer_fingerprint(), p.server_cert.fingerprint);
  EXPECT_EQ(c.server_link->peer_fingerprint(), p.client_cert.fingerprint);
  EXPECT_EQ(c.client_link->peer_hello().role, "server");
  EXPECT_EQ(c.server_link->peer_hello().role, "client");
  EXPECT_EQ(c.server_link->peer_hello().fingerprint, p.client_cert.fingerprint_hex());
}

TEST(QuicLink, WrongServerFingerprintRefusedByClient) {
  Pair p;
  auto server = LinkServer::listen(p.server_config({p.client_cert.fingerprint}), loopback()).value();
  Certificate other = Certificate::generate().value();
  auto client = Link::connect(p.client_config(other.fingerprint), server->local_address());
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().code, Errc::pin_mismatch) << client.error().message;
  EXPECT_NE(client.error().message.find("does not match"), std::string::npos) << client.error().message;
  EXPECT_FALSE(server->accept(200 * kMillis).ok());  // the server never got a usable peer
}

TEST(QuicLink, WrongClientFingerprintRefusedByServer) {
  Pair p;
  Certificate other = Certificate::generate().value();
  auto server = LinkServer::listen(p.server_config({other.fingerprint}), loopback()).value();
  auto client = Link::connect(p.client_config(p.server_cert.fingerprint), server->local_address());
  ASSERT_FALSE(client.ok());
  // The client learns it from the server's alert; the server records its own reason.
  EXPECT_EQ(client.error().code, Errc::pin_mismatch) << client.error().message;
  auto accepted = server->accept(1 * kSeconds);
  EXPECT_FALSE(accepted.ok());
  EXPECT_GE(server->rejected(), 1u);
  EXPECT_NE(server->last_rejection().find("does not match the pinned fingerprint"), std::string::npos)
      << server->last_rejection();
}

// Certificate replay (wykurz/rcp before 0.36): the pinned certificate is
// public, so a peer may present it without holding its private key. TLS 1.3's
// CertificateVerify must then fail at the side that checks it, before any
// application data: the pin check alone would pass.
Certificate without_its_key(const Certificate& pinned) {
  Certificate rogue = pinned;  // same DER, same fingerprint
  rogue.key_der = Certificate::generate().value().key_der;
  return rogue;
}

TEST(QuicLink, PinnedCertificateWithoutItsKeyRefusedByClient) {
  Pair p;
  auto cfg = p.server_config({p.client_cert.fingerprint});
  cfg.tls.identity = without_its_key(p.server_cert);
  auto server = LinkServer::listen(cfg, loopback());
  ASSERT_TRUE(server.ok()) << server.error().message;  // loaded: the refusal must come from the peer
  auto client = Link::connect(p.client_config(p.server_cert.fingerprint), (*server)->local_address());
  ASSERT_FALSE(client.ok()) << "a server without the pinned key was accepted";
  // The client itself refused (its own TLS failure, alert decrypt_error), and not on the pin.
  EXPECT_EQ(client.error().code, Errc::tls) << client.error().message;
  EXPECT_NE(client.error().message.find("TLS handshake with"), std::string::npos) << client.error().message;
  EXPECT_NE(client.error().message.find("alert 51"), std::string::npos) << client.error().message;
  EXPECT_FALSE((*server)->accept(500 * kMillis).ok());
  EXPECT_NE((*server)->last_rejection().find("aborted the TLS handshake (alert 51)"), std::string::npos)
      << (*server)->last_rejection();
}

TEST(QuicLink, PinnedCertificateWithoutItsKeyRefusedByServer) {
  Pair p;
  auto server = LinkServer::listen(p.server_config({p.client_cert.fingerprint}), loopback()).value();
  auto cfg = p.client_config(p.server_cert.fingerprint);
  cfg.tls.identity = without_its_key(p.client_cert);
  auto client = Link::connect(cfg, server->local_address());
  ASSERT_FALSE(client.ok()) << "a client without the pinned key was accepted";
  EXPECT_NE(client.error().message.find("aborted the TLS handshake (alert 51)"), std::string::npos)
      << client.error().message;
  EXPECT_FALSE(server->accept(500 * kMillis).ok());
  EXPECT_GE(server->rejected(), 1u);
  // The server itself refused, in its own TLS check, and not on the pin.
  EXPECT_NE(server->last_rejection().find("TLS handshake with"), std::string::npos) << server->last_rejection();
  EXPECT_NE(server->last_rejection().find("alert 51"), std::string::npos) << server->last_rejection();
}

TEST(QuicLink, WrongSessionKeyFailsHello) {
  Pair p;
  auto server = LinkServer::listen(p.server_config({p.client_cert.fingerprint}), loopback()).value();
  auto cfg = p.client_config(p.server_cert.fingerprint);
  cfg.session_key[0] ^= 1;
  auto client = Link::connect(cfg, server->local_address());
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().code, Errc::auth) << client.error().message;
  EXPECT_FALSE(server->accept(200 * kMillis).ok());
  EXPECT_GE(server->rejected(), 1u);
}

TEST(QuicLink, NothingListeningTimesOut) {
  Pair p;
  p.quic.handshake_timeout = 1 * kSeconds;
  // Reserve a port with no QUIC behind it.
  auto idle = UdpSocket::bind(loopback(), PortRange{}, UdpOptions{}).value();
  auto client = Link::connect(p.client_config(p.server_cert.fingerprint), idle.local_address());
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().code, Errc::timeout) << client.error().message;
}

TEST(QuicLink, SealedMessagesBothWays) {
  Pair p;
  auto c = connect_pair(p);
  ASSERT_TRUE(c.client_link && c.server_link);
  for (int i = 0; i < 50; ++i) {
    auto msg = encode_message(MsgType::user, i, std::string("ping"));
    ASSERT_TRUE(c.client_link->send_message(msg).ok());
  }
  for (int i = 0; i < 50; ++i) {
    auto got = c.server_link->recv_message(2 * kSeconds);
    ASSERT_TRUE(got.ok()) << got.error().message;
    auto m = decode_message(*got).value();
    EXPECT_EQ(m.get_uint(0, "i").value(), static_cast<uint64_t>(i));
  }
  ASSERT_TRUE(c.server_link->send_message(encode_message(MsgType::user, std::string("pong"))).ok());
  auto back = c.client_link->recv_message(2 * kSeconds);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(decode_message(*back).value().get_str(0, "s").value(), "pong");
}

TEST(QuicLink, LogStreamDeliversFrames) {
  Pair p;
  auto c = connect_pair(p);
  ASSERT_TRUE(c.client_link && c.server_link);
  ASSERT_TRUE(c.client_link->send_log(encode_message(MsgType::user, std::string("line 1"))).ok());
  ASSERT_TRUE(c.client_link->send_log(encode_message(MsgType::user, std::string("line 2"))).ok());
  for (const char* want : {"line 1", "line 2"}) {
    auto got = c.server_link->recv_log(2 * kSeconds);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_EQ(decode_message(*got).value().get_str(0, "line").value(), want);
  }
}

void transfer_and_compare(Connected& c, size_t total) {
  std::vector<uint8_t> data(total);
  ASSERT_TRUE(random_bytes(data).ok());
  const Sha256Digest want = sha256(data);
  Result<void> sent;
  std::thread sender([&] {
    auto id = c.client_link->open_data();
    if (!id) {
      sent = id.error();
      return;
    }
    sent = c.client_link->write(*id, data, 30 * kSeconds);
    if (sent) sent = c.client_link->finish(*id);
  });
  auto id = c.server_link->accept_data(10 * kSeconds);
  ASSERT_TRUE(id.ok()) << id.error().message;
  std::vector<uint8_t> got;
  got.reserve(total);
  std::vector<uint8_t> buf(1 << 20);
  for (int guard = 0; guard < 1000000; ++guard) {
    auto n = c.server_link->read(*id, buf, 30 * kSeconds);
    ASSERT_TRUE(n.ok()) << n.error().message;
    if (*n == 0) break;
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<long>(*n));
  }
  sender.join();
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  ASSERT_EQ(got.size(), total);
  EXPECT_EQ(sha256(got), want);
}

TEST(QuicLink, Transfers64MiBIntact) {
  Pair p;
  auto c = connect_pair(p);
  ASSERT_TRUE(c.client_link && c.server_link);
  transfer_and_compare(c, 64u << 20);
  auto st = c.client_link->stats();
  EXPECT_GT(st.packets_sent, (64u << 20) / 65536);
}

TEST(QuicLink, TransfersOverIpv6) {
  Pair p;
  auto c = connect_pair(p, "::1");
  ASSERT_TRUE(c.client_link && c.server_link);
  transfer_and_compare(c, 4u << 20);
}

TEST(QuicLink, ListenerHonoursPortRange) {
  Pair p;
  p.quic.port_range = "47000-47099";
  auto server = LinkServer::listen(p.server_config({p.client_cert.fingerprint}), loopback()).value();
  EXPECT_GE(server->local_address().port(), 47000);
  EXPECT_LE(server->local_address().port(), 47099);
}

TEST(QuicLink, PeerCloseIsReported) {
  Pair p;
  auto c = connect_pair(p);
  ASSERT_TRUE(c.client_link && c.server_link);
  c.client_link->close("bye");
  auto r = c.server_link->recv_message(3 * kSeconds);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::closed) << r.error().message;
  EXPECT_NE(r.error().message.find("bye"), std::string::npos) << r.error().message;
}

// A hostile client: the server must close the connection with a clear
// reason, and both sides report it instead of crashing.
void expect_refused(std::vector<uint8_t> raw, bool bidi, const std::string& reason) {
  Pair p;
  auto c = connect_pair(p);
  ASSERT_TRUE(c.client_link && c.server_link);
  ASSERT_TRUE(c.client_link->send_raw(bidi, raw).ok());
  auto at_client = c.client_link->recv_message(3 * kSeconds);
  ASSERT_FALSE(at_client.ok());
  EXPECT_EQ(at_client.error().code, Errc::protocol) << at_client.error().message;
  EXPECT_NE(at_client.error().message.find(reason), std::string::npos) << at_client.error().message;
  auto at_server = c.server_link->recv_message(3 * kSeconds);
  ASSERT_FALSE(at_server.ok());
  EXPECT_NE(at_server.error().message.find(reason), std::string::npos) << at_server.error().message;
}

TEST(QuicLinkHostile, UnknownStreamKindClosesConnection) {
  expect_refused({9, 1, 2, 3}, false, "unknown stream kind 9");
}

TEST(QuicLinkHostile, OversizeFrameClosesConnection) {
  expect_refused({static_cast<uint8_t>(StreamKind::log), 0xff, 0xff, 0xff, 0xff, 0}, false, "exceeds the limit");
}

TEST(QuicLinkHostile, TruncatedFrameClosesConnection) {
  expect_refused({static_cast<uint8_t>(StreamKind::log), 0, 0, 0, 9, 1}, false, "ended inside a frame");
}

TEST(QuicLinkHostile, SecondControlStreamRefused) {
  expect_refused({static_cast<uint8_t>(StreamKind::control), 0, 0, 0, 0}, true, "unexpected control stream");
}

TEST(QuicLinkHostile, ControlKindOnUnidirectionalStreamRefused) {
  expect_refused({static_cast<uint8_t>(StreamKind::control)}, false, "unexpected control stream");
}

}  // namespace
}  // namespace rcp
