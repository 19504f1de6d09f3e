#include "frame.h"

#include <algorithm>

namespace rcp {

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
      size_t take = std::min(bytes.size(), kFrameHeaderSize - header_have_);
      std::copy_n(bytes.begin(), take, header_ + header_have_);
      header_have_ += take;
      bytes = bytes.subspan(take);
      if (header_have_ < kFrameHeaderSize) break;
      const uint32_t len = static_cast<uint32_t>(header_[0]) << 24 | static_cast<uint32_t>(header_[1]) << 16 |
                           static_cast<uint32_t>(header_[2]) << 8 | header_[3];
      header_have_ = 0;
      // Checked before any allocation: a hostile length costs nothing.
      if (len > max_body_) {
        failed_ = true;
        error_ = make_error(Errc::too_large, "frame of " + std::to_string(len) + " bytes exceeds the limit of " +
                                                 std::to_string(max_body_));
        return error_;
      }
      body_.clear();
      body_need_ = len;
      in_body_ = true;
      if (len == 0) {
        ready_.push_back({});
        in_body_ = false;
        continue;
      }
      body_.reserve(len);
    }
    size_t take = std::min(bytes.size(), body_need_ - body_.size());
    body_.insert(body_.end(), bytes.begin(), bytes.begin() + static_cast<long>(take));
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
