// RateLimiter: paces bytes to an average rate (rcp -l, scp's bandwidth limit).
// Shared by the source's sending threads, so the limit holds for the copy as
// a whole, not per stream.
#pragma once

#include <cstdint>
#include <mutex>

#include "base/clock.h"

namespace rcp {

class RateLimiter {
 public:
  // `bytes_per_second` > 0. Up to `burst` worth of bytes may go at once
  // after an idle spell; over any longer span the average stays at the rate.
  explicit RateLimiter(uint64_t bytes_per_second, Nanos burst = 50 * kMillis);

  // Books `bytes` as sent at `now` and returns how long the caller must wait
  // before sending them (0: at once). Never blocks; a clock is passed in so
  // tests need not sleep.
  Nanos reserve(uint64_t bytes, Nanos now);

  // reserve() at the monotonic clock's now, then sleeps as long as it says.
  void acquire(uint64_t bytes);

  uint64_t rate() const { return rate_; }

 private:
  const uint64_t rate_;
  const Nanos burst_;
  std::mutex mu_;
  // When everything booked so far has gone at the rate (the theoretical
  // arrival time of the generic cell rate algorithm).
  Nanos booked_until_ = 0;
};

}  // namespace rcp
