#include <gtest/gtest.h>

#include <string>

#include "crypto.h"

namespace rcp {
namespace {

std::span<const uint8_t> bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

TEST(Crypto, Sha256KnownAnswer) {
  EXPECT_EQ(to_hex(sha256(bytes("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(sha256(bytes(""))), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Crypto, HmacSha256Rfc4231Case2) {
  EXPECT_EQ(to_hex(hmac_sha256(bytes("Jefe"), bytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, HmacIncrementalMatchesOneShot) {
  HmacSha256 h(bytes("key"));
  h.update(bytes("what do ya "));
  h.update(bytes("want"));
  EXPECT_EQ(h.finish(), hmac_sha256(bytes("key"), bytes("what do ya want")));
}

TEST(Crypto, ConstantTimeEqual) {
  std::vector<uint8_t> a{1, 2, 3}, b{1, 2, 3}, c{1, 2, 4}, d{1, 2};
  EXPECT_TRUE(constant_time_equal(a, b));
  EXPECT_FALSE(constant_time_equal(a, c));
  EXPECT_FALSE(constant_time_equal(a, d));
  EXPECT_TRUE(constant_time_equal({}, {}));
}

TEST(Crypto, RandomBytesFillLargeBuffers) {
  std::vector<uint8_t> a(200000), b(200000);
  ASSERT_TRUE(random_bytes(a).ok());
  ASSERT_TRUE(random_bytes(b).ok());
  EXPECT_NE(a, b);
  EXPECT_NE(std::count(a.begin(), a.end(), 0), static_cast<long>(a.size()));
}

TEST(Crypto, HexRoundTripAndErrors) {
  std::vector<uint8_t> v{0x00, 0xab, 0xff, 0x10};
  EXPECT_EQ(to_hex(v), "00abff10");
  EXPECT_EQ(from_hex("00ABff10").value(), v);
  EXPECT_EQ(from_hex("00:AB:ff:10").value(), v);
  EXPECT_FALSE(from_hex("abc").ok());
  EXPECT_FALSE(from_hex("zz").ok());
  EXPECT_FALSE(from_hex("a:b").ok());
  EXPECT_TRUE(from_hex("").value().empty());
}

}  // namespace
}  // namespace rcp
