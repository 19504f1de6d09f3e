#include "base/remote_path.h"

#include <dirent.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>

namespace rcp {

namespace {

std::string join(const std::string& dir, std::string_view name) {
  std::string out = dir;
  if (out.empty() || out.back() != '/') out += '/';
  out += name;
  return out;
}

Error too_long(std::string_view what) {
  return make_error(Errc::too_large, std::string(what.substr(0, 200)) + "...: path longer than " +
                                         std::to_string(kMaxResolvedPath) + " bytes");
}

// The components of `rest` ("a//b/" -> a, b).
std::vector<std::string_view> components(std::string_view rest) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < rest.size()) {
    size_t slash = rest.find('/', start);
    if (slash == std::string_view::npos) slash = rest.size();
    if (slash > start) out.push_back(rest.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);  // follows symlinks, as glob(3) does
}

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

// The entries of `dir` that `pattern` matches, appended to `out` (directories
// only when `dirs_only`). An unreadable directory matches nothing, as in glob(3).
Result<void> match_in(const std::string& dir, const std::string& pattern, bool dirs_only, size_t max_matches,
                      std::vector<std::string>& out) {
  std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
  if (!d) return {};
  while (const dirent* e = readdir(d.get())) {
    const std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    if (fnmatch(pattern.c_str(), e->d_name, FNM_PERIOD) != 0) continue;
    std::string path = join(dir, name);
    if (path.size() > kMaxResolvedPath) return too_long(path);
    if (dirs_only) {
      const bool maybe = e->d_type == DT_UNKNOWN || e->d_type == DT_LNK;  // stat tells
      if (e->d_type != DT_DIR && !(maybe && is_directory(path))) continue;
    }
    if (out.size() >= max_matches)
      return make_error(Errc::too_large, "the pattern matches more than " + std::to_string(max_matches) + " entries");
    out.push_back(std::move(path));
  }
  return {};
}

}  // namespace

std::string OperandPath::joined() const { return rest.empty() ? base : join(base, rest); }

Result<OperandPath> resolve_operand_path(std::string_view path, std::string_view home, const PasswdDb& users) {
  // Checked only when used: an absolute operand needs no home.
  auto checked_home = [&]() -> Result<std::string> {
    if (home.empty())
      return make_error(Errc::invalid_argument,
                        "no home directory to resolve it against (HOME is not set and this user has no home in "
                        "/etc/passwd)");
    if (home.front() != '/')
      return make_error(Errc::invalid_argument,
                        "the login's home '" + std::string(home.substr(0, 200)) + "' is not an absolute path");
    return std::string(home);
  };
  OperandPath out;
  if (!path.empty() && path.front() == '/') {
    out.base = "/";
    const size_t first = path.find_first_not_of('/');
    out.rest = first == std::string_view::npos ? std::string() : std::string(path.substr(first));
  } else if (!path.empty() && path.front() == '~') {
    const size_t slash = path.find('/');
    const std::string_view user = path.substr(1, slash == std::string_view::npos ? path.npos : slash - 1);
    out.rest = slash == std::string_view::npos ? std::string() : std::string(path.substr(slash + 1));
    if (user.empty()) {
      auto h = checked_home();
      if (!h) return h.error();
      out.base = std::move(*h);
    } else {
      const PasswdEntry* e = users.user(user);
      const std::string who = "'" + std::string(user.substr(0, 64)) + "'";
      if (!e) return make_error(Errc::invalid_argument, "no such user " + who + " in /etc/passwd");
      if (e->home.empty() || e->home.front() != '/')
        return make_error(Errc::invalid_argument, "user " + who + " has no absolute home directory");
      out.base = e->home;
    }
  } else {
    auto h = checked_home();
    if (!h) return h.error();
    out.base = std::move(*h);
    out.rest = std::string(path);
  }
  if (out.base.size() + 1 + out.rest.size() > kMaxResolvedPath) return too_long(out.joined());
  return out;
}

Result<std::string> login_home(const char* env_home, uint32_t uid, const PasswdDb& users) {
  if (env_home != nullptr && env_home[0] == '/') return std::string(env_home);
  const PasswdEntry* e = users.user(uid);
  if (e && !e->home.empty() && e->home.front() == '/') return e->home;
  return make_error(Errc::invalid_argument, "no home directory: HOME is not an absolute path and uid " +
                                                std::to_string(uid) + " has no home in /etc/passwd");
}

bool has_wildcard(std::string_view text) { return text.find_first_of("*?[") != std::string_view::npos; }

bool has_live_wildcard(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '*' || text[i] == '?' || text[i] == '[') {
      return true;
    }
  }
  return false;
}

std::string unescape_pattern(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) ++i;
    out += text[i];
  }
  return out;
}

Result<std::vector<std::string>> expand_wildcard(const OperandPath& p, size_t max_matches) {
  const auto parts = components(p.rest);
  const bool dirs_only = !p.rest.empty() && p.rest.back() == '/';
  std::vector<std::string> current{p.base};
  bool last_literal = true;
  for (size_t i = 0; i < parts.size() && !current.empty(); ++i) {
    const bool last = i + 1 == parts.size();
    std::vector<std::string> next;
    last_literal = !has_live_wildcard(parts[i]);
    if (last_literal) {
      const std::string name = unescape_pattern(parts[i]);
      for (const auto& dir : current) {
        next.push_back(join(dir, name));
        if (next.back().size() > kMaxResolvedPath) return too_long(next.back());
      }
    } else {
      // Only directories can lead on to the next component.
      const std::string pattern(parts[i]);
      for (const auto& dir : current)
        if (auto r = match_in(dir, pattern, !last || dirs_only, max_matches, next); !r) return r.error();
    }
    current = std::move(next);
  }
  // A literal last component was only joined on: keep what exists.
  std::vector<std::string> found;
  for (auto& path : current) {
    struct stat st {};
    if (last_literal && ::lstat(path.c_str(), &st) != 0) continue;
    if (dirs_only) {
      if (!is_directory(path)) continue;
      path += '/';
    }
    found.push_back(std::move(path));
  }
  if (found.empty())
    return make_error(Errc::io, p.joined() + ": No such file or directory (nothing matches the pattern)");
  std::sort(found.begin(), found.end());
  return found;
}

Result<std::vector<std::string>> expand_operand(std::string_view path, std::string_view home, const PasswdDb& users,
                                                size_t max_matches) {
  auto resolved = resolve_operand_path(path, home, users);
  if (!resolved) return resolved.error();
  if (!has_wildcard(resolved->rest)) return std::vector<std::string>{resolved->joined()};
  auto matches = expand_wildcard(*resolved, max_matches);
  if (matches || matches.error().code != Errc::io) return matches;
  // Nothing matches: the pattern read literally, if that exists.
  std::string literal = OperandPath{resolved->base, unescape_pattern(resolved->rest)}.joined();
  struct stat st {};
  const bool dirs_only = literal.back() == '/';
  if (::lstat(literal.c_str(), &st) != 0 || (dirs_only && !is_directory(literal))) return matches;
  return std::vector<std::string>{std::move(literal)};
}

}  // namespace rcp
