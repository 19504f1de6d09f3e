// ChunkHeader: the first frame of every data stream between source and
// destination. A file travels as one or more chunks, each on its own stream:
//   kind byte (data) | frame(msgpack ChunkHeader) | `length` raw bytes | trailer
// where the trailer is the 16-byte xxh3-128 of those bytes and a verdict byte.
// Each chunk carries the file's metadata, so chunks need no ordering with
// the control stream or with each other.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <xxhash.h>

#include "base/result.h"
#include "wire/message.h"

namespace rcp {

// Every chunk of a file but its last is this long at least, so a file's
// chunk count is bounded by its declared size.
constexpr uint64_t kMinChunkBytes = 1ull << 20;
constexpr uint32_t kMaxChunkHeader = 96 * 1024;  // a relative path of up to 64 KiB, the numbers, the extents
// A sparse chunk names at most this many data extents (the source fills the
// smallest holes with zeros when a chunk has more).
constexpr size_t kMaxExtents = 1024;
constexpr size_t kDigestSize = 16;
constexpr size_t kTrailerSize = kDigestSize + 1;
// The source reads a chunk, then checks the file again: `void_attempt` says it
// changed meanwhile, so the destination discards this attempt of the file (the
// source sends it again under a new file id, or reports it failed).
enum class ChunkVerdict : uint8_t { keep = 0, void_attempt = 1 };
using Digest128 = std::array<uint8_t, kDigestSize>;

struct ChunkHeader {
  uint64_t file_id = 0;
  uint32_t root = 0;    // index of the source operand
  std::string relpath;  // under that root; "" = the root itself
  uint64_t size = 0;    // whole file
  uint32_t mode = 0;
  int64_t mtime_s = 0;
  uint32_t mtime_ns = 0;
  uint32_t chunk = 0;  // index of this chunk
  uint32_t nchunks = 1;
  uint64_t offset = 0;
  uint64_t length = 0;
  // Appended (protocol 5): a sparse chunk. Only these extents of it travel,
  // as (start, length) relative to `offset`, in order, apart, non-empty and
  // inside the chunk; the rest is a hole the destination leaves unwritten.
  // Absent (`sparse` false): all `length` bytes travel.
  bool sparse = false;
  std::vector<std::pair<uint64_t, uint64_t>> extents{};
  // Appended (protocol 5): with a resumed `--partial` file, the chunks (=
  // blocks) the source does not send because the destination's kept copy
  // matched: a bitmap of nchunks bits, the same in every chunk of the file,
  // never this chunk's bit. Empty: every chunk comes.
  std::vector<uint8_t> reused;

  std::vector<uint8_t> encode() const;
  // The bytes that travel after the header: `length`, or the extents' sum.
  uint64_t wire_length() const;
  // The chunk length every chunk of this file has but the last.
  uint64_t chunk_bytes() const;
  // Type-checks every field and the chunk geometry: chunks of one length C
  // (>= kMinChunkBytes unless there is one chunk), nchunks = ceil(size / C),
  // offset = chunk * C, the last one holding the rest.
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
  Digest128 digest() const;                            // canonical (big-endian) bytes
  static Digest128 of(std::span<const uint8_t> data);  // one-shot, same result

 private:
  XXH3_state_t* state_;
};

}  // namespace rcp
