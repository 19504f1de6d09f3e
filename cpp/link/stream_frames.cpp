#include "link/stream_frames.h"

#include <algorithm>
#include <cstring>

namespace rcp {

namespace {

void put_be(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t get_be(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// The payload bounds of each type; an unknown type is an error.
Result<void> check_length(uint8_t type, uint32_t length) {
  switch (static_cast<StreamFrameType>(type)) {
    case StreamFrameType::data:
      if (length > kMaxStreamDataPayload) break;
      return {};
    case StreamFrameType::credit:
    case StreamFrameType::streams:
      if (length != 8) break;
      return {};
    case StreamFrameType::close:
      if (length < 8 || length > 8 + kMaxCloseReason) break;
      return {};
    default: return make_error(Errc::protocol, "unknown link frame type " + std::to_string(type));
  }
  return make_error(Errc::too_large, "link frame of type " + std::to_string(type) + " with a bad length (" +
                                         std::to_string(length) + " bytes)");
}

}  // namespace

uint64_t StreamFrame::value() const { return payload.size() >= 8 ? get_be(payload.data(), 8) : 0; }

void encode_stream_frame(std::vector<uint8_t>& out, StreamFrameType type, uint8_t flags, uint64_t stream,
                         std::span<const uint8_t> payload) {
  out.push_back(static_cast<uint8_t>(type));
  out.push_back(flags);
  put_be(out, stream, 8);
  put_be(out, payload.size(), 4);
  out.insert(out.end(), payload.begin(), payload.end());
}

void encode_stream_value(std::vector<uint8_t>& out, StreamFrameType type, uint64_t stream, uint64_t value,
                         std::span<const uint8_t> tail) {
  out.push_back(static_cast<uint8_t>(type));
  out.push_back(0);
  put_be(out, stream, 8);
  put_be(out, 8 + tail.size(), 4);
  put_be(out, value, 8);
  out.insert(out.end(), tail.begin(), tail.end());
}

Result<void> StreamFrameDecoder::feed(std::span<const uint8_t> bytes) {
  if (failed_.code != Errc::ok) return failed_;
  // Drop what was taken before appending, so the buffer never holds more
  // than the current frame plus one read.
  if (pos_ > 0) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<long>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  return {};
}

Result<std::optional<StreamFrame>> StreamFrameDecoder::next() {
  if (failed_.code != Errc::ok) return failed_;
  const size_t avail = buf_.size() - pos_;
  const uint8_t* p = buf_.data() + pos_;
  if (!preface_seen_) {
    const size_t n = std::min(avail, kStreamPreface.size());
    if (std::memcmp(p, kStreamPreface.data(), n) != 0) {
      failed_ = make_error(Errc::protocol, "the peer does not speak the rcp link framing (bad preface)");
      return failed_;
    }
    if (n < kStreamPreface.size()) return std::optional<StreamFrame>{};
    pos_ += kStreamPreface.size();
    preface_seen_ = true;
    return next();
  }
  if (avail < kStreamFrameHeader) return std::optional<StreamFrame>{};
  const auto length = static_cast<uint32_t>(get_be(p + 10, 4));
  if (auto r = check_length(p[0], length); !r) {
    failed_ = r.error();
    return failed_;
  }
  if (avail < kStreamFrameHeader + length) return std::optional<StreamFrame>{};
  StreamFrame f;
  f.type = static_cast<StreamFrameType>(p[0]);
  f.flags = p[1];
  f.stream = get_be(p + 2, 8);
  f.payload.assign(p + kStreamFrameHeader, p + kStreamFrameHeader + length);
  pos_ += kStreamFrameHeader + length;
  return std::optional<StreamFrame>{std::move(f)};
}

bool StreamFrameDecoder::mid_frame() const { return buf_.size() > pos_; }

}  // namespace rcp
