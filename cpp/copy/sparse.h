// Sparse files: where a file's data lies, as the filesystem reports it with
// SEEK_DATA/SEEK_HOLE, so holes need not travel or be written.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace rcp {

using Extents = std::vector<std::pair<uint64_t, uint64_t>>;  // (start, length)

// The data extents of bytes [offset, offset + length) of `fd`, relative to
// `offset`, in order and apart; nullopt when that range holds no hole (or
// the filesystem can't say: then all of it is data). At most `max_extents`:
// past that the smallest holes between extents count as data.
std::optional<Extents> data_extents(int fd, uint64_t offset, uint64_t length, size_t max_extents);

// Keeps at most `max_extents` by joining the extents across the smallest holes.
void merge_extents(Extents& extents, size_t max_extents);

}  // namespace rcp
