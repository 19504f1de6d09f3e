#include <gtest/gtest.h>

#include "message.h"

namespace rcp {
namespace {

TEST(Message, HelloRoundTrip) {
  Hello h{kProtocolVersion, "source", std::string(64, 'a'), "0.1.0"};
  auto m = decode_message(h.encode());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->type, static_cast<uint32_t>(MsgType::hello));
  auto back = Hello::decode(*m);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->role, "source");
  EXPECT_EQ(back->fingerprint, h.fingerprint);
  EXPECT_EQ(back->software, "0.1.0");
}

TEST(Message, ExtraTrailingFieldsAccepted) {
  auto bytes = encode_message(MsgType::hello, 1u, std::string("r"), std::string("f"), std::string("s"), 99,
                              std::string("future"));
  auto h = Hello::decode(decode_message(bytes).value());
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->role, "r");
}

TEST(Message, WrongFieldTypesRefused) {
  auto bytes = encode_message(MsgType::hello, std::string("1"), std::string("r"), std::string("f"), std::string("s"));
  auto h = Hello::decode(decode_message(bytes).value());
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("protocol_version"), std::string::npos);
  auto missing = Hello::decode(decode_message(encode_message(MsgType::hello, 1u)).value());
  EXPECT_FALSE(missing.ok());
  auto long_role = Hello::decode(
      decode_message(encode_message(MsgType::hello, 1u, std::string(200, 'x'), std::string("f"), std::string("s")))
          .value());
  EXPECT_FALSE(long_role.ok());
}

Errc decode_error(std::vector<uint8_t> bytes) {
  auto m = decode_message(bytes);
  return m.ok() ? Errc::ok : m.error().code;
}

TEST(Message, HostileEncodingsRefused) {
  EXPECT_EQ(decode_error({}), Errc::protocol);
  EXPECT_EQ(decode_error({0x90}), Errc::protocol);              // empty array
  EXPECT_EQ(decode_error({0x01}), Errc::protocol);              // not an array
  EXPECT_EQ(decode_error({0x91, 0x00}), Errc::protocol);        // type 0
  EXPECT_EQ(decode_error({0x91, 0xa1, 'x'}), Errc::protocol);   // type is a string
  EXPECT_EQ(decode_error({0x92, 0x01}), Errc::protocol);        // truncated
  EXPECT_EQ(decode_error({0x91, 0x01, 0xc1}), Errc::protocol);  // trailing byte
  // Declared sizes far beyond the buffer: array32, str32, bin32, map32.
  EXPECT_EQ(decode_error({0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}), Errc::protocol);
  EXPECT_EQ(decode_error({0x92, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}), Errc::protocol);
  EXPECT_EQ(decode_error({0x92, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xff, 'a'}), Errc::protocol);
  EXPECT_EQ(decode_error({0x92, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff}), Errc::protocol);
  // Nesting 100 deep.
  std::vector<uint8_t> deep(100, 0x91);
  deep.push_back(0x01);
  EXPECT_EQ(decode_error(deep), Errc::protocol);
  // A well-formed message still decodes.
  EXPECT_EQ(decode_error({0x92, 0x64, 0xa2, 'h', 'i'}), Errc::ok);
}

TEST(Message, FieldAccessors) {
  auto m = decode_message(encode_message(MsgType::user, 5u, std::string("s"), std::vector<uint8_t>{1, 2})).value();
  EXPECT_EQ(m.get_uint(0, "n").value(), 5u);
  EXPECT_EQ(m.get_str(1, "s").value(), "s");
  EXPECT_FALSE(m.get_str(0, "n").ok());
  EXPECT_FALSE(m.get_uint(9, "missing").ok());
  EXPECT_FALSE(m.get_bin(2, "b", 1).ok());  // longer than allowed
  EXPECT_EQ(m.get_bin(2, "b", 2).value(), (std::vector<uint8_t>{1, 2}));
}

}  // namespace
}  // namespace rcp
