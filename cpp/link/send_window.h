// How many unacknowledged bytes a Link lets its writers queue: enough to keep
// the path full, sized from what the congestion controller measured, not a
// constant. On a long path that is a few bandwidth-delay products (what is in
// flight, plus what waits behind a lost packet: the send buffer frees only an
// acknowledged prefix, so one loss holds about a round trip's worth more); on
// loopback, where the BDP is tiny, it stays near the floor, and the sender's
// memory no longer grows to the ceiling whatever the path.
#pragma once

#include <algorithm>
#include <cstdint>

namespace rcp {

struct SendWindowPolicy {
  uint64_t floor = 8u << 20;  // covers start-up, before the estimate means much
  uint64_t cap = 32u << 20;   // QuicConfig::send_buffer
  // Multiple of the congestion window: one in flight, one waiting on
  // retransmissions behind a loss, one queued so the loop never runs dry.
  uint64_t cwnd_multiple = 3;
};

// `cwnd`: the congestion window now (ngtcp2's; with BBR about twice the
// measured BDP). 0 (unknown, e.g. a byte-stream transport): the cap.
inline uint64_t send_window_for(uint64_t cwnd, const SendWindowPolicy& p) {
  if (cwnd == 0) return p.cap;
  const uint64_t floor = std::min(p.floor, p.cap);
  const uint64_t want = cwnd > p.cap / p.cwnd_multiple ? p.cap : cwnd * p.cwnd_multiple;
  return std::clamp(want, floor, p.cap);
}

}  // namespace rcp
