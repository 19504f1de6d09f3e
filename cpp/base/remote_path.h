// Remote operand paths as scp means them, resolved by rcpd itself (never by
// a shell, and never by the master, which cannot see the remote host):
//
//   host:            the login's home
//   host:rel/path    relative to the login's home (not to rcpd's cwd)
//   host:~ host:~/x  the login's home ($HOME, else its /etc/passwd entry)
//   host:~user/x     that user's home, from /etc/passwd (PasswdDb)
//   host:/abs        absolute
//
// and, on the source, a wildcard (`*`, `?`, `[...]`, `\` escaping) expands
// with glob(3)'s meaning over the filesystem: component by component with
// fnmatch(FNM_PERIOD), sorted, nothing executed. glob(3) itself is not used:
// its `~` handling calls getpwnam, and it cannot be bounded as it goes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/passwd_db.h"
#include "base/result.h"

namespace rcp {

// PATH_MAX: a longer path cannot be handed to the kernel in one piece.
constexpr size_t kMaxResolvedPath = 4096;
// The most names one wildcard operand may expand to (and the most roots one
// copy may have): more is an error, never an unbounded list.
constexpr size_t kMaxGlobMatches = 100000;

// An operand's path split where the literal part ends: `base` is an absolute
// directory taken as it is (a home may hold '*'), `rest` the operand below
// it as written, possibly a pattern.
struct OperandPath {
  std::string base;
  std::string rest;
  std::string joined() const;  // base/rest
  bool operator==(const OperandPath&) const = default;
};

// The pure part: `path` (the operand after "host:") against the login's
// `home` (absolute; "" when there is none) and the users table. Errors: no
// or a relative `home` where one is needed, an unknown ~user or one without
// an absolute home, a result longer than kMaxResolvedPath.
Result<OperandPath> resolve_operand_path(std::string_view path, std::string_view home, const PasswdDb& users);

// The login's home: `env_home` ($HOME) when it is absolute, else the home
// of `uid`'s /etc/passwd entry.
Result<std::string> login_home(const char* env_home, uint32_t uid, const PasswdDb& users);

// True when `text` holds '*', '?' or '[' (escaped or not): it is a pattern.
bool has_wildcard(std::string_view text);
// True when `text` holds a '*', '?' or '[' that no backslash escapes: one
// that fnmatch reads as a wildcard.
bool has_live_wildcard(std::string_view text);
// "a\*b" -> "a*b": what a pattern names when read literally.
std::string unescape_pattern(std::string_view text);

// Every existing path `p.rest` matches below `p.base`, sorted bytewise. A
// pattern ending in '/' matches directories only (each returned with its
// '/'). "." and ".." are never matches. No match is an error (Errc::io,
// "No such file or directory"); more than `max_matches` is Errc::too_large.
Result<std::vector<std::string>> expand_wildcard(const OperandPath& p, size_t max_matches = kMaxGlobMatches);

// What one source operand stands for: resolve_operand_path, then
// expand_wildcard when its `rest` is a pattern; otherwise the one path,
// whether or not it exists (the copy reports a missing file itself). A
// pattern that matches nothing stands for itself, unescaped, when that path
// exists: scp's remote shell leaves such a word as written, so a file named
// `photo [1].jpg` needs no escaping.
Result<std::vector<std::string>> expand_operand(std::string_view path, std::string_view home, const PasswdDb& users,
                                                size_t max_matches = kMaxGlobMatches);

}  // namespace rcp
