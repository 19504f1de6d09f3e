// FilterRules: which entries of a copy to leave out, with rsync's include /
// exclude semantics. Rules are tried in order and the first that matches an
// entry decides; an entry no rule matches is included. Patterns:
//   *  any run of characters but '/'     ?  one character but '/'
//   ** any run of characters, '/' too    [..] a class ([!..] / [^..] negates, a-z ranges)
//   \c the character c itself
// A leading '/' anchors the pattern to the copied directory; otherwise it
// matches the end of the entry's path at a '/' boundary (a pattern without
// '/' is matched against the last component). A trailing '/' matches only
// directories; "dir/***" matches dir and everything below it.
// Paths are relative to the copied directory ("sub/file"), never with a
// leading or trailing '/'.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace rcp {

class FilterRules {
 public:
  // Each rule is "+ PATTERN" (include) or "- PATTERN" (exclude). A rule
  // without one of those prefixes, an empty pattern, an unbalanced '[' or a
  // trailing '\' is an invalid_argument error naming the rule; more than
  // kMaxFilterRules rules or a rule longer than kMaxFilterRuleBytes is too_large.
  static Result<FilterRules> parse(const std::vector<std::string>& rules);

  bool empty() const { return rules_.empty(); }
  // True when the first rule matching `rel` is an exclude rule.
  bool excluded(std::string_view rel, bool is_dir) const;

 private:
  struct Token {
    enum Kind : uint8_t { literal, any_one, star, double_star, klass } kind = literal;
    char c = 0;            // literal
    bool negated = false;  // klass
    std::string set;       // klass: pairs of (low, high) bytes
  };
  struct Rule {
    bool include = false;
    bool dir_only = false;
    bool anchored = false;
    bool whole_path = false;  // holds a '/' or '**' (or is anchored): matched against the path, not the name
    std::vector<Token> tokens;
  };
  static Result<Rule> compile(bool include, std::string_view pattern, const std::string& whole);
  static bool matches(const Rule& rule, std::string_view rel);

  std::vector<Rule> rules_;
};

}  // namespace rcp
