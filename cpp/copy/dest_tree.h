// DestTree: every filesystem change the destination makes, done relative to
// directory fds and without following symlinks (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW),
// on names already validated by path_validator. Files are written under a
// temporary name and renamed into place only when complete and verified.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "copy/filter_rules.h"
#include "copy/path_validator.h"
#include "copy/xattrs.h"

namespace rcp {

using DirFd = std::shared_ptr<UniqueFd>;

// How a finished file is put in place without replacing an existing one
// (overwrite off), strongest first. DestTree starts with `no_replace` and steps
// down, for good, when the kernel or filesystem lacks a method: renameat2 needs
// Linux 3.15 and a filesystem that takes RENAME_NOREPLACE (ENOSYS/EINVAL
// otherwise); link()+unlink() is as atomic but needs hard links; the last,
// checking then renaming, can lose a race with another writer of that name.
enum class NoReplace { renameat2, link, check_then_rename };

struct DestSpec {
  std::string path;      // as given by the user
  uint32_t sources = 1;  // number of source operands
  bool trailing_slash = false;
  bool overwrite = false;
  std::vector<RootRule> rules;                  // per source operand; a missing one is RootRule{} (any visible name)
  bool fsync = false;                           // files before their rename, directories after their entries
  NoReplace no_replace = NoReplace::renameat2;  // tests start lower, as on an old kernel
  bool update = false;                          // replace only what is older than the source
  bool ignore_existing = false;                 // never touch what exists
  bool checksum = false;                        // compare content, not size and mtime
  bool anonymous_temps = true;                  // O_TMPFILE where it works (tests: false, as without it)
  FilterRules filters{};                        // the copy's rules: what --delete must not touch
  bool delete_extraneous = false;               // --delete
  bool delete_excluded = false;                 // --delete-excluded
  bool dry_run = false;                         // write nothing: only existing_* below are used
  bool owner = false;                           // entries get the source's owner (by name unless numeric_ids)
  bool group = false;                           // ...and group
  bool numeric_ids = false;
  XattrPolicy xattrs{};     // which extended attributes to set (none by default)
  bool partial = false;     // large files keep what verified (copy/partial_file.h)
  bool hard_links = false;  // -H asked for: only then may the source announce links
};

class DestTree {
 public:
  // Decides between "into" (DST is a directory, or ends with '/') and "as"
  // (a single source becomes DST) and opens the directory that will hold the roots.
  static Result<std::unique_ptr<DestTree>> open(const DestSpec& spec);

  // kind: 'd' directory, 'f' file, 'l' symlink. A name the operand's rule
  // does not allow is a protocol error: the source chose what to write.
  // `operand`: the source operand the root came from, whose rule applies (a
  // wildcard operand has several roots); `roots`: how many roots the source
  // said it sends in all (0: not said). Only one root may become DST itself.
  Result<void> set_root(uint32_t index, const std::string& name, char kind, uint32_t operand, uint32_t roots);
  Result<void> set_root(uint32_t index, const std::string& name, char kind) {
    return set_root(index, name, kind, index, 0);
  }
  bool has_root(uint32_t index) const;
  char root_kind(uint32_t index) const;  // 'f', 'd', 'l', or 0 when not announced
  // The directory that holds `rel` (created as needed) and the leaf name.
  Result<std::pair<DirFd, std::string>> parent_of(uint32_t root, const std::string& rel);
  Result<DirFd> directory(uint32_t root, const std::string& rel);  // mkdir -p, no symlinks
  // As directory() and parent_of(), creating nothing (--dry-run): nullopt
  // when a directory on the way does not exist yet.
  Result<std::optional<DirFd>> existing_directory(uint32_t root, const std::string& rel);
  Result<std::optional<std::pair<DirFd, std::string>>> existing_parent_of(uint32_t root, const std::string& rel);
  std::vector<uint32_t> directory_roots() const;  // the roots announced as directories

  // A new temporary file in `dir`; tracked until commit or discard. Named
  // `.rcp-<host>-<pid>-<random>.tmp`; the first in a directory first removes
  // such files of this host's rcpds that are gone (killed mid-copy).
  Result<std::pair<UniqueFd, std::string>> create_temp(const DirFd& dir);
  // A new file in `dir` with no name at all (O_TMPFILE): whatever kills this
  // process, nothing is left behind. Fails (for good, once seen) where the
  // filesystem or kernel can't, or /proc is missing: then create_temp.
  // `mode`: its permission bits from the start (no name: nobody else can open
  // it), so the usual file needs no chmod once written.
  Result<UniqueFd> create_anonymous(const DirFd& dir, mode_t mode = 0600);
  // Gives an anonymous file its name: false when `name` exists and `replace` is off.
  Result<bool> link_into_place(const DirFd& dir, const UniqueFd& fd, const std::string& name, bool replace);
  Result<void> create_temp_symlink(const DirFd& dir, const std::string& target, std::string& tmp_name);
  // Renames tmp over name. Returns false (and removes tmp) when name exists and `replace` is off.
  Result<bool> commit(const DirFd& dir, const std::string& tmp, const std::string& name, bool replace);
  Result<bool> commit(const DirFd& dir, const std::string& tmp, const std::string& name) {
    return commit(dir, tmp, name, spec_.overwrite);
  }
  // What is at `name` in `dir` (never following a symlink): nullopt when nothing is.
  Result<std::optional<struct stat>> lookup(const DirFd& dir, const std::string& name) const;
  // The regular file `seen` at `name`, opened for reading (no symlink, no FIFO, same inode).
  Result<UniqueFd> open_existing(const DirFd& dir, const std::string& name, const struct stat& seen) const;
  void discard(const DirFd& dir, const std::string& tmp);
  bool exists(const DirFd& dir, const std::string& name) const;
  // Removes every temporary file still present (abort path); thread-safe.
  void remove_temps();

  // True when this copy created the directory (its metadata is ours to set).
  bool created(const DirFd& dir) const;
  NoReplace no_replace() const { return no_replace_.load(); }  // the method in use now

  std::string display(uint32_t root, const std::string& rel) const;
  bool overwrite() const { return spec_.overwrite; }
  bool fsync() const { return spec_.fsync; }
  const DestSpec& spec() const { return spec_; }
  const std::string& temp_prefix() const { return temp_prefix_; }  // ".rcp-<host>-"
  // The directory that holds the roots (fsync'd last).
  const DirFd& base() const { return base_; }

 private:
  explicit DestTree(const DestSpec& spec)
      : spec_(spec), no_replace_(spec.no_replace), anonymous_ok_(spec.anonymous_temps) {}
  struct Root {
    std::string name;  // entry name inside base_
    char kind = '?';
  };
  // With `create` off, nullptr when `name` does not exist.
  Result<DirFd> open_child_dir(const DirFd& parent, const std::string& name, bool create = true);
  Result<DirFd> walk_to(uint32_t root, const std::string& rel, bool create);
  std::string temp_name() const;  // .rcp-<host>-<pid>-<random>.tmp, or "" without randomness
  void sweep_stale_temps(const DirFd& dir);
  // Renames tmp to name unless name exists: 0, or an errno (EEXIST: it exists).
  int rename_no_replace(int dir, const std::string& tmp, const std::string& name);
  // linkat() of fd to dir/name; 0 or the errno.
  int link_fd(const UniqueFd& fd, const DirFd& dir, const std::string& name);

  DestSpec spec_;
  bool into_ = true;
  DirFd base_;           // directory holding the roots
  std::string as_name_;  // "as" mode: the name DST gives the single root
  mutable std::mutex mu_;
  std::map<uint32_t, Root> roots_;
  std::set<uint32_t> operands_with_root_;  // those of rules without `many`
  std::map<std::string, DirFd> dirs_;      // "root/rel" -> fd, bounded cache
  std::set<std::pair<DirFd, std::string>> temps_;
  std::set<std::pair<dev_t, ino_t>> created_;
  std::atomic<NoReplace> no_replace_{NoReplace::renameat2};  // steps down only
  std::atomic<bool> anonymous_ok_{true};                     // O_TMPFILE worked, or was not tried yet
  std::atomic<bool> proc_checked_{false};                    // /proc/self/fd was looked at (once per copy)
  std::atomic<bool> empty_path_ok_{true};                    // linkat(AT_EMPTY_PATH) worked, or was not tried yet
  std::string temp_prefix_;                                  // ".rcp-<host>-": this host's temporaries
  std::set<std::pair<dev_t, ino_t>> swept_;                  // directories already swept
};

}  // namespace rcp
