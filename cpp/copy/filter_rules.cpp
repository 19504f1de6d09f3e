#include "copy/filter_rules.h"

#include <algorithm>

#include "wire/limits.h"

namespace rcp {

namespace {

Error bad_rule(const std::string& whole, const std::string& why) {
  return make_error(Errc::invalid_argument, "filter rule '" + whole.substr(0, 200) + "': " + why);
}

}  // namespace

Result<FilterRules> FilterRules::parse(const std::vector<std::string>& rules) {
  if (rules.size() > kMaxFilterRules)
    return make_error(Errc::too_large, "more than " + std::to_string(kMaxFilterRules) + " filter rules");
  FilterRules out;
  for (const auto& whole : rules) {
    if (whole.size() > kMaxFilterRuleBytes)
      return make_error(Errc::too_large, "filter rule '" + whole.substr(0, 60) + "...' is longer than " +
                                             std::to_string(kMaxFilterRuleBytes) + " bytes");
    if (whole.size() < 3 || (whole[0] != '+' && whole[0] != '-') || whole[1] != ' ')
      return bad_rule(whole, "must be '+ PATTERN' (include) or '- PATTERN' (exclude)");
    std::string_view pattern{whole};
    pattern.remove_prefix(2);
    const bool include = whole[0] == '+';
    // "dir/***": the directory itself and everything below it, as two rules.
    constexpr std::string_view kAllBelow = "/***";
    if (pattern.size() > kAllBelow.size() && pattern.ends_with(kAllBelow)) {
      const std::string_view base = pattern.substr(0, pattern.size() - kAllBelow.size());
      auto self = compile(include, base, whole);
      if (!self) return self.error();
      auto below = compile(include, std::string(base) + "/**", whole);
      if (!below) return below.error();
      out.rules_.push_back(std::move(*self));
      out.rules_.push_back(std::move(*below));
      continue;
    }
    auto rule = compile(include, pattern, whole);
    if (!rule) return rule.error();
    out.rules_.push_back(std::move(*rule));
  }
  return out;
}

Result<FilterRules::Rule> FilterRules::compile(bool include, std::string_view pattern, const std::string& whole) {
  Rule rule;
  rule.include = include;
  if (pattern.starts_with('/')) {
    rule.anchored = true;
    pattern.remove_prefix(1);
  }
  while (pattern.ends_with('/')) {
    rule.dir_only = true;
    pattern.remove_suffix(1);
  }
  if (pattern.empty()) return bad_rule(whole, "empty pattern");
  bool has_slash = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    Token t;
    if (c == '\\') {
      if (++i == pattern.size()) return bad_rule(whole, "ends with a lone '\\'");
      t.c = pattern[i];
    } else if (c == '?') {
      t.kind = Token::any_one;
    } else if (c == '*') {
      size_t n = 1;
      while (i + 1 < pattern.size() && pattern[i + 1] == '*') ++i, ++n;
      t.kind = n == 1 ? Token::star : Token::double_star;
      // A '**' anywhere makes the pattern match whole paths, as rsync does.
      if (n > 1) has_slash = true;
    } else if (c == '[') {
      t.kind = Token::klass;
      size_t j = i + 1;
      if (j < pattern.size() && (pattern[j] == '!' || pattern[j] == '^')) {
        t.negated = true;
        ++j;
      }
      bool closed = false;
      for (bool first = true; j < pattern.size(); ++j, first = false) {
        char lo = pattern[j];
        if (lo == ']' && !first) {
          closed = true;
          break;
        }
        if (lo == '\\' && j + 1 < pattern.size()) lo = pattern[++j];
        char hi = lo;
        if (j + 2 < pattern.size() && pattern[j + 1] == '-' && pattern[j + 2] != ']') {
          hi = pattern[j + 2];
          if (hi == '\\' && j + 3 < pattern.size()) hi = pattern[++j + 2];
          j += 2;
          if (static_cast<unsigned char>(hi) < static_cast<unsigned char>(lo))
            return bad_rule(whole, "a range in [..] that runs backwards");
        }
        t.set.push_back(lo);
        t.set.push_back(hi);
      }
      if (!closed) return bad_rule(whole, "unbalanced '['");
      i = j;
    } else {
      if (c == '/') has_slash = true;
      t.c = c;
    }
    rule.tokens.push_back(std::move(t));
  }
  // Without '/' (or '**') only the last component can match: anchored there.
  rule.whole_path = has_slash || rule.anchored;
  return rule;
}

bool FilterRules::matches(const Rule& rule, std::string_view rel) {
  // One pass per token over "can the pattern so far end at position j?",
  // O(tokens × length): no backtracking, however many stars.
  const size_t n = rel.size();
  size_t first = 0;
  if (!rule.whole_path) {
    const size_t slash = rel.rfind('/');
    first = slash == std::string_view::npos ? 0 : slash + 1;
  }
  std::vector<char> cur(n + 1, 0), next(n + 1, 0);
  for (size_t j = first; j <= n; ++j) cur[j] = j == first || (!rule.anchored && rule.whole_path && rel[j - 1] == '/');
  for (const Token& t : rule.tokens) {
    bool any = false;
    std::fill(next.begin(), next.end(), 0);
    switch (t.kind) {
      case Token::star:
        for (size_t j = first; j <= n; ++j) next[j] = cur[j] || (j > first && next[j - 1] && rel[j - 1] != '/');
        break;
      case Token::double_star:
        for (size_t j = first; j <= n; ++j) next[j] = cur[j] || (j > first && next[j - 1]);
        break;
      default:
        for (size_t j = first; j < n; ++j) {
          if (!cur[j]) continue;
          const char c = rel[j];
          bool ok = false;
          if (t.kind == Token::literal) {
            ok = c == t.c;
          } else if (c != '/') {  // '?' and classes never match the separator
            ok = t.kind == Token::any_one;
            if (t.kind == Token::klass) {
              const auto u = static_cast<unsigned char>(c);
              bool in = false;
              for (size_t k = 0; k + 1 < t.set.size() && !in; k += 2)
                in = u >= static_cast<unsigned char>(t.set[k]) && u <= static_cast<unsigned char>(t.set[k + 1]);
              ok = in != t.negated;
            }
          }
          next[j + 1] = ok;
        }
    }
    for (size_t j = first; j <= n && !any; ++j) any = next[j] != 0;
    if (!any) return false;
    cur.swap(next);
  }
  return cur[n] != 0;
}

bool FilterRules::excluded(std::string_view rel, bool is_dir) const {
  for (const Rule& rule : rules_) {
    if (rule.dir_only && !is_dir) continue;
    if (matches(rule, rel)) return !rule.include;
  }
  return false;
}

}  // namespace rcp
