#include "copy/path_validator.h"

#include <fnmatch.h>

#include "base/remote_path.h"

namespace rcp {

namespace {
Error bad(std::string_view what, std::string_view why) {
  return make_error(Errc::protocol,
                    "refused peer path '" + std::string(what.substr(0, 200)) + "': " + std::string(why));
}
}  // namespace

Result<void> validate_name(std::string_view name) {
  if (name.empty()) return bad(name, "empty name");
  if (name == "." || name == "..") return bad(name, "'.' and '..' are not names");
  if (name.size() > kMaxNameBytes) return bad(name, "name longer than 255 bytes");
  if (name.find('/') != std::string_view::npos) return bad(name, "'/' inside a name");
  if (name.find('\0') != std::string_view::npos) return bad(name, "NUL inside a name");
  return {};
}

Result<RootRule> parse_root_rule(std::string_view kind, std::string_view text) {
  RootRule rule;
  rule.text = std::string(text);
  if (kind == "name") {
    rule.kind = RootRule::Kind::exact;
  } else if (kind == "glob") {
    rule.kind = RootRule::Kind::pattern;
  } else if (kind == "any") {
    return RootRule{};
  } else {
    return make_error(Errc::protocol, "unknown root rule '" + std::string(kind.substr(0, 16)) + "'");
  }
  if (auto r = validate_name(rule.text); !r) return r.error();
  return rule;
}

Result<void> check_root_name(const RootRule& rule, std::string_view name) {
  if (auto r = validate_name(name); !r) return r;
  const std::string n(name);
  switch (rule.kind) {
    case RootRule::Kind::exact:
      if (n == rule.text) return {};
      return bad(name, "the source was asked for '" + rule.text.substr(0, 200) + "'");
    case RootRule::Kind::pattern:
      if (fnmatch(rule.text.c_str(), n.c_str(), FNM_PERIOD) == 0) return {};
      // A pattern matching nothing stands for itself (base/remote_path.h: expand_operand).
      if (n == unescape_pattern(rule.text)) return {};
      return bad(name, "does not match the requested pattern '" + rule.text.substr(0, 200) + "'");
    case RootRule::Kind::any:
      if (n.front() != '.') return {};
      return bad(name, "a hidden name for an operand that named none");
  }
  return bad(name, "no rule");
}

Result<std::vector<std::string>> split_relative_path(std::string_view path) {
  std::vector<std::string> parts;
  if (path.empty()) return parts;
  if (path.size() > kMaxPathBytes) return bad(path, "path longer than " + std::to_string(kMaxPathBytes) + " bytes");
  if (path.front() == '/') return bad(path, "absolute path");
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(start, slash - start);
    if (auto r = validate_name(part); !r) return bad(path, r.error().message);
    parts.emplace_back(part);
    if (parts.size() > kMaxPathDepth) return bad(path, "path deeper than " + std::to_string(kMaxPathDepth) + " levels");
    start = slash + 1;
  }
  return parts;
}

}  // namespace rcp
