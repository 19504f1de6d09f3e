// PasswdDb: users and groups read straight from /etc/passwd and /etc/group.
// rcpd is linked statically, and static glibc cannot load NSS modules, so
// getpwnam/getpwuid/getgrnam are never called in code rcpd links: this
// reader stands in for them (local files only; no LDAP, no NIS).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace rcp {

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;  // may be empty: the entry names no home
  bool operator==(const PasswdEntry&) const = default;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  bool operator==(const GroupEntry&) const = default;
};

// One line each, without its newline. passwd: name:password:uid:gid:gecos:home:shell
// (7 fields); group: name:password:gid:members (4 fields). Ids are decimal,
// below 2^32-1 (-1 means "no id" to the kernel). A malformed line is an
// error saying what is wrong with it.
Result<PasswdEntry> parse_passwd_line(std::string_view line);
Result<GroupEntry> parse_group_line(std::string_view line);

class PasswdDb {
 public:
  static constexpr size_t kMaxLineBytes = 4096;      // a longer line is malformed
  static constexpr size_t kMaxFileBytes = 64 << 20;  // a larger file is an error, not an allocation

  PasswdDb() = default;  // knows nobody: every lookup falls back to numbers

  // Both tables from text (the files' contents). Blank lines, comments ('#')
  // and NIS compat lines ('+', '-') are ignored; a malformed line is skipped
  // and described in problems(), so one bad line does not hide every user.
  static PasswdDb parse(std::string_view passwd_text, std::string_view group_text);
  // The same from files; a missing file is an empty table (a chroot may have
  // none), an unreadable or oversized one an error.
  static Result<PasswdDb> load(const std::string& passwd_path = "/etc/passwd",
                               const std::string& group_path = "/etc/group");

  // The first entry of that name or id, as the C library's files backend
  // answers; nullptr when there is none.
  const PasswdEntry* user(std::string_view name) const;
  const PasswdEntry* user(uint32_t uid) const;
  const GroupEntry* group(std::string_view name) const;
  const GroupEntry* group(uint32_t gid) const;

  // Names with the numeric fallback: the id in decimal when unknown.
  std::string user_name(uint32_t uid) const;
  std::string group_name(uint32_t gid) const;

  const std::vector<PasswdEntry>& users() const { return users_; }
  const std::vector<GroupEntry>& groups() const { return groups_; }
  // "passwd line 3: ..." for each line skipped as malformed.
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<PasswdEntry> users_;
  std::vector<GroupEntry> groups_;
  std::vector<std::string> problems_;
};

}  // namespace rcp
