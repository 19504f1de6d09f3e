#include "wire/chunk_header.h"

#include <cstring>

#include "wire/limits.h"
#include "wire/partial_blocks.h"

namespace rcp {

std::vector<uint8_t> ChunkHeader::encode() const {
  if (!sparse && reused.empty())
    return encode_message(MsgType::chunk, file_id, root, relpath, size, mode, mtime_s, mtime_ns, chunk, nchunks, offset,
                          length);
  std::vector<uint64_t> flat;
  if (!sparse) {  // `reused` comes after the extents: all of the chunk is one
    flat = {0, length};
  } else {
    flat.reserve(2 * extents.size());
    for (const auto& [start, len] : extents) {
      flat.push_back(start);
      flat.push_back(len);
    }
  }
  if (!reused.empty())
    return encode_message(MsgType::chunk, file_id, root, relpath, size, mode, mtime_s, mtime_ns, chunk, nchunks, offset,
                          length, flat, reused);
  return encode_message(MsgType::chunk, file_id, root, relpath, size, mode, mtime_s, mtime_ns, chunk, nchunks, offset,
                        length, flat);
}

uint64_t ChunkHeader::wire_length() const {
  if (!sparse) return length;
  uint64_t sum = 0;
  for (const auto& e : extents) sum += e.second;
  return sum;
}

Result<ChunkHeader> ChunkHeader::decode(std::span<const uint8_t> body) {
  auto m = decode_message(body);
  if (!m) return m.error();
  if (m->type != static_cast<uint32_t>(MsgType::chunk))
    return make_error(Errc::protocol, "data stream does not start with a chunk header");
  ChunkHeader h;
  auto u = [&](size_t i, const char* what, uint64_t max, auto& out) -> Result<void> {
    auto v = m->get_uint(i, what);
    if (!v) return v.error();
    if (*v > max) return make_error(Errc::protocol, std::string("chunk field '") + what + "' out of range");
    out = static_cast<std::remove_reference_t<decltype(out)>>(*v);
    return {};
  };
  if (auto r = u(0, "file_id", UINT64_MAX, h.file_id); !r) return r.error();
  if (auto r = u(1, "root", UINT32_MAX, h.root); !r) return r.error();
  auto rel = m->get_str(2, "relpath", kMaxPathBytes);
  if (!rel) return rel.error();
  h.relpath = std::move(*rel);
  if (auto r = u(3, "size", UINT64_MAX, h.size); !r) return r.error();
  if (auto r = u(4, "mode", 07777, h.mode); !r) return r.error();
  auto mtime = m->get_int(5, "mtime_s");  // may be negative (before 1970)
  if (!mtime) return mtime.error();
  h.mtime_s = *mtime;
  if (auto r = u(6, "mtime_ns", 999999999, h.mtime_ns); !r) return r.error();
  if (auto r = u(7, "chunk", UINT32_MAX, h.chunk); !r) return r.error();
  if (auto r = u(8, "nchunks", UINT32_MAX, h.nchunks); !r) return r.error();
  if (auto r = u(9, "offset", UINT64_MAX, h.offset); !r) return r.error();
  if (auto r = u(10, "length", UINT64_MAX, h.length); !r) return r.error();
  if (m->fields.size() > 11) {  // appended in protocol 5: a sparse chunk's data extents
    auto flat = m->get_uint_list(11, "extents", 2 * kMaxExtents);
    if (!flat) return flat.error();
    if (flat->size() % 2 != 0) return make_error(Errc::protocol, "chunk extents must come in pairs");
    h.sparse = true;
    uint64_t end = 0;  // of the previous extent: each starts after it, apart from it
    for (size_t i = 0; i < flat->size(); i += 2) {
      const uint64_t start = (*flat)[i], len = (*flat)[i + 1];
      if (len == 0 || (i > 0 && start <= end) || start > h.length || len > h.length - start)
        return make_error(Errc::protocol, "chunk extents out of order, empty or outside the chunk");
      end = start + len;
      h.extents.emplace_back(start, len);
    }
    // One extent over the whole chunk is a dense chunk (what precedes `reused`).
    if (h.extents.size() == 1 && h.extents[0] == std::pair<uint64_t, uint64_t>{0, h.length}) {
      h.sparse = false;
      h.extents.clear();
    }
  }
  if (m->fields.size() > 12) {  // appended in protocol 5
    auto reused = m->get_bin(12, "reused", kMaxBlockBitmap);
    if (!reused) return reused.error();
    h.reused = std::move(*reused);
  }
  if (h.nchunks == 0 || h.chunk >= h.nchunks) return make_error(Errc::protocol, "chunk index out of range");
  if (!h.reused.empty() && (h.nchunks == 1 || h.reused.size() != bitmap_bytes(h.nchunks) ||
                            !bits_within(h.reused, h.nchunks) || bit_set(h.reused, h.chunk)))
    return make_error(Errc::protocol, "chunk's reused blocks do not fit the file's chunks");
  if (h.length > h.size || h.offset > h.size - h.length)
    return make_error(Errc::protocol, "chunk extends past the declared file size");
  if (h.nchunks == 1) {
    if (h.offset != 0 || h.length != h.size)
      return make_error(Errc::protocol, "a single chunk must hold the whole file");
    return h;
  }
  // Several chunks of one length C: their number follows from the size, so a
  // peer cannot make the receiver track more chunks than its bytes justify.
  const bool last = h.chunk == h.nchunks - 1;
  if (last && h.offset % (h.nchunks - 1) != 0) return make_error(Errc::protocol, "chunk offset off the chunk grid");
  const uint64_t c = h.chunk_bytes();
  if (c < kMinChunkBytes) return make_error(Errc::protocol, "chunks shorter than the protocol's minimum");
  if (h.size / c + (h.size % c != 0) != h.nchunks)
    return make_error(Errc::protocol, "chunk count does not fit the file size");
  if (h.offset != static_cast<uint64_t>(h.chunk) * c || (last ? h.length != h.size - h.offset : h.length != c))
    return make_error(Errc::protocol, "chunk offset or length off the chunk grid");
  return h;
}

uint64_t ChunkHeader::chunk_bytes() const {
  if (nchunks <= 1) return size;
  return chunk == nchunks - 1 ? offset / (nchunks - 1) : length;
}

Xxh128::Xxh128() : state_(XXH3_createState()) { XXH3_128bits_reset(state_); }
Xxh128::~Xxh128() { XXH3_freeState(state_); }
void Xxh128::update(std::span<const uint8_t> data) { XXH3_128bits_update(state_, data.data(), data.size()); }
namespace {
Digest128 canonical(XXH128_hash_t h) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  Digest128 d;
  std::memcpy(d.data(), c.digest, d.size());
  return d;
}
}  // namespace

Digest128 Xxh128::digest() const { return canonical(XXH3_128bits_digest(state_)); }

Digest128 Xxh128::of(std::span<const uint8_t> data) { return canonical(XXH3_128bits(data.data(), data.size())); }

}  // namespace rcp
