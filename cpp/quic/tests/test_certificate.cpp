#include <gtest/gtest.h>

#include "quic/certificate.h"

namespace rcp {
namespace {

TEST(Certificate, GeneratesDistinctIdentities) {
  auto a = Certificate::generate();
  auto b = Certificate::generate();
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok());
  EXPECT_GT(a->der.size(), 100u);
  EXPECT_GT(a->key_der.size(), 32u);
  EXPECT_EQ(a->der[0], 0x30);  // DER SEQUENCE
  EXPECT_NE(a->fingerprint, b->fingerprint);
  EXPECT_EQ(a->fingerprint, sha256(a->der));
  EXPECT_EQ(a->fingerprint_hex().size(), 64u);
}

TEST(Certificate, ParsesFingerprints) {
  auto a = Certificate::generate().value();
  auto fp = parse_fingerprint(a.fingerprint_hex());
  ASSERT_TRUE(fp.ok());
  EXPECT_EQ(*fp, a.fingerprint);
  std::string upper_colons;
  for (size_t i = 0; i < 64; i += 2) {
    if (i) upper_colons += ':';
    upper_colons += static_cast<char>(std::toupper(a.fingerprint_hex()[i]));
    upper_colons += static_cast<char>(std::toupper(a.fingerprint_hex()[i + 1]));
  }
  EXPECT_EQ(parse_fingerprint(upper_colons).value(), a.fingerprint);
  EXPECT_FALSE(parse_fingerprint("abcd").ok());
  EXPECT_FALSE(parse_fingerprint(std::string(64, 'g')).ok());
  EXPECT_FALSE(parse_fingerprint(a.fingerprint_hex() + "00").ok());
}

}  // namespace
}  // namespace rcp
