#include <gtest/gtest.h>

#include "path_validator.h"

namespace rcp {
namespace {

TEST(PathValidator, AcceptsOrdinaryPaths) {
  EXPECT_EQ(split_relative_path("").value().size(), 0u);
  EXPECT_EQ(split_relative_path("a").value(), std::vector<std::string>{"a"});
  EXPECT_EQ(split_relative_path("a/b c/ü.txt").value(), (std::vector<std::string>{"a", "b c", "ü.txt"}));
  EXPECT_EQ(split_relative_path("-x/..y/.z").value(), (std::vector<std::string>{"-x", "..y", ".z"}));
  EXPECT_TRUE(validate_name("...").ok());
}

TEST(PathValidator, RefusesEscapes) {
  for (const char* bad : {"../x", "a/../../x", "/etc/x", ".", "..", "a/.", "a/..", "a//b", "a/", "/", "./a"}) {
    auto r = split_relative_path(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, Errc::protocol);
    }
  }
  EXPECT_FALSE(split_relative_path(std::string("a\0b", 3)).ok());
  EXPECT_FALSE(validate_name("").ok());
  EXPECT_FALSE(validate_name("a/b").ok());
  EXPECT_FALSE(validate_name(std::string("a\0", 2)).ok());
  EXPECT_FALSE(validate_name(std::string(256, 'x')).ok());
  EXPECT_TRUE(validate_name(std::string(255, 'x')).ok());
}

TEST(PathValidator, BoundsLengthAndDepth) {
  std::string deep;
  for (int i = 0; i < 300; ++i) deep += (i ? "/d" : "d");
  EXPECT_FALSE(split_relative_path(deep).ok());
  EXPECT_FALSE(split_relative_path(std::string(5000, 'a')).ok());
}

}  // namespace
}  // namespace rcp
