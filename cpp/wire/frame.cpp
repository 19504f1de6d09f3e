#include "wire/frame.h"

#include <algorithm>
#include <string>

namespace rcp {

namespace {

// Reserve at most this much for a body up front, however large the declared
// length: a peer that sends only a header then stalls pins little memory, and
// a genuinely large body still grows geometrically.
constexpr size_t kMaxInitialReserve = 64 * 1024;

}  // namespace

uint32_t frame_body_length(std::span<const uint8_t, kFrameHeaderSize> header) {
  return static_cast<uint32_t>(header[0]) << 24 | static_cast<uint32_t>(header[1]) << 16 |
         static_cast<uint32_t>(header[2]) << 8 | static_cast<uint32_t>(header[3]);
}

// Precondition: body.size() fits 32 bits (every body is far below the decoder limit).
void append_frame(std::vector<uint8_t>& out, std::span<const uint8_t> body) {
  const auto n = static_cast<uint32_t>(body.size());
  const uint8_t header[kFrameHeaderSize] = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                                            static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  out.insert(out.end(), header, header + kFrameHeaderSize);
  out.insert(out.end(), body.begin(), body.end());
}

std::vector<uint8_t> encode_frame(std::span<const uint8_t> body) {
  std::vector<uint8_t> out;
  out.reserve(kFrameHeaderSize + body.size());
  append_frame(out, body);
  return out;
}

Result<void> FrameDecoder::feed(std::span<const uint8_t> bytes) {
  if (failed_) return error_;
  while (!bytes.empty()) {
    if (!in_body_) {
      // Header: collect 4 bytes, possibly across several feeds.
      const size_t take = std::min(bytes.size(), kFrameHeaderSize - header_have_);
      std::copy_n(bytes.begin(), take, header_ + header_have_);
      header_have_ += take;
      bytes = bytes.subspan(take);
      if (header_have_ < kFrameHeaderSize) break;
      header_have_ = 0;
      const uint32_t len = frame_body_length(header_);
      // Checked before anything is allocated: a hostile length costs nothing.
      if (len > max_body_) {
        failed_ = true;
        error_ = make_error(Errc::too_large, "frame body of " + std::to_string(len) + " bytes exceeds the limit of " +
                                                 std::to_string(max_body_));
        return error_;
      }
      if (len == 0) {  // an empty body is complete at once
        ready_.emplace_back();
        continue;
      }
      body_.clear();
      body_.reserve(std::min<size_t>(len, kMaxInitialReserve));
      body_need_ = len;
      in_body_ = true;
    }
    // Body: copy what is there, up to the declared length.
    const size_t take = std::min(bytes.size(), body_need_ - body_.size());
    body_.insert(body_.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(take));
    bytes = bytes.subspan(take);
    if (body_.size() == body_need_) {
      ready_.push_back(std::move(body_));
      body_ = {};
      in_body_ = false;
    }
  }
  return {};
}

bool FrameDecoder::next(std::vector<uint8_t>& body) {
  if (ready_.empty()) return false;
  body = std::move(ready_.front());
  ready_.pop_front();
  return true;
}

bool FrameDecoder::mid_frame() const { return in_body_ || header_have_ > 0; }

size_t FrameDecoder::buffered_bytes() const {
  size_t n = header_have_ + body_.size();
  for (const auto& b : ready_) n += b.size();
  return n;
}

}  // namespace rcp
