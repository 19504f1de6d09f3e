#include <gtest/gtest.h>

#include <vector>

#include "wire/control_channel.h"
#include "wire/frame.h"

namespace rcp {
namespace {

using Bytes = std::vector<uint8_t>;

SessionKey key_of(uint8_t b) {
  SessionKey k{};
  k.fill(b);
  return k;
}

Bytes body_of(const Bytes& frame) {
  FrameDecoder d;
  EXPECT_TRUE(d.feed(frame).ok());
  Bytes body;
  EXPECT_TRUE(d.next(body));
  EXPECT_FALSE(d.mid_frame());
  return body;
}

Errc open_error(ControlOpener& o, const Bytes& body) {
  auto r = o.open(body);
  return r.ok() ? Errc::ok : r.error().code;
}

TEST(ControlChannel, TagMatchesTheSpecifiedLayout) {
  // tag = HMAC-SHA256(key, dir || seq as 8 bytes big endian || message)
  const SessionKey key = key_of(3);
  ControlSealer s(key, Direction::server_to_client);
  const Bytes msg{0x91, 0x01};
  (void)s.seal(msg);                                         // seq 0
  const Bytes body = body_of(s.seal(msg));                   // seq 1
  const Bytes input{2, 0, 0, 0, 0, 0, 0, 0, 1, 0x91, 0x01};  // dir, seq 1, message
  const Sha256Digest want = hmac_sha256(key, input);
  ASSERT_EQ(body.size(), msg.size() + kHmacTagSize);
  EXPECT_EQ(Bytes(body.begin(), body.begin() + 2), msg);
  EXPECT_EQ(Bytes(body.begin() + 2, body.end()), Bytes(want.begin(), want.end()));
}

TEST(ControlChannel, RoundTripInOrder) {
  ControlSealer s(key_of(7), Direction::client_to_server);
  ControlOpener o(key_of(7), Direction::client_to_server);
  // Several frames through one decoder, as on a real stream.
  Bytes wire;
  std::vector<Bytes> sent;
  for (uint8_t i = 0; i < 5; ++i) {
    sent.emplace_back(i * 10u, i);
    auto frame = s.seal(sent.back());
    EXPECT_EQ(frame.size(), kFrameHeaderSize + sent.back().size() + kHmacTagSize);
    wire.insert(wire.end(), frame.begin(), frame.end());
  }
  FrameDecoder d;
  ASSERT_TRUE(d.feed(wire).ok());
  Bytes body;
  for (const Bytes& msg : sent) {
    ASSERT_TRUE(d.next(body));
    auto opened = o.open(body);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    EXPECT_EQ(*opened, msg);
  }
  EXPECT_FALSE(d.next(body));
}

TEST(ControlChannel, TamperingDetected) {
  ControlSealer s(key_of(7), Direction::client_to_server);
  const Bytes body = body_of(s.seal(Bytes{1, 2, 3}));
  for (size_t pos : {size_t{0}, size_t{2}, size_t{3}, body.size() - 1}) {  // message bytes, tag bytes
    for (uint8_t bit : {uint8_t{0x01}, uint8_t{0x80}}) {
      Bytes bad = body;
      bad[pos] ^= bit;
      ControlOpener o(key_of(7), Direction::client_to_server);
      EXPECT_EQ(open_error(o, bad), Errc::auth) << "pos " << pos;
      EXPECT_TRUE(o.open(body).ok());  // a failure does not advance the sequence
    }
  }
  // Truncating or extending the message also breaks the tag.
  ControlOpener o(key_of(7), Direction::client_to_server);
  EXPECT_EQ(open_error(o, Bytes(body.begin() + 1, body.end())), Errc::auth);
  Bytes longer = body;
  longer.insert(longer.begin(), 0x00);
  EXPECT_EQ(open_error(o, longer), Errc::auth);
}

TEST(ControlChannel, WrongKeyRefused) {
  ControlSealer s(key_of(7), Direction::client_to_server);
  const Bytes body = body_of(s.seal(Bytes{1}));
  SessionKey almost = key_of(7);
  almost[31] ^= 1;
  ControlOpener wrong(key_of(8), Direction::client_to_server), near(almost, Direction::client_to_server);
  EXPECT_EQ(open_error(wrong, body), Errc::auth);
  EXPECT_EQ(open_error(near, body), Errc::auth);
}

TEST(ControlChannel, ReplayRefused) {
  ControlSealer s(key_of(7), Direction::client_to_server);
  const Bytes body = body_of(s.seal(Bytes{1}));
  ControlOpener o(key_of(7), Direction::client_to_server);
  EXPECT_TRUE(o.open(body).ok());
  auto again = o.open(body);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::auth);
}

TEST(ControlChannel, ReorderRefused) {
  ControlSealer s(key_of(7), Direction::client_to_server);
  const Bytes first = body_of(s.seal(Bytes{1}));
  const Bytes second = body_of(s.seal(Bytes{2}));
  ControlOpener o(key_of(7), Direction::client_to_server);
  EXPECT_EQ(open_error(o, second), Errc::auth);
  EXPECT_EQ(open_error(o, first), Errc::ok);
  EXPECT_EQ(open_error(o, second), Errc::ok);
}

TEST(ControlChannel, ReflectionRefused) {
  // A frame the client sealed, sent back to the client (which opens server_to_client).
  ControlSealer client(key_of(7), Direction::client_to_server);
  const Bytes body = body_of(client.seal(Bytes{1}));
  ControlOpener client_side(key_of(7), Direction::server_to_client);
  EXPECT_EQ(open_error(client_side, body), Errc::auth);
  // Both directions with the same key are independent channels.
  ControlSealer server(key_of(7), Direction::server_to_client);
  EXPECT_EQ(open_error(client_side, body_of(server.seal(Bytes{1}))), Errc::ok);
}

TEST(ControlChannel, ShortBodyIsProtocolError) {
  ControlOpener o(key_of(1), Direction::client_to_server);
  for (size_t n : {size_t{0}, size_t{1}, kHmacTagSize - 1}) {
    auto r = o.open(Bytes(n, 0));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::protocol) << n;
  }
  // Exactly a tag (an empty message) is well formed: it fails on the tag, not the size.
  EXPECT_EQ(open_error(o, Bytes(kHmacTagSize, 0)), Errc::auth);
}

TEST(ControlChannel, EmptyMessageRoundTrips) {
  ControlSealer s(key_of(9), Direction::server_to_client);
  ControlOpener o(key_of(9), Direction::server_to_client);
  auto opened = o.open(body_of(s.seal({})));
  ASSERT_TRUE(opened.ok());
  EXPECT_TRUE(opened->empty());
}

}  // namespace
}  // namespace rcp
