#include "copy/dest_prune.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "wire/limits.h"

namespace rcp {

namespace {

// a/b, or b when a is empty.
std::string join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  std::string out = a;
  out += '/';
  out += b;
  return out;
}
// display/name: never empty on the left.
std::string below(const std::string& a, const std::string& b) {
  std::string out = a;
  out += '/';
  out += b;
  return out;
}

// The names in `dir`, read before anything in it changes.
Result<std::vector<std::string>> names_in(const UniqueFd& dir) {
  int dup_fd = fcntl(dir.get(), F_DUPFD_CLOEXEC, 0);
  DIR* d = dup_fd >= 0 ? fdopendir(dup_fd) : nullptr;
  if (d == nullptr) {
    const int err = errno;
    if (dup_fd >= 0) close(dup_fd);
    return make_error(Errc::io, std::strerror(err));
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// The directory `name` in `parent`, only if it still is the one lstat saw.
Result<UniqueFd> open_subdir(const UniqueFd& parent, const std::string& name, const struct stat& seen) {
  UniqueFd fd(openat(parent.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return make_error(Errc::io, std::strerror(errno));
  struct stat now {};
  if (fstat(fd.get(), &now) != 0 || now.st_dev != seen.st_dev || now.st_ino != seen.st_ino)
    return make_error(Errc::io, "changed while being removed");
  return fd;
}

class Pruner {
 public:
  Pruner(uint32_t root, const AnnouncedSet& announced, const PruneOptions& options)
      : root_(root), announced_(announced), options_(options) {}

  void walk(const UniqueFd& dir, const std::string& rel, const std::string& display, size_t depth) {
    auto names = names_in(dir);
    if (!names) return options_.failed(display, "cannot list for --delete: " + names.error().message);
    for (const auto& name : *names) {
      const std::string child_rel = join(rel, name), child = below(display, name);
      struct stat st {};
      if (fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) options_.failed(child, std::string("cannot stat for --delete: ") + std::strerror(errno));
        continue;
      }
      const bool is_dir = S_ISDIR(st.st_mode);
      if (announced_.has(root_, child_rel)) {
        // Only a directory the source has as a directory is searched for extras.
        if (!is_dir || !announced_.has_dir(root_, child_rel) || depth >= kMaxPathDepth) continue;
        auto sub = open_subdir(dir, name, st);
        if (!sub) {
          options_.failed(child, "cannot open for --delete: " + sub.error().message);
          continue;
        }
        walk(*sub, child_rel, child, depth + 1);
        continue;
      }
      remove(dir, name, st, child_rel, child, depth);
    }
  }

 private:
  bool protected_entry(const std::string& rel, bool is_dir) const {
    return !options_.delete_excluded && options_.rules != nullptr && options_.rules->excluded(rel, is_dir);
  }

  // Removes one entry the source does not have (a directory with all it
  // holds); false when something stays (protected, or it failed).
  bool remove(const UniqueFd& dir, const std::string& name, const struct stat& st, const std::string& rel,
              const std::string& display, size_t depth) {
    const bool is_dir = S_ISDIR(st.st_mode);
    if (protected_entry(rel, is_dir)) return false;
    if (is_dir) {
      if (depth >= kMaxPathDepth) {
        options_.failed(display, "deeper than " + std::to_string(kMaxPathDepth) + " levels; not deleted");
        return false;
      }
      auto sub = open_subdir(dir, name, st);
      if (!sub) {
        options_.failed(display, "cannot delete: " + sub.error().message);
        return false;
      }
      auto names = names_in(*sub);
      if (!names) {
        options_.failed(display, "cannot delete: " + names.error().message);
        return false;
      }
      bool emptied = true;
      for (const auto& child : *names) {
        struct stat cst {};
        if (fstatat(sub->get(), child.c_str(), &cst, AT_SYMLINK_NOFOLLOW) != 0) {
          emptied = emptied && errno == ENOENT;
          continue;
        }
        emptied = remove(*sub, child, cst, below(rel, child), below(display, child), depth + 1) && emptied;
      }
      if (!emptied) return false;  // an excluded entry inside keeps its directory, as rsync does
    }
    if (!options_.dry_run && unlinkat(dir.get(), name.c_str(), is_dir ? AT_REMOVEDIR : 0) != 0) {
      options_.failed(display, std::string("cannot delete: ") + std::strerror(errno));
      return false;
    }
    options_.removed(display, is_dir ? 0 : static_cast<uint64_t>(st.st_size), is_dir);
    return true;
  }

  uint32_t root_;
  const AnnouncedSet& announced_;
  const PruneOptions& options_;
};

}  // namespace

Digest128 AnnouncedSet::key(uint32_t root, std::string_view rel, bool dir) {
  Xxh128 h;
  h.update({reinterpret_cast<const uint8_t*>(&root), sizeof root});
  h.update({reinterpret_cast<const uint8_t*>(rel.data()), rel.size()});
  // A '\0' can't be in a path: "rel as a directory" is a key of its own.
  if (dir) h.update({reinterpret_cast<const uint8_t*>("\0d"), 2});
  return h.digest();
}

void AnnouncedSet::add(uint32_t root, std::string_view rel, bool dir) {
  if (full_) return;
  if (keys_.size() + 2 > compact_at_) {
    compact();
    // Distinct keys fill at most half the room, so that compacting stays
    // rare (at least as many adds between two as there are keys).
    if (keys_.size() + 2 > kMaxKeys / 2) {
      full_ = true;
      return;
    }
  }
  keys_.push_back(key(root, rel, false));
  if (dir) keys_.push_back(key(root, rel, true));
}

void AnnouncedSet::compact() {
  // In place (no second buffer); the next compaction waits until the keys
  // held have doubled, so repeats never hold more room than the distinct keys.
  std::sort(keys_.begin(), keys_.end());
  keys_.erase(std::unique(keys_.begin(), keys_.end()), keys_.end());
  compact_at_ = std::min(kMaxKeys, std::max(compact_at_, 2 * keys_.size()));
}

void AnnouncedSet::seal() {
  compact();
  keys_.shrink_to_fit();
}

bool AnnouncedSet::has(uint32_t root, std::string_view rel) const {
  return std::binary_search(keys_.begin(), keys_.end(), key(root, rel, false));
}

bool AnnouncedSet::has_dir(uint32_t root, std::string_view rel) const {
  return std::binary_search(keys_.begin(), keys_.end(), key(root, rel, true));
}

void prune_directory(const UniqueFd& dir, uint32_t root, const std::string& rel, const std::string& display,
                     const AnnouncedSet& announced, const PruneOptions& options) {
  Pruner(root, announced, options).walk(dir, rel, display, 1);
}

}  // namespace rcp
