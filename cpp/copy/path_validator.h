// Validation of peer-supplied names and relative paths. The destination only
// ever joins validated components onto directory fds, so nothing a peer sends
// can name a place outside the destination.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "wire/limits.h"

namespace rcp {

// One path component: not empty, not "." or "..", no '/', no NUL, <= 255 bytes.
Result<void> validate_name(std::string_view name);

// What the user's operand lets the source call a root (scp's CVE-2019-6111
// class): the operand's last component exactly, a glob pattern it must match
// (fnmatch with FNM_PERIOD), or, for an operand naming no component
// (`host:`, `host:.`, `host:~`), any single name not starting with '.'.
// A pattern also allows the name it spells read literally ("photo [1].jpg"
// for itself), which the source sends when the pattern matches nothing.
// `many`: the operand holds a wildcard, so it may stand for several roots;
// otherwise it stands for one, and a second is the source's invention.
struct RootRule {
  enum class Kind { exact, pattern, any };
  Kind kind = Kind::any;
  std::string text;  // the name or the pattern; empty for `any`
  bool many = false;
};
Result<RootRule> parse_root_rule(std::string_view kind, std::string_view text);
Result<void> check_root_name(const RootRule& rule, std::string_view name);

// "a/b/c" -> {"a","b","c"}; "" -> {} (the root itself). Refuses absolute
// paths, empty components ("a//b", trailing '/'), ".", "..", NUL, and
// paths over kMaxPathBytes or kMaxPathDepth components.
Result<std::vector<std::string>> split_relative_path(std::string_view path);

}  // namespace rcp
