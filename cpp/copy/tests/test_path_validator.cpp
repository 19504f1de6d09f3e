#include <gtest/gtest.h>

#include "copy/path_validator.h"

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
  for (size_t i = 0; i < kMaxPathDepth + 1; ++i) deep += (i ? "/d" : "d");
  EXPECT_FALSE(split_relative_path(deep).ok());
  // Well past PATH_MAX is fine (25 levels of 200-byte names); past the wire limit is not.
  std::string long_path;
  for (int i = 0; i < 25; ++i) long_path += (i ? "/" : "") + std::string(200, 'a' + i % 26);
  EXPECT_TRUE(split_relative_path(long_path).ok());
  std::string too_long;
  while (too_long.size() <= kMaxPathBytes) too_long += std::string(250, 'x') + "/";
  too_long += "x";
  EXPECT_FALSE(split_relative_path(too_long).ok());
}

TEST(PathValidator, RootRules) {
  auto exact = parse_root_rule("name", "report.pdf");
  ASSERT_TRUE(exact.ok());
  EXPECT_TRUE(check_root_name(*exact, "report.pdf").ok());
  EXPECT_FALSE(check_root_name(*exact, ".ssh").ok());
  EXPECT_FALSE(check_root_name(*exact, "report.pdf2").ok());

  auto glob = parse_root_rule("glob", "*.pdf");
  ASSERT_TRUE(glob.ok());
  EXPECT_TRUE(check_root_name(*glob, "a.pdf").ok());
  EXPECT_FALSE(check_root_name(*glob, ".pdf").ok());  // a leading '.' must be matched literally
  EXPECT_FALSE(check_root_name(*glob, "a.sh").ok());
  EXPECT_FALSE(check_root_name(*glob, "x/a.pdf").ok());

  // A pattern also allows itself read literally: a source whose pattern matched nothing sent that name.
  auto brackets = parse_root_rule("glob", "photo [1].jpg");
  ASSERT_TRUE(brackets.ok());
  EXPECT_TRUE(check_root_name(*brackets, "photo [1].jpg").ok());
  EXPECT_TRUE(check_root_name(*brackets, "photo 1.jpg").ok());
  EXPECT_FALSE(check_root_name(*brackets, "photo 2.jpg").ok());
  auto escaped = parse_root_rule("glob", "a\\*b[");
  ASSERT_TRUE(escaped.ok());
  EXPECT_TRUE(check_root_name(*escaped, "a*b[").ok());
  EXPECT_FALSE(check_root_name(*escaped, "axb[").ok());

  auto any = parse_root_rule("any", "");
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(check_root_name(*any, "data").ok());
  EXPECT_FALSE(check_root_name(*any, ".ssh").ok());
  EXPECT_FALSE(check_root_name(*any, "..").ok());
  EXPECT_FALSE(check_root_name(*any, "").ok());

  EXPECT_FALSE(parse_root_rule("regex", ".*").ok());
  EXPECT_FALSE(parse_root_rule("name", "a/b").ok());
  EXPECT_FALSE(parse_root_rule("name", "").ok());
}

}  // namespace
}  // namespace rcp
