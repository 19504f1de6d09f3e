#include "base/passwd_db.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/unique_fd.h"

namespace rcp {

namespace {

constexpr size_t kMaxProblems = 100;  // described; the rest only counted

Error malformed(const char* table, const std::string& why) {
  return make_error(Errc::invalid_argument, std::string("malformed ") + table + " entry: " + why);
}

// Splits at every ':'; exactly `want` fields or nothing.
bool split_fields(std::string_view line, size_t want, std::vector<std::string_view>& out) {
  out.clear();
  size_t start = 0;
  for (;;) {
    const size_t colon = line.find(':', start);
    out.push_back(line.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (out.size() > want) return false;
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return out.size() == want;
}

// Decimal only: no sign, no spaces, no hex; 4294967295 is (uid_t)-1, "no id".
bool parse_id(std::string_view text, uint32_t& id) {
  if (text.empty() || text.size() > 10) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v >= UINT32_MAX) return false;
  id = static_cast<uint32_t>(v);
  return true;
}

Result<void> check_line(const char* table, std::string_view line) {
  if (line.size() > PasswdDb::kMaxLineBytes)
    return malformed(table, "line longer than " + std::to_string(PasswdDb::kMaxLineBytes) + " bytes");
  if (line.find('\0') != std::string_view::npos) return malformed(table, "NUL byte in the line");
  return {};
}

Result<std::string> read_bounded(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::string();
    return errno_error(path, errno);
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(path, errno);
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > PasswdDb::kMaxFileBytes)
      return make_error(Errc::too_large,
                        path + ": larger than " + std::to_string(PasswdDb::kMaxFileBytes >> 20) + " MiB");
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

// Calls parse_line on every line that is not blank, a comment or a NIS
// compat entry; malformed lines go to `problems`.
template <typename Entry, typename Parse>
void parse_table(const char* table, std::string_view text, Parse parse_line, std::vector<Entry>& out,
                 std::vector<std::string>& problems, size_t& skipped) {
  size_t number = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++number;
    if (line.empty() || line.front() == '#' || line.front() == '+' || line.front() == '-') continue;
    auto entry = parse_line(line);
    if (entry) {
      out.push_back(std::move(*entry));
    } else if (problems.size() < kMaxProblems) {
      problems.push_back(std::string(table) + " line " + std::to_string(number) + ": " + entry.error().message);
    } else {
      ++skipped;
    }
  }
}

}  // namespace

Result<PasswdEntry> parse_passwd_line(std::string_view line) {
  if (auto r = check_line("passwd", line); !r) return r.error();
  std::vector<std::string_view> f;
  if (!split_fields(line, 7, f)) return malformed("passwd", "expected 7 ':'-separated fields");
  if (f[0].empty()) return malformed("passwd", "empty user name");
  PasswdEntry e;
  e.name = std::string(f[0]);
  if (!parse_id(f[2], e.uid)) return malformed("passwd", "user id '" + std::string(f[2].substr(0, 32)) + "'");
  if (!parse_id(f[3], e.gid)) return malformed("passwd", "group id '" + std::string(f[3].substr(0, 32)) + "'");
  e.home = std::string(f[5]);
  return e;
}

Result<GroupEntry> parse_group_line(std::string_view line) {
  if (auto r = check_line("group", line); !r) return r.error();
  std::vector<std::string_view> f;
  if (!split_fields(line, 4, f)) return malformed("group", "expected 4 ':'-separated fields");
  if (f[0].empty()) return malformed("group", "empty group name");
  GroupEntry e;
  e.name = std::string(f[0]);
  if (!parse_id(f[2], e.gid)) return malformed("group", "group id '" + std::string(f[2].substr(0, 32)) + "'");
  return e;
}

PasswdDb PasswdDb::parse(std::string_view passwd_text, std::string_view group_text) {
  PasswdDb db;
  size_t skipped = 0;
  parse_table("passwd", passwd_text, parse_passwd_line, db.users_, db.problems_, skipped);
  parse_table("group", group_text, parse_group_line, db.groups_, db.problems_, skipped);
  if (skipped) db.problems_.push_back("and " + std::to_string(skipped) + " more malformed lines");
  return db;
}

Result<PasswdDb> PasswdDb::load(const std::string& passwd_path, const std::string& group_path) {
  auto passwd = read_bounded(passwd_path);
  if (!passwd) return passwd.error();
  auto group = read_bounded(group_path);
  if (!group) return group.error();
  return parse(*passwd, *group);
}

const PasswdEntry* PasswdDb::user(std::string_view name) const {
  for (const auto& e : users_)
    if (e.name == name) return &e;
  return nullptr;
}

const PasswdEntry* PasswdDb::user(uint32_t uid) const {
  for (const auto& e : users_)
    if (e.uid == uid) return &e;
  return nullptr;
}

const GroupEntry* PasswdDb::group(std::string_view name) const {
  for (const auto& e : groups_)
    if (e.name == name) return &e;
  return nullptr;
}

const GroupEntry* PasswdDb::group(uint32_t gid) const {
  for (const auto& e : groups_)
    if (e.gid == gid) return &e;
  return nullptr;
}

std::string PasswdDb::user_name(uint32_t uid) const {
  const PasswdEntry* e = user(uid);
  return e ? e->name : std::to_string(uid);
}

std::string PasswdDb::group_name(uint32_t gid) const {
  const GroupEntry* e = group(gid);
  return e ? e->name : std::to_string(gid);
}

}  // namespace rcp
