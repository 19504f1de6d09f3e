#include "copy/xattrs.h"

#include <fcntl.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace rcp {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// A path the l*xattr calls can take for `name` in `dir` without a second
// lookup of the directory: through its fd in /proc (a name is one component).
std::string path_of(int dir, const std::string& name) {
  if (dir == AT_FDCWD) return name;
  return "/proc/self/fd/" + std::to_string(dir) + "/" + name;
}

bool unsupported(int err) { return err == ENOTSUP || err == EOPNOTSUPP; }

}  // namespace

bool XattrPolicy::allows(std::string_view name) const {
  if (starts_with(name, "user.")) return user;
  if (starts_with(name, "trusted.")) return trusted;
  if (name == "system.posix_acl_access" || name == "system.posix_acl_default") return acls;
  if (name == "security.capability") return capability;
  return false;
}

Result<Xattrs> read_xattrs(int dir, const std::string& name, const XattrPolicy& policy, bool follow) {
  Xattrs out;
  if (!policy.any()) return out;
  const std::string path = name.empty() ? std::string() : path_of(dir, name);
  auto list = [&](char* buf, size_t size) -> ssize_t {
    if (name.empty()) return flistxattr(dir, buf, size);
    return follow ? listxattr(path.c_str(), buf, size) : llistxattr(path.c_str(), buf, size);
  };
  auto get = [&](const char* attr, void* buf, size_t size) -> ssize_t {
    if (name.empty()) return fgetxattr(dir, attr, buf, size);
    return follow ? getxattr(path.c_str(), attr, buf, size) : lgetxattr(path.c_str(), attr, buf, size);
  };
  std::vector<char> names;
  for (int attempt = 0; attempt < 4; ++attempt) {  // the list may grow between the two calls
    ssize_t n = list(nullptr, 0);
    if (n < 0) {
      if (unsupported(errno)) return out;
      return make_error(Errc::io, std::string("list extended attributes: ") + std::strerror(errno));
    }
    names.resize(static_cast<size_t>(n));
    n = list(names.data(), names.size());
    if (n >= 0) {
      names.resize(static_cast<size_t>(n));
      break;
    }
    if (errno != ERANGE) return make_error(Errc::io, std::string("list extended attributes: ") + std::strerror(errno));
    names.clear();
  }
  size_t bytes = 0;
  std::vector<char> value(kMaxXattrValue);
  for (size_t at = 0; at < names.size();) {
    const std::string attr(names.data() + at);
    at += attr.size() + 1;
    if (!policy.allows(attr) || attr.size() > kMaxXattrName) continue;
    ssize_t n = get(attr.c_str(), value.data(), value.size());
    if (n < 0) {
      if (errno == ENODATA) continue;  // removed meanwhile
      return make_error(Errc::io, attr + ": " + std::strerror(errno));
    }
    bytes += attr.size() + static_cast<size_t>(n);
    if (out.size() >= kMaxXattrs || bytes > kMaxXattrBytes)
      return make_error(Errc::too_large, "more extended attributes than a copy carries (256, 256 KiB)");
    out.emplace_back(attr, std::string(value.data(), static_cast<size_t>(n)));
  }
  return out;
}

Result<void> write_xattrs(int dir, const std::string& name, const Xattrs& xattrs, const XattrPolicy& policy, int& err) {
  err = 0;
  const std::string path = name.empty() ? std::string() : path_of(dir, name);
  for (const auto& [attr, value] : xattrs) {
    if (!policy.allows(attr)) continue;  // what this side does not carry, whatever the source sent
    const int rc = name.empty() ? fsetxattr(dir, attr.c_str(), value.data(), value.size(), 0)
                                : lsetxattr(path.c_str(), attr.c_str(), value.data(), value.size(), 0);
    if (rc != 0) {
      err = errno;
      return make_error(Errc::io, "set extended attribute " + attr + ": " + std::strerror(err));
    }
  }
  return {};
}

}  // namespace rcp
