// Extended attributes (-X, --acls, --keep-capabilities): which names a copy
// carries, and reading and writing them without following a final symlink.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "wire/messages.h"

namespace rcp {

struct XattrPolicy {
  bool user = false;        // user.* (-X)
  bool trusted = false;     // trusted.* (-X, and root at this end)
  bool acls = false;        // system.posix_acl_access / _default (--acls)
  bool capability = false;  // security.capability (--keep-capabilities with -X)
  bool any() const { return user || trusted || acls || capability; }
  // Whether `name` is one this copy carries. Anything else (security.selinux,
  // system.* but ACLs...) is neither read nor written.
  bool allows(std::string_view name) const;
};

// The attributes of `name` in directory `dir` (or of the fd `dir` itself when
// `name` is empty) that `policy` allows, never following a final symlink
// unless `follow`. None where the filesystem has none.
Result<Xattrs> read_xattrs(int dir, const std::string& name, const XattrPolicy& policy, bool follow = false);

// Sets each attribute `policy` allows on `name` in `dir` (or the fd `dir`
// when `name` is empty), never following a final symlink. On failure the
// errno is in `err` (ENOTSUP/EOPNOTSUPP: this filesystem has none).
Result<void> write_xattrs(int dir, const std::string& name, const Xattrs& xattrs, const XattrPolicy& policy, int& err);

}  // namespace rcp
