#include "chunk_header.h"

#include <cstring>

namespace rcp {

std::vector<uint8_t> ChunkHeader::encode() const {
  return encode_message(MsgType::chunk, file_id, root, relpath, size, mode, mtime_s, mtime_ns, chunk, nchunks, offset,
                        length);
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
  auto rel = m->get_str(2, "relpath", 4096);
  if (!rel) return rel.error();
  h.relpath = std::move(*rel);
  if (auto r = u(3, "size", UINT64_MAX, h.size); !r) return r.error();
  if (auto r = u(4, "mode", 07777, h.mode); !r) return r.error();
  // mtime may be negative (before 1970): accept either integer kind.
  if (m->fields.size() <= 5) return make_error(Errc::protocol, "chunk field 'mtime_s' is missing");
  const auto& t = m->fields[5];
  if (t.type == msgpack::type::POSITIVE_INTEGER && t.via.u64 <= INT64_MAX)
    h.mtime_s = static_cast<int64_t>(t.via.u64);
  else if (t.type == msgpack::type::NEGATIVE_INTEGER)
    h.mtime_s = t.via.i64;
  else
    return make_error(Errc::protocol, "chunk field 'mtime_s' must be an integer");
  if (auto r = u(6, "mtime_ns", 999999999, h.mtime_ns); !r) return r.error();
  if (auto r = u(7, "chunk", UINT32_MAX, h.chunk); !r) return r.error();
  if (auto r = u(8, "nchunks", UINT32_MAX, h.nchunks); !r) return r.error();
  if (auto r = u(9, "offset", UINT64_MAX, h.offset); !r) return r.error();
  if (auto r = u(10, "length", UINT64_MAX, h.length); !r) return r.error();
  if (h.nchunks == 0 || h.chunk >= h.nchunks) return make_error(Errc::protocol, "chunk index out of range");
  if (h.length > h.size || h.offset > h.size - h.length)
    return make_error(Errc::protocol, "chunk extends past the declared file size");
  // Every chunk but the last carries at least one byte, so nchunks <= size (+1 for empty files).
  if (h.nchunks > h.size + 1) return make_error(Errc::protocol, "more chunks than bytes");
  return h;
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
