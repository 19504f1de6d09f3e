// libFuzzer target: msgpack message decoding and every typed accessor, plus
// the Hello and ChunkHeader decoders, on hostile bodies.
#include <cstddef>
#include <cstdint>
#include <span>

#include "wire/chunk_header.h"
#include "wire/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> body(data, size);
  (void)rcp::ChunkHeader::decode(body);
  auto m = rcp::decode_message(body);
  if (!m) return 0;
  (void)rcp::Hello::decode(*m);
  for (size_t i = 0; i < m->fields.size() + 1; ++i) {  // one past the end too
    (void)m->get_uint(i, "field");
    (void)m->get_str(i, "field", 64);
    (void)m->get_bin(i, "field", 64);
  }
  return 0;
}
