#include "copy/sparse.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace rcp {

void merge_extents(Extents& extents, size_t max_extents) {
  if (max_extents == 0 || extents.size() <= max_extents) return;
  // The holes between extents, largest first: the first max_extents - 1 stay holes.
  std::vector<std::pair<uint64_t, size_t>> holes;  // (size, index of the extent after it)
  holes.reserve(extents.size() - 1);
  for (size_t i = 1; i < extents.size(); ++i)
    holes.emplace_back(extents[i].first - (extents[i - 1].first + extents[i - 1].second), i);
  std::nth_element(
      holes.begin(), holes.begin() + static_cast<std::ptrdiff_t>(max_extents - 1), holes.end(),
      [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  std::vector<bool> keep_hole(extents.size(), false);
  for (size_t k = 0; k + 1 < max_extents; ++k) keep_hole[holes[k].second] = true;
  Extents merged;
  merged.reserve(max_extents);
  for (size_t i = 0; i < extents.size(); ++i) {
    if (i == 0 || keep_hole[i]) {
      merged.push_back(extents[i]);
    } else {  // the hole before extent i travels as zeros
      auto& last = merged.back();
      last.second = extents[i].first + extents[i].second - last.first;
    }
  }
  extents = std::move(merged);
}

std::optional<Extents> data_extents(int fd, uint64_t offset, uint64_t length, size_t max_extents) {
  if (length == 0) return std::nullopt;
  const uint64_t end = offset + length;
  Extents out;
  uint64_t pos = offset;
  while (pos < end) {
    const off_t data = lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // no data from pos on: the rest is a hole
      return std::nullopt;        // no SEEK_DATA here: all of it is data
    }
    if (static_cast<uint64_t>(data) >= end) break;
    const off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return std::nullopt;
    const uint64_t stop = std::min<uint64_t>(static_cast<uint64_t>(hole), end);
    if (stop <= static_cast<uint64_t>(data)) return std::nullopt;  // the file changed under us: send it whole
    out.emplace_back(static_cast<uint64_t>(data) - offset, stop - static_cast<uint64_t>(data));
    pos = stop;
  }
  if (out.size() == 1 && out[0].first == 0 && out[0].second == length) return std::nullopt;
  merge_extents(out, max_extents);
  return out;
}

}  // namespace rcp
