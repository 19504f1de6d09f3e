// libFuzzer target: the --partial record (copy/partial_file.h), which anyone
// who can write the destination directory may have written, parsed for a
// fixed announced file (the seeds in fuzz/corpus/fuzz_partial are records of it).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "copy/partial_file.h"
#include "wire/partial_blocks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const rcp::PartialKey key{"big.bin", 3 * (4ull << 20) + 100, 1700000000, 123456789};
  const std::vector<uint8_t> bytes(data, data + size);
  auto r = rcp::partial_record::parse(bytes, key);
  if (r && r->size() > rcp::partial_blocks(key.size)) __builtin_trap();  // never more blocks than the file has
  return 0;
}
