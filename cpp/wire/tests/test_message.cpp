#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "wire/message.h"

namespace rcp {
namespace {

using Bytes = std::vector<uint8_t>;

Errc decode_error(const Bytes& bytes) {
  auto m = decode_message(bytes);
  if (m.ok()) return Errc::ok;
  EXPECT_FALSE(m.error().message.empty());
  return m.error().code;
}

Result<Hello> hello_from(const Bytes& bytes) {
  auto m = decode_message(bytes);
  if (!m) return m.error();
  return Hello::decode(*m);
}

// [1, [[...[1]...]]]: `depth` nested arrays in all.
Bytes nested(size_t depth) {
  Bytes b{0x92, 0x01};
  for (size_t i = 2; i < depth; ++i) b.push_back(0x91);
  b.push_back(0x91);
  b.push_back(0x01);
  return b;
}

TEST(Message, HelloRoundTrip) {
  Hello h{kProtocolVersion, "source", std::string(64, 'a'), "0.1.0"};
  const Bytes wire = h.encode();
  // [hello, version, role, fingerprint, software]: a 5-element fixarray starting with 1.
  ASSERT_GE(wire.size(), 3u);
  EXPECT_EQ(wire[0], 0x95);
  EXPECT_EQ(wire[1], 0x01);
  EXPECT_EQ(wire[2], static_cast<uint8_t>(kProtocolVersion));
  auto m = decode_message(wire);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->type, static_cast<uint32_t>(MsgType::hello));
  EXPECT_EQ(m->fields.size(), 4u);
  auto back = Hello::decode(*m);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->protocol_version, kProtocolVersion);
  EXPECT_EQ(back->role, "source");
  EXPECT_EQ(back->fingerprint, h.fingerprint);
  EXPECT_EQ(back->software, "0.1.0");
}

TEST(Message, OurHelloAndItsBanner) {
  const Hello h = Hello::ours("destination", std::string(64, 'b'));
  EXPECT_EQ(h.protocol_version, kProtocolVersion);
  EXPECT_EQ(h.software, RCP_VERSION);
  EXPECT_EQ(h.banner(), "RCPD " + std::to_string(kProtocolVersion) + " " + std::string(64, 'b') + " " + RCP_VERSION);
}

TEST(Message, DecodedMessageSurvivesMoves) {
  auto m = decode_message(encode_message(MsgType::user, std::string("payload"), 7u));
  ASSERT_TRUE(m.ok());
  Message moved = std::move(*m);
  std::vector<Message> v;
  v.push_back(std::move(moved));
  EXPECT_EQ(v[0].get_str(0, "s").value(), "payload");
  EXPECT_EQ(v[0].get_uint(1, "n").value(), 7u);
}

TEST(Message, ExtraTrailingFieldsAccepted) {
  auto h = hello_from(encode_message(MsgType::hello, 2u, std::string("r"), std::string("f"), std::string("s"), 99,
                                     std::string("future"), Bytes{1, 2}));
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->protocol_version, 2u);
  EXPECT_EQ(h->role, "r");
  EXPECT_EQ(h->fingerprint, "f");
  EXPECT_EQ(h->software, "s");
}

TEST(Message, HelloWrongFieldsRefusedNamingTheField) {
  struct Case {
    Bytes wire;
    const char* field;
  };
  const std::string r = "r", f = "f", s = "s";
  const std::vector<Case> cases = {
      {encode_message(MsgType::hello, std::string("1"), r, f, s), "protocol_version"},
      {encode_message(MsgType::hello, -1, r, f, s), "protocol_version"},
      {encode_message(MsgType::hello, uint64_t{1} << 32, r, f, s), "protocol_version"},
      {encode_message(MsgType::hello, 1u, 5u, f, s), "role"},
      {encode_message(MsgType::hello, 1u, r, Bytes{1, 2}, s), "fingerprint"},
      {encode_message(MsgType::hello, 1u, r, f, true), "software"},
      {encode_message(MsgType::hello, 1u, r, f), "software"},
      {encode_message(MsgType::hello), "protocol_version"},
      {encode_message(MsgType::hello, 1u, std::string(129, 'x'), f, s), "role"},
      {encode_message(MsgType::hello, 1u, r, std::string(129, 'x'), s), "fingerprint"},
  };
  for (const Case& c : cases) {
    auto h = hello_from(c.wire);
    ASSERT_FALSE(h.ok()) << c.field;
    EXPECT_EQ(h.error().code, Errc::protocol);
    EXPECT_NE(h.error().message.find(c.field), std::string::npos) << h.error().message;
  }
  // 128 is the largest role and fingerprint accepted.
  auto at_limit = hello_from(encode_message(MsgType::hello, 1u, std::string(128, 'r'), std::string(128, 'f'), s));
  ASSERT_TRUE(at_limit.ok()) << at_limit.error().message;
  EXPECT_EQ(at_limit->fingerprint.size(), 128u);
}

TEST(Message, HelloDecodeRequiresHelloType) {
  auto m = decode_message(encode_message(MsgType::abort, 1u, std::string("r"), std::string("f"), std::string("s")));
  ASSERT_TRUE(m.ok());
  auto h = Hello::decode(*m);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, Errc::protocol);
}

TEST(Message, MessageTypeChecked) {
  EXPECT_EQ(decode_error({0x91, 0x00}), Errc::protocol);                                // type 0
  EXPECT_EQ(decode_error({0x91, 0xff}), Errc::protocol);                                // type -1
  EXPECT_EQ(decode_error({0x91, 0xa1, 'x'}), Errc::protocol);                           // type is a string
  EXPECT_EQ(decode_error({0x91, 0xc0}), Errc::protocol);                                // type is nil
  EXPECT_EQ(decode_error({0x91, 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}), Errc::protocol);  // type 1.0
  EXPECT_EQ(decode_error({0x91, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0}), Errc::protocol);        // 2^32
  auto max = decode_message(Bytes{0x91, 0xce, 0xff, 0xff, 0xff, 0xff});
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->type, 0xFFFFFFFFu);
  EXPECT_TRUE(max->fields.empty());
}

TEST(Message, NonArraysAndEmptyRefused) {
  EXPECT_EQ(decode_error({}), Errc::protocol);
  EXPECT_EQ(decode_error({0x90}), Errc::protocol);              // empty array
  EXPECT_EQ(decode_error({0x01}), Errc::protocol);              // an integer
  EXPECT_EQ(decode_error({0xa2, 'h', 'i'}), Errc::protocol);    // a string
  EXPECT_EQ(decode_error({0x81, 0x01, 0x02}), Errc::protocol);  // a map
  EXPECT_EQ(decode_error({0xc0}), Errc::protocol);              // nil
  EXPECT_EQ(decode_error({0xc1}), Errc::protocol);              // reserved byte
}

TEST(Message, TruncatedAndTrailingRefused) {
  EXPECT_EQ(decode_error({0x92, 0x01}), Errc::protocol);  // one element missing
  EXPECT_EQ(decode_error({0x92, 0x01, 0xa5, 'a'}), Errc::protocol);
  EXPECT_EQ(decode_error({0x91, 0x01, 0xc1}), Errc::protocol);        // trailing byte
  EXPECT_EQ(decode_error({0x91, 0x01, 0x91, 0x01}), Errc::protocol);  // a second object
  // Every strict prefix of a valid message is refused; the whole decodes.
  const Bytes wire = Hello{kProtocolVersion, "destination", std::string(64, 'c'), "0.1.0"}.encode();
  for (size_t n = 0; n < wire.size(); ++n)
    EXPECT_EQ(decode_error(Bytes(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(n))), Errc::protocol) << n;
  EXPECT_EQ(decode_error(wire), Errc::ok);
  auto m = decode_message(Bytes{0x92, 0x01});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("truncated"), std::string::npos) << m.error().message;
}

TEST(Message, HugeDeclaredLengthsInATinyBuffer) {
  // array32, map32, str32, bin32, ext32 and array16 declaring far more than the bytes present.
  EXPECT_EQ(decode_error({0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}), Errc::protocol);
  EXPECT_EQ(decode_error({0xdc, 0xff, 0xff, 0x01}), Errc::protocol);
  EXPECT_EQ(decode_error({0xdf, 0xff, 0xff, 0xff, 0xff}), Errc::protocol);
  EXPECT_EQ(decode_error({0x92, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}), Errc::protocol);
  EXPECT_EQ(decode_error({0x92, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xff, 'a'}), Errc::protocol);
  EXPECT_EQ(decode_error({0x92, 0x01, 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'}), Errc::protocol);
  EXPECT_EQ(decode_error({0x92, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff}), Errc::protocol);
  EXPECT_EQ(decode_error({0x92, 0x01, 0xdd, 0x7f, 0xff, 0xff, 0xff}), Errc::protocol);
}

TEST(Message, ContainerSizeLimit) {
  // [1, nil x 4095] has 4096 elements: allowed. One more is refused.
  auto array_of = [](uint16_t n) {
    Bytes b{0xdc, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n), 0x01};
    b.insert(b.end(), n - 1u, 0xc0);
    return b;
  };
  EXPECT_EQ(decode_error(array_of(4096)), Errc::ok);
  EXPECT_EQ(decode_error(array_of(4097)), Errc::protocol);
  // A map of 4097 entries inside a message.
  Bytes map{0x92, 0x01, 0xde, 0x10, 0x01};
  for (int i = 0; i < 4097; ++i) map.insert(map.end(), {0xc0, 0xc0});
  EXPECT_EQ(decode_error(map), Errc::protocol);
}

TEST(Message, NestingDepthLimit) {
  EXPECT_EQ(decode_error(nested(8)), Errc::ok);
  EXPECT_EQ(decode_error(nested(9)), Errc::protocol);
  Bytes deep(100, 0x91);
  deep.push_back(0x01);
  auto m = decode_message(deep);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::protocol);
  // Maps count toward the depth too.
  Bytes maps{0x92, 0x01};
  for (int i = 0; i < 100; ++i) maps.insert(maps.end(), {0x81, 0x01});
  maps.push_back(0x01);
  EXPECT_EQ(decode_error(maps), Errc::protocol);
}

TEST(Message, RandomInputNeverCrashes) {
  std::mt19937 rng(12345);
  for (int i = 0; i < 20000; ++i) {
    Bytes b(1 + rng() % 40);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    if (i % 2) b[0] = static_cast<uint8_t>(0x90 | (rng() % 16));  // mostly arrays, to get past the first byte
    const Errc e = decode_error(b);
    EXPECT_TRUE(e == Errc::ok || e == Errc::protocol);
  }
}

TEST(Message, FieldAccessors) {
  auto m = decode_message(encode_message(MsgType::user, 5u, std::string("s"), Bytes{1, 2}, -3)).value();
  EXPECT_EQ(m.type, static_cast<uint32_t>(MsgType::user));
  ASSERT_EQ(m.fields.size(), 4u);
  EXPECT_EQ(m.get_uint(0, "n").value(), 5u);
  EXPECT_EQ(m.get_str(1, "s").value(), "s");
  EXPECT_EQ(m.get_bin(2, "b", 2).value(), (Bytes{1, 2}));

  auto expect_field_error = [](const Error& e, const char* what) {
    EXPECT_EQ(e.code, Errc::protocol);
    EXPECT_NE(e.message.find(what), std::string::npos) << e.message;
  };
  expect_field_error(m.get_str(0, "count").error(), "count");     // wrong type
  expect_field_error(m.get_uint(1, "size").error(), "size");      // a string is not a number
  expect_field_error(m.get_uint(3, "offset").error(), "offset");  // negative
  expect_field_error(m.get_uint(9, "missing").error(), "missing");
  expect_field_error(m.get_str(9, "name").error(), "name");
  expect_field_error(m.get_bin(9, "blob", 10).error(), "blob");
  expect_field_error(m.get_bin(1, "blob", 10).error(), "blob");  // str is not bin
  expect_field_error(m.get_str(2, "text").error(), "text");      // bin is not str
  expect_field_error(m.get_bin(2, "blob", 1).error(), "blob");   // too long
  expect_field_error(m.get_str(1, "text", 0).error(), "text");   // too long
}

}  // namespace
}  // namespace rcp
