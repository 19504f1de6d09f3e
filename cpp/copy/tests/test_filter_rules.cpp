#include <gtest/gtest.h>

#include "copy/filter_rules.h"
#include "wire/limits.h"

namespace rcp {
namespace {

// Each row: rules, a path relative to the copied directory, whether it is a
// directory, and whether rsync leaves it out. Checked against rsync 3.2
// (`rsync -n -r RULES src/ dst/`, tests/test_filters.py does so for trees).
struct Case {
  std::vector<std::string> rules;
  const char* rel;
  bool dir;
  bool excluded;
};

const Case kCases[] = {
    {{"- *.o"}, "a.o", false, true},
    {{"- *.o"}, "sub/deep/a.o", false, true},  // no '/': the last component, at any depth
    {{"- *.o"}, "a.c", false, false},
    {{"- *.o"}, "x.o/y", false, false},  // only the last component
    {{"- a?c"}, "abc", false, true},
    {{"- a?c"}, "a/c", false, false},  // '?' never matches '/'
    {{"- [ab]*"}, "bcd", false, true},
    {{"- [!ab]*"}, "bcd", false, false},
    {{"- [^ab]*"}, "cd", false, true},
    {{"- [a-c]x"}, "bx", false, true},
    {{"- [a-c]x"}, "dx", false, false},
    {{"- []]x"}, "]x", false, true},  // ']' first in a class is itself
    {{"- a\\*b"}, "a*b", false, true},
    {{"- a\\*b"}, "axb", false, false},
    {{"- /top"}, "top", false, true},  // anchored to the copied directory
    {{"- /top"}, "sub/top", false, false},
    {{"- sub/top"}, "sub/top", false, true},
    {{"- sub/top"}, "x/sub/top", false, true},  // unanchored: the end of the path at a '/'
    {{"- sub/top"}, "xsub/top", false, false},
    {{"- a/*/c"}, "a/b/c", false, true},
    {{"- a/*/c"}, "a/b/d/c", false, false},  // '*' stays within one component
    {{"- a/**/c"}, "a/b/d/c", false, true},  // '**' crosses them
    {{"- /a/**"}, "a/b/d", false, true},
    {{"- /a/**"}, "a", true, false},
    {{"- **.o"}, "x/y.o", false, true},
    {{"- build/"}, "build", true, true},  // trailing '/': directories only
    {{"- build/"}, "build", false, false},
    {{"- build/"}, "x/build", true, true},
    {{"- a/***"}, "a", true, true},  // the directory and all below
    {{"- a/***"}, "a/b/c", false, true},
    {{"- a/***"}, "x/a/b", false, true},
    {{"- a/***"}, "ab", false, false},
    {{"+ keep.o", "- *.o"}, "keep.o", false, false},  // the first match wins
    {{"- *.o", "+ keep.o"}, "keep.o", false, true},
    {{"+ */", "+ *.o", "- *"}, "d", true, false},
    {{"+ */", "+ *.o", "- *"}, "d/x.c", false, true},
    {{"+ */", "+ *.o", "- *"}, "d/x.o", false, false},
    {{"- *"}, "anything/at/all", false, true},
    {{"- "
      "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b"},
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     false,
     false},  // no backtracking blow-up
};

TEST(FilterRules, MatchesAsRsyncDoes) {
  for (const auto& c : kCases) {
    auto rules = FilterRules::parse(c.rules);
    ASSERT_TRUE(rules) << c.rules.front() << ": " << rules.error().message;
    EXPECT_EQ(rules->excluded(c.rel, c.dir), c.excluded) << c.rules.front() << " on " << c.rel << (c.dir ? "/" : "");
  }
}

TEST(FilterRules, NoRulesExcludeNothing) {
  auto rules = FilterRules::parse({});
  ASSERT_TRUE(rules);
  EXPECT_TRUE(rules->empty());
  EXPECT_FALSE(rules->excluded("a", false));
}

TEST(FilterRules, BadRulesAreRefusedWithTheirText) {
  for (const char* bad : {"- [ab", "x *.o", "-*.o", "+ ", "- /", "- a\\", "- [z-a]", "*.o"}) {
    auto rules = FilterRules::parse({bad});
    ASSERT_FALSE(rules) << bad;
    EXPECT_EQ(rules.error().code, Errc::invalid_argument) << bad;
  }
  auto r = FilterRules::parse({"- [ab"});
  EXPECT_NE(r.error().message.find("'- [ab'"), std::string::npos) << r.error().message;
}

TEST(FilterRules, CountAndLengthAreBounded) {
  std::vector<std::string> many(kMaxFilterRules + 1, "- x");
  auto r = FilterRules::parse(many);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::too_large);
  many.pop_back();
  EXPECT_TRUE(FilterRules::parse(many));
  auto long_rule = FilterRules::parse({"- " + std::string(kMaxFilterRuleBytes, 'a')});
  ASSERT_FALSE(long_rule);
  EXPECT_EQ(long_rule.error().code, Errc::too_large);
}

}  // namespace
}  // namespace rcp
