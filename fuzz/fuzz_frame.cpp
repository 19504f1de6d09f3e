// libFuzzer target: the frame decoder fed a hostile byte stream in random
// splits, then every complete body through the sealed-control opener.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "wire/control_channel.h"
#include "wire/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // First byte picks a small body limit (exercises the too_large path),
  // second the split size; the rest is the stream.
  const uint32_t limit = 16u + data[0] * 64u;
  const size_t step = 1 + data[1] % 17;
  std::span<const uint8_t> stream(data + 2, size - 2);
  rcp::FrameDecoder dec(limit);
  rcp::SessionKey key{};
  rcp::ControlOpener opener(key, rcp::Direction::client_to_server);
  std::vector<uint8_t> body;
  while (!stream.empty()) {
    const size_t n = std::min(step, stream.size());
    if (!dec.feed(stream.first(n))) return 0;  // refused: the decoder stays failed
    stream = stream.subspan(n);
    while (dec.next(body)) {
      if (body.size() > limit) __builtin_trap();  // the limit is the contract
      (void)opener.open(body);
    }
  }
  (void)dec.mid_frame();
  return 0;
}
