#include "ssh/ssh_config.h"

#include <glob.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>

namespace rcp {

namespace {

constexpr int kMaxIncludeDepth = 16;  // as OpenSSH: Include loops end here

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// The user's home as libssh finds it: the password database, then $HOME.
std::string home_dir() {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr && found->pw_dir != nullptr)
    return found->pw_dir;
  const char* home = std::getenv("HOME");
  return home != nullptr ? home : "";
}

std::string local_user() {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) return found->pw_name;
  return "";
}

// ssh's patterns: '*' any run, '?' one character.
bool glob_match(std::string_view s, std::string_view p) {
  size_t si = 0, pi = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      ++si, ++pi;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++, mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1, si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

// A pattern list applies when some pattern matches and no negated one ("!pat") does.
bool match_list(const std::string& s, const std::vector<std::string>& patterns) {
  bool positive = false;
  for (const auto& pat : patterns) {
    const bool negated = !pat.empty() && pat[0] == '!';
    std::string_view pattern = pat;
    if (negated) pattern.remove_prefix(1);
    if (glob_match(s, pattern)) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == ',') {
      if (i > start) out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return out;
}

// "Keyword value...", "Keyword=value", arguments split on blanks, "double quotes" kept together.
std::vector<std::string> tokenize(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (i < line.size() && blank(line[i])) ++i;
  size_t k = i;
  while (k < line.size() && !blank(line[k]) && line[k] != '=') ++k;
  if (k == i) return out;
  out.push_back(line.substr(i, k - i));
  i = k;
  while (i < line.size() && blank(line[i])) ++i;
  if (i < line.size() && line[i] == '=') ++i;
  for (;;) {
    while (i < line.size() && blank(line[i])) ++i;
    if (i >= line.size()) break;
    std::string arg;
    if (line[i] == '"') {
      const size_t close = line.find('"', i + 1);
      const size_t end = close == std::string::npos ? line.size() : close;
      arg = line.substr(i + 1, end - i - 1);
      i = close == std::string::npos ? line.size() : close + 1;
    } else {
      while (i < line.size() && !blank(line[i])) arg.push_back(line[i++]);
    }
    out.push_back(std::move(arg));
  }
  return out;
}

// The whole value after the keyword and its separator: commands
// (ProxyCommand) are a shell line, not one argument.
std::string rest_of_line(const std::string& line) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  size_t i = 0;
  while (i < line.size() && blank(line[i])) ++i;
  while (i < line.size() && !blank(line[i]) && line[i] != '=') ++i;
  while (i < line.size() && blank(line[i])) ++i;
  if (i < line.size() && line[i] == '=') ++i;
  while (i < line.size() && blank(line[i])) ++i;
  size_t end = line.size();
  while (end > i && blank(line[end - 1])) --end;
  return line.substr(i, end - i);
}

bool takes_rest_of_line(const std::string& keyword_lc) {
  return keyword_lc == "proxycommand" || keyword_lc == "localcommand" || keyword_lc == "remotecommand" ||
         keyword_lc == "knownhostscommand";
}

struct Lookup {
  const SshConfigQuery& query;
  std::string host_lc, hostname_lc;
  std::vector<std::string> keywords_lc;  // the first of any of these wins
  std::string home;
  std::optional<std::string> value;
  std::string found;  // which keyword gave `value`
};

bool match_block_applies(const std::vector<std::string>& tokens, const Lookup& l) {
  for (size_t i = 1; i < tokens.size(); ++i) {
    const std::string criterion = lower(tokens[i]);
    if (criterion == "all") continue;
    if (i + 1 >= tokens.size()) return false;  // a criterion without its argument
    const std::vector<std::string> patterns = split_commas(tokens[++i]);
    std::vector<std::string> lowered;  // host names compare case-insensitively
    lowered.reserve(patterns.size());
    for (const auto& p : patterns) lowered.push_back(lower(p));
    bool ok;
    if (criterion == "host")
      ok = match_list(l.hostname_lc, lowered);
    else if (criterion == "originalhost")
      ok = match_list(l.host_lc, lowered);
    else if (criterion == "user")
      ok = match_list(l.query.user, patterns);
    else if (criterion == "localuser")
      ok = match_list(local_user(), patterns);
    else
      return false;  // exec, canonical, ...: not evaluated, so the block is not applied
    if (!ok) return false;
  }
  return true;
}

Result<void> read_file(const std::string& path, Lookup& l, bool active, int depth);

Result<void> include(const std::string& pattern, Lookup& l, bool active, int depth) {
  std::string p = pattern;
  if (p.rfind("~/", 0) == 0)
    p = l.home + p.substr(1);
  else if (p.empty() || p[0] != '/')
    p = l.home + "/.ssh/" + p;  // relative: to ~/.ssh, as OpenSSH does for the user's config
  glob_t g{};
  const int rc = ::glob(p.c_str(), 0, nullptr, &g);
  std::unique_ptr<glob_t, void (*)(glob_t*)> guard(&g, ::globfree);
  if (rc == GLOB_NOMATCH) return {};
  if (rc != 0) return make_error(Errc::invalid_argument, "ssh config: cannot expand Include " + pattern);
  for (size_t i = 0; i < g.gl_pathc && !l.value; ++i)
    if (auto r = read_file(g.gl_pathv[i], l, active, depth + 1); !r) return r;
  return {};
}

Result<void> read_file(const std::string& path, Lookup& l, bool active, int depth) {
  if (depth > kMaxIncludeDepth)
    return make_error(Errc::invalid_argument, "ssh config: Include nested too deeply at " + path);
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return {};  // like ssh: a missing config file is an empty one
    return make_error(Errc::invalid_argument, "ssh config " + path + ": " + std::strerror(errno));
  }
  std::string line;
  while (!l.value && std::getline(in, line)) {
    const auto tokens = tokenize(line);
    if (tokens.empty() || tokens[0][0] == '#') continue;
    const std::string keyword = lower(tokens[0]);
    if (keyword == "host") {
      std::vector<std::string> patterns;
      for (size_t i = 1; i < tokens.size(); ++i) patterns.push_back(lower(tokens[i]));
      active = match_list(l.host_lc, patterns);
    } else if (keyword == "match") {
      active = match_block_applies(tokens, l);
    } else if (!active) {
      continue;
    } else if (keyword == "include") {
      for (size_t i = 1; i < tokens.size() && !l.value; ++i)
        if (auto r = include(tokens[i], l, active, depth); !r) return r;
    } else if (tokens.size() > 1 &&
               std::find(l.keywords_lc.begin(), l.keywords_lc.end(), keyword) != l.keywords_lc.end()) {
      l.value = takes_rest_of_line(keyword) ? rest_of_line(line) : tokens[1];
      l.found = keyword;
    }
  }
  return {};
}

}  // namespace

Result<HostKeyPolicy> parse_host_key_policy(std::string_view value) {
  const std::string v = lower(value);
  if (v == "yes" || v == "true") return HostKeyPolicy::yes;
  if (v == "accept-new") return HostKeyPolicy::accept_new;
  if (v == "no" || v == "false" || v == "off") return HostKeyPolicy::no;
  if (v == "ask") return HostKeyPolicy::ask;
  return make_error(Errc::invalid_argument,
                    "StrictHostKeyChecking must be yes, accept-new, no or ask, not '" + std::string(value) + "'");
}

const char* host_key_policy_name(HostKeyPolicy policy) {
  switch (policy) {
    case HostKeyPolicy::yes: return "yes";
    case HostKeyPolicy::accept_new: return "accept-new";
    case HostKeyPolicy::no: return "no";
    case HostKeyPolicy::ask: return "ask";
  }
  return "?";
}

std::vector<std::string> ssh_config_files(const std::string& config_file) {
  if (!config_file.empty()) return {config_file};
  return {home_dir() + "/.ssh/config", "/etc/ssh/ssh_config"};
}

Result<std::optional<SshConfigEntry>> ssh_config_first(const std::vector<std::string>& files,
                                                       const SshConfigQuery& query,
                                                       std::initializer_list<std::string_view> keywords) {
  Lookup l{query, lower(query.host), lower(query.hostname.empty() ? query.host : query.hostname),
           {},    home_dir(),        std::nullopt,
           {}};
  for (const auto k : keywords) l.keywords_lc.push_back(lower(k));
  for (const auto& f : files) {
    if (l.value) break;
    if (auto r = read_file(f, l, true, 0); !r) return r.error();
  }
  if (!l.value) return std::optional<SshConfigEntry>();
  return std::optional<SshConfigEntry>(SshConfigEntry{std::move(l.found), std::move(*l.value)});
}

Result<std::optional<std::string>> ssh_config_value(const std::vector<std::string>& files, const SshConfigQuery& query,
                                                    std::string_view keyword) {
  auto entry = ssh_config_first(files, query, {keyword});
  if (!entry) return entry.error();
  if (!*entry) return std::optional<std::string>();
  return std::optional<std::string>(std::move((*entry)->value));
}

}  // namespace rcp
