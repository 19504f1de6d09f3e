// FilePolicy: what the destination does with an announced file, from what
// already lies at its path. Pure: the caller looks the path up (DestTree,
// never following a symlink) and, with --checksum, hashes what it found.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "wire/messages.h"

namespace rcp {

struct FilePolicy {
  bool overwrite = false;        // replace what differs
  bool update = false;           // replace only what is older than the source
  bool ignore_existing = false;  // never touch what exists
  bool checksum = false;         // "the same" means the same content, not size and mtime
};

// -1, 0, 1: a before, equal to, after b, at the coarser precision of the two.
// A filesystem keeping seconds (or microseconds...) stores an mtime whose
// nanoseconds end in zeros; the one with more trailing zeros sets the
// precision, so a copy on a coarser filesystem still compares equal (a
// file changed within that tick at the same size is the price).
int compare_mtime(int64_t a_s, uint32_t a_ns, int64_t b_s, uint32_t b_ns);

// `existing`: what is at the path now (lstat), or nullopt when nothing is.
// `same_content` (--checksum, a regular file of the same size): whether its
// xxh3-128 equals the announced one. "Unchanged" wins over every option:
// it is what the user wants there already.
FileVerdict decide(const FilePolicy& policy, const FileEntry& file, const std::optional<struct stat>& existing,
                   std::optional<bool> same_content);

}  // namespace rcp
