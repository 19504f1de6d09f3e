#include "base/interval_set.h"

#include <iterator>
#include <limits>

namespace rcp {

bool IntervalSet::contains(uint64_t v) const {
  auto it = ranges_.upper_bound(v);
  if (it == ranges_.begin()) return false;
  --it;
  return v <= it->second;
}

void IntervalSet::insert(uint64_t v) {
  if (contains(v)) return;
  uint64_t last = v;
  // [v+1, l] joins from above.
  if (v != std::numeric_limits<uint64_t>::max()) {
    if (auto next = ranges_.find(v + 1); next != ranges_.end()) {
      last = next->second;
      ranges_.erase(next);
    }
  }
  // [s, v-1] joins from below.
  auto prev = ranges_.lower_bound(v);
  if (prev != ranges_.begin() && std::prev(prev)->second + 1 == v) {
    std::prev(prev)->second = last;
    return;
  }
  ranges_[v] = last;
}

}  // namespace rcp
