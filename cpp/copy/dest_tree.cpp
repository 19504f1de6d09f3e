#include "copy/dest_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/crypto.h"
#include "copy/path_validator.h"
#include "wire/chunk_header.h"

namespace rcp {

namespace {

constexpr size_t kMaxCachedDirs = 512;

Error fs_error(const std::string& what, int err) { return make_error(Errc::io, what + ": " + std::strerror(err)); }

std::pair<std::string, std::string> split_parent(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace

Result<std::unique_ptr<DestTree>> DestTree::open(const DestSpec& spec) {
  std::unique_ptr<DestTree> t(new DestTree(spec));
  // Which host made a temporary: only this host can tell whether its rcpd is gone.
  char host[256] = {};
  (void)gethostname(host, sizeof host - 1);
  const std::string host_name(host);
  const Digest128 h = Xxh128::of({reinterpret_cast<const uint8_t*>(host_name.data()), host_name.size()});
  t->temp_prefix_ = ".rcp-" + to_hex(std::span<const uint8_t>(h.data(), 4)) + "-";
  if (spec.path.empty()) return make_error(Errc::invalid_argument, "empty destination path");
  struct stat st {};
  // The user's own DST may be a symlink to a directory; only what lies below is never followed.
  bool is_dir = ::stat(spec.path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  if (is_dir) {
    int fd = ::open(spec.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fs_error(spec.path, errno);
    t->base_ = std::make_shared<UniqueFd>(fd);
    return t;
  }
  if (spec.trailing_slash) return make_error(Errc::io, spec.path + ": destination directory does not exist");
  if (spec.sources > 1) return make_error(Errc::io, spec.path + ": target is not a directory (several sources)");
  auto [parent, name] = split_parent(spec.path);
  if (auto r = validate_name(name); !r) return make_error(Errc::invalid_argument, spec.path + ": not a usable name");
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fs_error(parent, errno);
  t->base_ = std::make_shared<UniqueFd>(fd);
  t->into_ = false;
  t->as_name_ = name;
  return t;
}

Result<void> DestTree::set_root(uint32_t index, const std::string& name, char kind, uint32_t operand, uint32_t roots) {
  if (operand >= spec_.sources || index >= kMaxRoots)
    return make_error(Errc::protocol, "peer announced a source that was never requested");
  const RootRule rule = operand < spec_.rules.size() ? spec_.rules[operand] : RootRule{};
  if (auto r = check_root_name(rule, name); !r) return r;
  if (!into_ && roots > 1)  // an honest wildcard matching several names: the user's mistake, said before any write
    return make_error(
        Errc::io, spec_.path + ": not a directory, but the source operand matches " + std::to_string(roots) + " names");
  if (!into_ && index != 0) return make_error(Errc::protocol, "peer announced a second root for a single target");
  std::lock_guard<std::mutex> lk(mu_);
  if (roots_.count(index))
    return make_error(Errc::protocol, "peer announced source " + std::to_string(index) + " twice");
  // An operand without a wildcard stands for one root: a second is invented.
  if (!rule.many && !operands_with_root_.insert(operand).second)
    return make_error(Errc::protocol, "peer announced a second root '" + name.substr(0, 200) + "' for operand " +
                                          std::to_string(operand) + ", which holds no wildcard");
  roots_[index] = Root{into_ ? name : as_name_, kind};
  return {};
}

bool DestTree::has_root(uint32_t index) const {
  std::lock_guard<std::mutex> lk(mu_);
  return roots_.count(index) != 0;
}

char DestTree::root_kind(uint32_t index) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = roots_.find(index);
  return it == roots_.end() ? '\0' : it->second.kind;
}

std::string DestTree::display(uint32_t root, const std::string& rel) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = roots_.find(root);
  std::string base = it == roots_.end() ? "?" : it->second.name;
  std::string dir = into_ ? spec_.path : split_parent(spec_.path).first;
  std::string out = dir == "." ? base : dir + (dir.back() == '/' ? "" : "/") + base;
  return rel.empty() ? out : out + "/" + rel;
}

Result<DirFd> DestTree::open_child_dir(const DirFd& parent, const std::string& name, bool create) {
  bool made = false;
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = openat(parent->get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      auto dir = std::make_shared<UniqueFd>(fd);
      struct stat st {};
      if (made && fstat(fd, &st) == 0) {
        std::lock_guard<std::mutex> lk(mu_);
        created_.insert({st.st_dev, st.st_ino});
      }
      return dir;
    }
    if (errno == ELOOP || errno == ENOTDIR)
      return make_error(Errc::io, "'" + name + "' exists and is not a directory (symlinks are never followed)");
    if (errno != ENOENT) return fs_error(name, errno);
    if (!create) return DirFd{};
    // Created private; the source's mode is applied when the copy ends.
    if (mkdirat(parent->get(), name.c_str(), 0700) == 0)
      made = true;
    else if (errno != EEXIST)
      return fs_error("mkdir " + name, errno);
  }
  return make_error(Errc::io, "cannot create directory " + name);
}

Result<DirFd> DestTree::directory(uint32_t root, const std::string& rel) {
  // Nothing is created in a dry run, whoever asks.
  if (spec_.dry_run) {
    auto dir = existing_directory(root, rel);
    if (!dir) return dir.error();
    if (!*dir) return make_error(Errc::io, "does not exist (dry run)");
    return **dir;
  }
  return walk_to(root, rel, true);
}

Result<std::optional<DirFd>> DestTree::existing_directory(uint32_t root, const std::string& rel) {
  auto dir = walk_to(root, rel, false);
  if (!dir) return dir.error();
  if (!*dir) return std::optional<DirFd>{};
  return std::optional<DirFd>{*dir};
}

Result<std::optional<std::pair<DirFd, std::string>>> DestTree::existing_parent_of(uint32_t root,
                                                                                  const std::string& rel) {
  using Found = std::optional<std::pair<DirFd, std::string>>;
  if (rel.empty()) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = roots_.find(root);
    if (it == roots_.end()) return make_error(Errc::protocol, "entry for an unannounced source");
    return Found{std::make_pair(base_, it->second.name)};
  }
  auto parts = split_relative_path(rel);
  if (!parts) return parts.error();
  std::string leaf = parts->back();
  std::string dir_rel = rel.size() > leaf.size() ? rel.substr(0, rel.size() - leaf.size() - 1) : "";
  auto dir = existing_directory(root, dir_rel);
  if (!dir) return dir.error();
  if (!*dir) return Found{};
  return Found{std::make_pair(**dir, leaf)};
}

std::vector<uint32_t> DestTree::directory_roots() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<uint32_t> out;
  for (const auto& [index, root] : roots_)
    if (root.kind == 'd') out.push_back(index);
  return out;
}

Result<DirFd> DestTree::walk_to(uint32_t root, const std::string& rel, bool create) {
  auto parts = split_relative_path(rel);
  if (!parts) return parts.error();
  Root r;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = roots_.find(root);
    if (it == roots_.end()) return make_error(Errc::protocol, "entry for an unannounced source");
    r = it->second;
    if (r.kind != 'd') return make_error(Errc::protocol, "entry below a source that is not a directory");
    auto cached = dirs_.find(std::to_string(root) + "/" + rel);
    if (cached != dirs_.end()) return cached->second;
  }
  auto cur = open_child_dir(base_, r.name, create);
  if (!cur || !*cur) return cur;
  DirFd dir = *cur;
  for (const auto& p : *parts) {
    auto next = open_child_dir(dir, p, create);
    if (!next || !*next) return next;
    dir = *next;
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (dirs_.size() >= kMaxCachedDirs) dirs_.clear();  // holders keep their fds alive
  dirs_[std::to_string(root) + "/" + rel] = dir;
  return dir;
}

Result<std::pair<DirFd, std::string>> DestTree::parent_of(uint32_t root, const std::string& rel) {
  if (rel.empty()) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = roots_.find(root);
    if (it == roots_.end()) return make_error(Errc::protocol, "entry for an unannounced source");
    return std::make_pair(base_, it->second.name);
  }
  auto parts = split_relative_path(rel);
  if (!parts) return parts.error();
  std::string leaf = parts->back();
  std::string dir_rel = rel.size() > leaf.size() ? rel.substr(0, rel.size() - leaf.size() - 1) : "";
  auto dir = directory(root, dir_rel);
  if (!dir) return dir.error();
  return std::make_pair(*dir, leaf);
}

std::string DestTree::temp_name() const {
  uint8_t rnd[8];
  if (!random_bytes(rnd)) return "";
  return temp_prefix_ + std::to_string(getpid()) + "-" + to_hex(rnd) + ".tmp";
}

void DestTree::sweep_stale_temps(const DirFd& dir) {
  struct stat st {};
  if (fstat(dir->get(), &st) != 0) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!swept_.insert({st.st_dev, st.st_ino}).second) return;
  }
  int dup_fd = fcntl(dir->get(), F_DUPFD_CLOEXEC, 0);
  DIR* d = dup_fd >= 0 ? fdopendir(dup_fd) : nullptr;
  if (d == nullptr) {
    if (dup_fd >= 0) close(dup_fd);
    return;
  }
  // Ours: this host's prefix, our uid, and an rcpd pid that no longer exists.
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind(temp_prefix_, 0) != 0 || name.size() < temp_prefix_.size() + 6 ||
        name.compare(name.size() - 4, 4, ".tmp") != 0)
      continue;
    const std::string rest = name.substr(temp_prefix_.size());
    const auto dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos || rest.find_first_not_of("0123456789") != dash) continue;
    const long pid = std::strtol(rest.substr(0, dash).c_str(), nullptr, 10);
    if (pid <= 0 || pid == getpid() || kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    struct stat ts {};
    if (fstatat(dir->get(), name.c_str(), &ts, AT_SYMLINK_NOFOLLOW) != 0 || ts.st_uid != geteuid()) continue;
    if (S_ISREG(ts.st_mode) || S_ISLNK(ts.st_mode)) (void)unlinkat(dir->get(), name.c_str(), 0);
  }
  closedir(d);
}

Result<std::pair<UniqueFd, std::string>> DestTree::create_temp(const DirFd& dir) {
  sweep_stale_temps(dir);  // without O_TMPFILE, a killed run's files have names: the next run removes them
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string name = temp_name();
    if (name.empty()) return make_error(Errc::io, "no randomness for a temporary name");
    int fd = openat(dir->get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      std::lock_guard<std::mutex> lk(mu_);
      temps_.insert({dir, name});
      return std::make_pair(UniqueFd(fd), name);
    }
    if (errno != EEXIST) return fs_error("create temporary file", errno);
  }
  return make_error(Errc::io, "cannot find a free temporary name");
}

Result<UniqueFd> DestTree::create_anonymous(const DirFd& dir, mode_t mode) {
  // linkat() gives it a name by its fd (AT_EMPTY_PATH) or through
  // /proc/self/fd: without /proc, named temporaries it is. Looked at once,
  // not per file (a path lookup each time).
  if (!proc_checked_.exchange(true) && access("/proc/self/fd", X_OK) != 0) anonymous_ok_.store(false);
  if (!anonymous_ok_.load()) return make_error(Errc::io, "no O_TMPFILE here");
  int fd = openat(dir->get(), ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode & 0777);
  if (fd >= 0) return UniqueFd(fd);
  const int err = errno;
  // EOPNOTSUPP/EISDIR/EINVAL: this kernel or filesystem has none; anything
  // else (EACCES, ENOSPC) is this directory's problem, and create_temp says so.
  if (err == EOPNOTSUPP || err == EISDIR || err == EINVAL) anonymous_ok_.store(false);
  return fs_error("create temporary file", err);
}

int DestTree::link_fd(const UniqueFd& fd, const DirFd& dir, const std::string& name) {
  // By the fd itself where the kernel lets this process (CAP_DAC_READ_SEARCH,
  // or Linux >= 6.10 for a file it opened): no /proc path to resolve per
  // file. Refused (ENOENT), it is /proc/self/fd from then on.
  if (empty_path_ok_.load()) {
    if (linkat(fd.get(), "", dir->get(), name.c_str(), AT_EMPTY_PATH) == 0) return 0;
    if (errno != ENOENT) return errno;
    empty_path_ok_.store(false);
  }
  const std::string self = "/proc/self/fd/" + std::to_string(fd.get());
  return linkat(AT_FDCWD, self.c_str(), dir->get(), name.c_str(), AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
}

Result<bool> DestTree::link_into_place(const DirFd& dir, const UniqueFd& fd, const std::string& name, bool replace) {
  if (!replace) {
    // A new link fails with EEXIST when the name exists: as atomic as RENAME_NOREPLACE.
    const int err = link_fd(fd, dir, name);
    if (err == 0) return true;
    if (err == EEXIST) return false;
    return fs_error("link into place", err);
  }
  // Replacing: a hidden name for an instant, then the rename over `name`
  // (a run killed in that instant leaves it: the next one here removes it).
  sweep_stale_temps(dir);
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string tmp = temp_name();
    if (tmp.empty()) return make_error(Errc::io, "no randomness for a temporary name");
    if (const int err = link_fd(fd, dir, tmp); err != 0) {
      if (err == EEXIST) continue;
      return fs_error("link into place", err);
    }
    if (renameat(dir->get(), tmp.c_str(), dir->get(), name.c_str()) == 0) return true;
    const int err = errno;
    unlinkat(dir->get(), tmp.c_str(), 0);
    return fs_error("rename into place", err);
  }
  return make_error(Errc::io, "cannot find a free temporary name");
}

Result<void> DestTree::create_temp_symlink(const DirFd& dir, const std::string& target, std::string& tmp_name) {
  // Symlinks have a name from the start, even with O_TMPFILE for files: a killed run's are removed here.
  sweep_stale_temps(dir);
  tmp_name = temp_name();
  if (tmp_name.empty()) return make_error(Errc::io, "no randomness for a temporary name");
  if (symlinkat(target.c_str(), dir->get(), tmp_name.c_str()) != 0) return fs_error("symlink", errno);
  std::lock_guard<std::mutex> lk(mu_);
  temps_.insert({dir, tmp_name});
  return {};
}

bool DestTree::created(const DirFd& dir) const {
  struct stat st {};
  if (fstat(dir->get(), &st) != 0) return false;
  std::lock_guard<std::mutex> lk(mu_);
  return created_.count({st.st_dev, st.st_ino}) != 0;
}

bool DestTree::exists(const DirFd& dir, const std::string& name) const {
  struct stat st {};
  return fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int DestTree::rename_no_replace(int dir, const std::string& tmp, const std::string& name) {
  NoReplace how = no_replace_.load();
  if (how == NoReplace::renameat2) {
    if (renameat2(dir, tmp.c_str(), dir, name.c_str(), RENAME_NOREPLACE) == 0) return 0;
    // ENOSYS: before Linux 3.15; EINVAL: a filesystem without the flag.
    if (errno != ENOSYS && errno != EINVAL) return errno;
    how = NoReplace::link;
    no_replace_.store(how);
  }
  if (how == NoReplace::link) {
    // A new link fails with EEXIST when the name exists: as atomic as
    // RENAME_NOREPLACE. The temporary name is then dropped.
    if (linkat(dir, tmp.c_str(), dir, name.c_str(), 0) == 0) {
      (void)unlinkat(dir, tmp.c_str(), 0);  // a failure leaves a second name of the same file, no harm
      return 0;
    }
    // EPERM/EOPNOTSUPP: no hard links here (FAT, some FUSE filesystems).
    if (errno != EPERM && errno != EOPNOTSUPP) return errno;
    how = NoReplace::check_then_rename;
    no_replace_.store(how);
  }
  // The last resort: a writer creating `name` between the check and the
  // rename would lose its file. Nothing better exists on such a filesystem.
  struct stat st {};
  if (fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return EEXIST;
  if (errno != ENOENT) return errno;
  return renameat(dir, tmp.c_str(), dir, name.c_str()) == 0 ? 0 : errno;
}

Result<std::optional<struct stat>> DestTree::lookup(const DirFd& dir, const std::string& name) const {
  struct stat st {};
  if (fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return std::optional<struct stat>(st);
  if (errno == ENOENT) return std::optional<struct stat>();
  return fs_error(name, errno);
}

Result<UniqueFd> DestTree::open_existing(const DirFd& dir, const std::string& name, const struct stat& seen) const {
  // O_NONBLOCK: a FIFO swapped in must not block; the inode check refuses it.
  UniqueFd fd(openat(dir->get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) return fs_error(name, errno);
  struct stat now {};
  if (fstat(fd.get(), &now) != 0) return fs_error(name, errno);
  if (!S_ISREG(now.st_mode) || now.st_dev != seen.st_dev || now.st_ino != seen.st_ino)
    return make_error(Errc::io, name + ": changed while being compared");
  return fd;
}

Result<bool> DestTree::commit(const DirFd& dir, const std::string& tmp, const std::string& name, bool replace) {
  int err = 0;
  if (replace)
    err = renameat(dir->get(), tmp.c_str(), dir->get(), name.c_str()) == 0 ? 0 : errno;
  else
    err = rename_no_replace(dir->get(), tmp, name);
  if (err == 0) {
    std::lock_guard<std::mutex> lk(mu_);
    temps_.erase({dir, tmp});
    return true;
  }
  discard(dir, tmp);
  if (err == EEXIST) return false;
  return fs_error("rename into place", err);
}

void DestTree::discard(const DirFd& dir, const std::string& tmp) {
  unlinkat(dir->get(), tmp.c_str(), 0);
  std::lock_guard<std::mutex> lk(mu_);
  temps_.erase({dir, tmp});
}

void DestTree::remove_temps() {
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& [dir, name] : temps_) unlinkat(dir->get(), name.c_str(), 0);
  temps_.clear();
}

}  // namespace rcp
