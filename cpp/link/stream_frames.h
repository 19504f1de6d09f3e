// The framing a Link's logical streams share on one byte stream (SSH
// channel, pipes): docs/protocol.md, "Link over a byte stream". Each side
// first writes the 8-byte preface, then frames:
//
//   type u8 | flags u8 | stream u64 | length u32 | payload (length bytes)
//
// all big-endian. Every length is checked against its type's bound before
// a byte of payload is buffered, so a hostile peer costs at most one frame.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace rcp {

inline constexpr std::array<uint8_t, 8> kStreamPreface{'R', 'C', 'P', 'L', 'I', 'N', 'K', '1'};
inline constexpr size_t kStreamFrameHeader = 14;
inline constexpr uint32_t kMaxStreamDataPayload = 64u << 10;
inline constexpr uint32_t kMaxCloseReason = 1024;

enum class StreamFrameType : uint8_t {
  data = 1,     // stream bytes; flag kFin ends the stream
  credit = 2,   // payload u64: the sender of this frame may receive that many more bytes on `stream`
  streams = 3,  // payload u64: the peer may open that many more unidirectional streams
  close = 4,    // payload u64 application error, then the reason (UTF-8)
};
inline constexpr uint8_t kFin = 0x01;

struct StreamFrame {
  StreamFrameType type = StreamFrameType::data;
  uint8_t flags = 0;
  uint64_t stream = 0;
  std::vector<uint8_t> payload;

  uint64_t value() const;  // credit / streams / close: the leading u64
};

// Appends one encoded frame to `out`.
void encode_stream_frame(std::vector<uint8_t>& out, StreamFrameType type, uint8_t flags, uint64_t stream,
                         std::span<const uint8_t> payload);
void encode_stream_value(std::vector<uint8_t>& out, StreamFrameType type, uint64_t stream, uint64_t value,
                         std::span<const uint8_t> tail = {});

// Incremental decoder: feed bytes as they come, take frames with next().
// The first error is final (the link is then closed).
class StreamFrameDecoder {
 public:
  // Buffers at most one frame's header and payload of what was fed but not
  // yet taken; the caller feeds the next read only once next() gave nothing.
  Result<void> feed(std::span<const uint8_t> bytes);
  // A whole frame, or nothing yet.
  Result<std::optional<StreamFrame>> next();
  // Bytes of a frame (or of the preface) were fed that complete nothing yet.
  bool mid_frame() const;

 private:
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
  bool preface_seen_ = false;
  Error failed_;
};

}  // namespace rcp
