// --delete at the destination: what the source announced under each copied
// directory, and the removal of everything else there once the copy is done.
//
// Memory: one 16-byte xxh3-128 per announced entry (32 for a directory, which
// is also remembered as one): at most kMaxKeys keys, 64 MiB. Repeats (a source
// may name a directory again and again) are dropped as the keys grow, so only
// distinct entries count. A collision between two paths can only make an
// entry look announced, which keeps it: it never deletes anything.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.h"
#include "copy/filter_rules.h"
#include "wire/chunk_header.h"

namespace rcp {

class AnnouncedSet {
 public:
  // At most this many keys held (64 MiB), repeats included until they are
  // dropped; past half of it in distinct keys (about 2 million entries)
  // nothing more is kept and full() says so: --delete then removes nothing
  // rather than too much.
  static constexpr size_t kMaxKeys = size_t{1} << 22;
  void add(uint32_t root, std::string_view rel, bool dir);
  bool full() const { return full_; }
  void seal();  // before any lookup
  bool has(uint32_t root, std::string_view rel) const;
  bool has_dir(uint32_t root, std::string_view rel) const;
  size_t size() const { return keys_.size(); }  // keys held now

 private:
  static Digest128 key(uint32_t root, std::string_view rel, bool dir);
  void compact();  // sorts and drops repeats
  std::vector<Digest128> keys_;
  size_t compact_at_ = size_t{1} << 16;  // compact() before keys_ holds more than this
  bool full_ = false;
};

struct PruneOptions {
  const FilterRules* rules = nullptr;  // excluded entries are protected...
  bool delete_excluded = false;        // ...unless this
  bool dry_run = false;                // report what would go, remove nothing
  // Each entry removed (or, dry, to be): its display path, size, directory or not.
  std::function<void(const std::string&, uint64_t, bool)> removed;
  std::function<void(const std::string&, const std::string&)> failed;  // path, why
};

// Removes what lies in `dir` (root `root`'s directory `rel`, shown as
// `display`) that `announced` does not name, recursing into announced
// directories. Relative to directory fds, never following a symlink: a
// symlink is removed as itself, a directory opened with O_NOFOLLOW.
void prune_directory(const UniqueFd& dir, uint32_t root, const std::string& rel, const std::string& display,
                     const AnnouncedSet& announced, const PruneOptions& options);

}  // namespace rcp
