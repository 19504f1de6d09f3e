#include <gtest/gtest.h>

#include "control_channel.h"
#include "frame.h"

namespace rcp {
namespace {

SessionKey key_of(uint8_t b) {
  SessionKey k{};
  k.fill(b);
  return k;
}

std::vector<uint8_t> body_of(const std::vector<uint8_t>& frame) {
  FrameDecoder d;
  EXPECT_TRUE(d.feed(frame).ok());
  std::vector<uint8_t> body;
  EXPECT_TRUE(d.next(body));
  return body;
}

TEST(ControlChannel, RoundTripInOrder) {
  ControlSealer s(key_of(7), Direction::client_to_server);
  ControlOpener o(key_of(7), Direction::client_to_server);
  for (uint8_t i = 0; i < 5; ++i) {
    std::vector<uint8_t> msg(i * 10, i);
    auto frame = s.seal(msg);
    EXPECT_EQ(frame.size(), 4 + msg.size() + kHmacTagSize);
    auto opened = o.open(body_of(frame));
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    EXPECT_EQ(*opened, msg);
  }
}

TEST(ControlChannel, TamperingDetected) {
  ControlSealer s(key_of(7), Direction::client_to_server);
  auto body = body_of(s.seal(std::vector<uint8_t>{1, 2, 3}));
  for (size_t pos : {size_t{0}, body.size() - 1}) {  // message byte, tag byte
    auto bad = body;
    bad[pos] ^= 0x01;
    ControlOpener o(key_of(7), Direction::client_to_server);
    auto r = o.open(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::auth);
    EXPECT_TRUE(o.open(body).ok());  // a failure does not advance the sequence
  }
}

TEST(ControlChannel, WrongKeyReplayReflectionRefused) {
  ControlSealer s(key_of(7), Direction::client_to_server);
  auto body = body_of(s.seal(std::vector<uint8_t>{1}));
  EXPECT_EQ(ControlOpener(key_of(8), Direction::client_to_server).open(body).error().code, Errc::auth);
  EXPECT_EQ(ControlOpener(key_of(7), Direction::server_to_client).open(body).error().code, Errc::auth);
  ControlOpener o(key_of(7), Direction::client_to_server);
  EXPECT_TRUE(o.open(body).ok());
  EXPECT_EQ(o.open(body).error().code, Errc::auth);  // replay
}

TEST(ControlChannel, ShortBodyIsProtocolError) {
  ControlOpener o(key_of(1), Direction::client_to_server);
  auto r = o.open(std::vector<uint8_t>(kHmacTagSize - 1, 0));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::protocol);
}

}  // namespace
}  // namespace rcp
