// SendBuffer: one stream's outgoing bytes, kept until the peer acknowledges
// them (ngtcp2 retransmits straight from these buffers, so they must not move
// or be freed before the ack).
#pragma once

#include <ngtcp2/ngtcp2.h>

#include <cstdint>
#include <deque>
#include <vector>

namespace rcp {

class SendBuffer {
 public:
  void append(std::vector<uint8_t> chunk);
  void finish() { fin_wanted_ = true; }

  // Unsent bytes as iovecs (up to max); returns how many were filled.
  size_t unsent(ngtcp2_vec* out, size_t max) const;
  bool has_unsent() const { return sent_ < end_; }
  uint64_t unsent_bytes() const { return end_ - sent_; }
  // FIN not yet handed to ngtcp2 (with or without data).
  bool fin_pending() const { return fin_wanted_ && !fin_sent_; }
  void mark_sent(size_t n);  // n bytes handed to ngtcp2
  void mark_fin_sent() { fin_sent_ = true; }
  // Acknowledged up to `offset` (ngtcp2 reports acks as a growing prefix).
  // Returns the number of bytes freed.
  uint64_t ack_to(uint64_t offset);

  uint64_t unacked() const { return end_ - acked_; }
  uint64_t end_offset() const { return end_; }
  bool done() const { return fin_sent_ && acked_ == end_; }

 private:
  std::deque<std::vector<uint8_t>> chunks_;
  uint64_t front_offset_ = 0;  // stream offset of chunks_.front()[0]
  uint64_t acked_ = 0;
  uint64_t sent_ = 0;
  uint64_t end_ = 0;
  bool fin_wanted_ = false;
  bool fin_sent_ = false;
};

}  // namespace rcp
