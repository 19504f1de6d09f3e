// IntervalSet: a set of 64-bit integers kept as disjoint [first, last] ranges.
// The destination remembers settled file ids with it: ids arrive mostly in
// order, so a million settled files cost a handful of ranges, not a million
// entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

namespace rcp {

class IntervalSet {
 public:
  bool contains(uint64_t v) const;
  void insert(uint64_t v);
  size_t ranges() const { return ranges_.size(); }

 private:
  std::map<uint64_t, uint64_t> ranges_;  // first -> last (inclusive); never adjacent or overlapping
};

}  // namespace rcp
