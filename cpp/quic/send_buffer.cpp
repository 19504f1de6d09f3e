#include "quic/send_buffer.h"

#include <algorithm>

namespace rcp {

void SendBuffer::append(std::vector<uint8_t> chunk) {
  if (chunk.empty()) return;
  end_ += chunk.size();
  chunks_.push_back(std::move(chunk));
}

size_t SendBuffer::unsent(ngtcp2_vec* out, size_t max) const {
  size_t n = 0;
  uint64_t off = front_offset_;
  for (const auto& c : chunks_) {
    if (n == max) break;
    uint64_t c_end = off + c.size();
    if (c_end > sent_) {
      uint64_t skip = sent_ > off ? sent_ - off : 0;
      out[n].base = const_cast<uint8_t*>(c.data() + skip);
      out[n].len = static_cast<size_t>(c.size() - skip);
      ++n;
    }
    off = c_end;
  }
  return n;
}

void SendBuffer::mark_sent(size_t n) { sent_ = std::min<uint64_t>(sent_ + n, end_); }

uint64_t SendBuffer::ack_to(uint64_t offset) {
  offset = std::min(offset, end_);
  if (offset <= acked_) return 0;
  uint64_t freed = offset - acked_;
  acked_ = offset;
  while (!chunks_.empty() && front_offset_ + chunks_.front().size() <= acked_) {
    front_offset_ += chunks_.front().size();
    chunks_.pop_front();
  }
  return freed;
}

}  // namespace rcp
