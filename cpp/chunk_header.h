// ChunkHeader: the first frame of every data stream between source and
// destination. A file travels as one or more chunks, each on its own stream:
//   kind byte (data) | frame(msgpack ChunkHeader) | `length` raw bytes | 16-byte xxh3-128 of those bytes
// Each chunk carries the file's metadata, so chunks need no ordering with
// the control stream or with each other.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <xxhash.h>

#include "message.h"
#include "result.h"

namespace rcp {

constexpr uint64_t kChunkBytes = 64ull << 20;  // large files are split into chunks this big
constexpr uint32_t kMaxChunkHeader = 8192;
constexpr size_t kDigestSize = 16;
using Digest128 = std::array<uint8_t, kDigestSize>;

struct ChunkHeader {
  uint64_t file_id = 0;
  uint32_t root = 0;        // index of the source operand
  std::string relpath;      // under that root; "" = the root itself
  uint64_t size = 0;        // whole file
  uint32_t mode = 0;
  int64_t mtime_s = 0;
  uint32_t mtime_ns = 0;
  uint32_t chunk = 0;       // index of this chunk
  uint32_t nchunks = 1;
  uint64_t offset = 0;
  uint64_t length = 0;

  std::vector<uint8_t> encode() const;
  // Type-checks every field and the chunk geometry (offset+length <= size,
  // chunk < nchunks, nchunks sane for size).
  static Result<ChunkHeader> decode(std::span<const uint8_t> body);
};

// Streaming xxh3-128 (RAII over XXH3_state_t).
class Xxh128 {
 public:
  Xxh128();
  ~Xxh128();
  Xxh128(const Xxh128&) = delete;
  Xxh128& operator=(const Xxh128&) = delete;
  void update(std::span<const uint8_t> data);
  Digest128 digest() const;  // canonical (big-endian) bytes
  static Digest128 of(std::span<const uint8_t> data);  // one-shot, same result

 private:
  XXH3_state_t* state_;
};

}  // namespace rcp
