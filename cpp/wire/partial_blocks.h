// The block grid of `--partial` (docs/protocol.md, "Resuming a file"): both
// sides derive it from the file's size alone, so no message carries it. With
// partial on, a large file's chunks are exactly its blocks: the destination
// records a block once its chunk verified, and a later run reuses it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace rcp {

constexpr uint64_t kPartialBlockBytes = 4ull << 20;
// At most this many blocks per file (a 64 GiB file at 4 MiB): a larger file
// gets larger blocks, so offers, records and bitmaps stay bounded.
constexpr uint32_t kMaxPartialBlocks = 16384;
constexpr size_t kMaxBlockBitmap = kMaxPartialBlocks / 8;
// Block hashes (SHA-256, 32 bytes each) in one `verdicts` message, all files together.
constexpr uint32_t kMaxResumeBlocks = 16384;
constexpr size_t kBlockHashSize = 32;

constexpr uint64_t partial_block_bytes(uint64_t size) {
  const uint64_t mib = 1ull << 20;
  const uint64_t needed = size / kMaxPartialBlocks + (size % kMaxPartialBlocks != 0);
  const uint64_t rounded = (needed + mib - 1) / mib * mib;  // whole MiB, like any chunk length
  return rounded > kPartialBlockBytes ? rounded : kPartialBlockBytes;
}
constexpr uint32_t partial_blocks(uint64_t size) {
  const uint64_t b = partial_block_bytes(size);
  return static_cast<uint32_t>(size / b + (size % b != 0));
}
// Only a file of two blocks or more is worth a record.
constexpr bool partial_applies(uint64_t size) { return size > partial_block_bytes(size); }

// Bitmaps of blocks: bit i (LSB first within each byte) stands for block i.
constexpr size_t bitmap_bytes(uint32_t blocks) { return blocks / 8 + (blocks % 8 != 0); }
inline bool bit_set(const std::vector<uint8_t>& map, uint32_t i) {
  return i / 8 < map.size() && ((map[i / 8] >> (i % 8)) & 1) != 0;
}
// How many of `blocks` a loop over `map`'s set bits must visit: no further
// than the map goes, whatever count a peer declared.
inline uint32_t bitmap_span(const std::vector<uint8_t>& map, uint32_t blocks) {
  return static_cast<uint32_t>(std::min<uint64_t>(blocks, uint64_t{map.size()} * 8));
}
inline void set_bit(std::vector<uint8_t>& map, uint32_t i, bool on = true) {
  if (map.size() <= i / 8) map.resize(i / 8 + 1, 0);
  if (on) {
    map[i / 8] = static_cast<uint8_t>(map[i / 8] | (1u << (i % 8)));
  } else {
    map[i / 8] = static_cast<uint8_t>(map[i / 8] & ~(1u << (i % 8)));
  }
}
inline uint32_t bits_set(const std::vector<uint8_t>& map) {
  uint32_t n = 0;
  for (uint8_t b : map) n += static_cast<uint32_t>(__builtin_popcount(b));
  return n;
}
// True when no bit at `blocks` or beyond is set.
inline bool bits_within(const std::vector<uint8_t>& map, uint32_t blocks) {
  if (map.size() > bitmap_bytes(blocks)) return false;
  for (uint32_t i = blocks; i < map.size() * 8; ++i)
    if (bit_set(map, i)) return false;
  return true;
}

}  // namespace rcp
