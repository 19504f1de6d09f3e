// Frames: a 4-byte big-endian body length, then the body (a msgpack message,
// followed by an HMAC tag on control streams). The length is checked against
// the limit before anything is allocated.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "base/result.h"

namespace rcp {

constexpr size_t kFrameHeaderSize = 4;
constexpr uint32_t kDefaultMaxFrameBody = 1u << 20;

// The body length a frame header declares (big-endian); the one decoder of it.
uint32_t frame_body_length(std::span<const uint8_t, kFrameHeaderSize> header);

// header + body in one buffer.
std::vector<uint8_t> encode_frame(std::span<const uint8_t> body);
void append_frame(std::vector<uint8_t>& out, std::span<const uint8_t> body);

// Incremental decoder for one byte stream.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_body = kDefaultMaxFrameBody) : max_body_(max_body) {}

  // Consumes bytes. A declared length over the limit is Errc::too_large, and
  // the decoder stays failed (every later call returns the same error).
  Result<void> feed(std::span<const uint8_t> bytes);
  // Next complete body, in order; false when none is complete.
  bool next(std::vector<uint8_t>& body);
  // True while a frame has started but not ended: at stream end this is truncation.
  bool mid_frame() const;
  size_t buffered_bytes() const;

 private:
  uint32_t max_body_;
  bool failed_ = false;
  Error error_;
  uint8_t header_[kFrameHeaderSize]{};
  size_t header_have_ = 0;
  std::vector<uint8_t> body_;
  size_t body_need_ = 0;
  bool in_body_ = false;
  std::deque<std::vector<uint8_t>> ready_;
};

}  // namespace rcp
