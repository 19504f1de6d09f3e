#include "copy/file_policy.h"

namespace rcp {

namespace {

// The coarsest power of ten (1 ns .. 1 s) that divides ns.
uint32_t tick_of(uint32_t ns) {
  if (ns == 0) return 1000000000u;
  uint32_t tick = 1;
  while (ns % (tick * 10) == 0) tick *= 10;
  return tick;
}

}  // namespace

int compare_mtime(int64_t a_s, uint32_t a_ns, int64_t b_s, uint32_t b_ns) {
  if (a_s != b_s) return a_s < b_s ? -1 : 1;
  const uint32_t tick = std::max(tick_of(a_ns), tick_of(b_ns));
  const uint32_t a = a_ns / tick, b = b_ns / tick;
  return a == b ? 0 : (a < b ? -1 : 1);
}

FileVerdict decide(const FilePolicy& policy, const FileEntry& file, const std::optional<struct stat>& existing,
                   std::optional<bool> same_content) {
  if (!existing) return FileVerdict::send;
  const struct stat& st = *existing;
  const bool regular = S_ISREG(st.st_mode);
  const int age = compare_mtime(static_cast<int64_t>(st.st_mtim.tv_sec), static_cast<uint32_t>(st.st_mtim.tv_nsec),
                                file.mtime_s, file.mtime_ns);  // < 0: the destination's is older
  if (regular && static_cast<uint64_t>(st.st_size) == file.size) {
    if (policy.checksum ? same_content.value_or(false) : age == 0) return FileVerdict::unchanged;
  }
  if (policy.ignore_existing) return FileVerdict::ignored;
  if (policy.overwrite) return FileVerdict::replace;
  // --update: a destination file newer than the source's stays. Equal mtimes
  // with another size (or content) are not "newer": replaced, as rsync -u does.
  if (policy.update) return age > 0 ? FileVerdict::ignored : FileVerdict::replace;
  return FileVerdict::kept;
}

}  // namespace rcp
