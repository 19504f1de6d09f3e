#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/crypto.h"

namespace rcp {
namespace {

std::span<const uint8_t> bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

TEST(Crypto, Sha256KnownAnswers) {
  EXPECT_EQ(to_hex(sha256(bytes("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(sha256(bytes(""))), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // FIPS 180-2 long message: one million 'a'.
  EXPECT_EQ(to_hex(sha256(bytes(std::string(1000000, 'a')))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Crypto, HmacSha256Rfc4231) {
  // Test case 2.
  EXPECT_EQ(to_hex(hmac_sha256(bytes("Jefe"), bytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: a key longer than the block size is hashed first.
  EXPECT_EQ(to_hex(hmac_sha256(std::vector<uint8_t>(131, 0xaa),
                               bytes("Test Using Larger Than Block-Size Key - Hash Key First"))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  // Empty key and message (value from Python's hmac module).
  EXPECT_EQ(to_hex(hmac_sha256({}, {})), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(Crypto, HmacIncrementalMatchesOneShot) {
  HmacSha256 h(bytes("Jefe"));
  h.update(bytes("what do ya "));
  h.update({});
  h.update(bytes("want for nothing?"));
  EXPECT_EQ(to_hex(h.finish()), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, Sha256IncrementalMatchesOneShot) {
  std::vector<uint8_t> data(100000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  Sha256Stream h;
  h.update(std::span<const uint8_t>(data).first(12345));
  h.update(std::span<const uint8_t>(data).subspan(12345));
  EXPECT_EQ(h.finish(), sha256(data));
  Sha256Stream empty;
  EXPECT_EQ(empty.finish(), sha256({}));
}

TEST(Crypto, ConstantTimeEqual) {
  std::vector<uint8_t> a{1, 2, 3}, b{1, 2, 3}, c{1, 2, 4}, d{1, 2}, e{0, 2, 3};
  EXPECT_TRUE(constant_time_equal(a, b));
  EXPECT_FALSE(constant_time_equal(a, c));  // last byte differs
  EXPECT_FALSE(constant_time_equal(a, e));  // first byte differs
  EXPECT_FALSE(constant_time_equal(a, d));  // a prefix is not equal
  EXPECT_FALSE(constant_time_equal(d, a));
  EXPECT_TRUE(constant_time_equal({}, {}));
  Sha256Digest x = sha256(bytes("x")), y = x;
  y[31] ^= 0x80;
  EXPECT_TRUE(constant_time_equal(x, x));
  EXPECT_FALSE(constant_time_equal(x, y));
}

TEST(Crypto, RandomBytesFillLargeBuffers) {
  // Larger than wolfCrypt's single-request cap, so it must go in pieces.
  std::vector<uint8_t> a(200000), b(200000);
  ASSERT_TRUE(random_bytes(a).ok());
  ASSERT_TRUE(random_bytes(b).ok());
  EXPECT_NE(a, b);
  // The tail (past the first piece) is filled too: 64 KiB of zeros is not random.
  EXPECT_NE(std::count(a.end() - 65536, a.end(), 0), 65536);
  EXPECT_TRUE(random_bytes({}).ok());
}

TEST(Crypto, UrandomFallbackFillsBuffers) {
  // The path a kernel without getrandom (before 3.17) takes.
  std::vector<uint8_t> a(200000), b(200000);
  ASSERT_TRUE(urandom_bytes(a).ok());
  ASSERT_TRUE(urandom_bytes(b).ok());
  EXPECT_NE(a, b);
  EXPECT_NE(std::count(a.end() - 65536, a.end(), 0), 65536);
  EXPECT_TRUE(urandom_bytes({}).ok());
}

TEST(Crypto, HexRoundTripAndErrors) {
  std::vector<uint8_t> v{0x00, 0xab, 0xff, 0x10};
  EXPECT_EQ(to_hex(v), "00abff10");
  EXPECT_EQ(from_hex("00ABff10").value(), v);
  EXPECT_EQ(from_hex("00:AB:ff:10").value(), v);
  const Sha256Digest d = sha256(bytes("abc"));
  EXPECT_EQ(from_hex(to_hex(d)).value(), std::vector<uint8_t>(d.begin(), d.end()));
  EXPECT_TRUE(from_hex("").value().empty());
  for (const char* bad : {"abc", "zz", "a:b", "0g", " 00", "00 "}) {
    auto r = from_hex(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << bad;
  }
}

}  // namespace
}  // namespace rcp
