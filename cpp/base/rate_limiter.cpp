#include "base/rate_limiter.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace rcp {

RateLimiter::RateLimiter(uint64_t bytes_per_second, Nanos burst)
    : rate_(std::max<uint64_t>(bytes_per_second, 1)), burst_(burst) {}

Nanos RateLimiter::reserve(uint64_t bytes, Nanos now) {
  // 128-bit: a 64 MiB chunk at a few bytes/s would overflow 64 bits of nanoseconds.
  const auto cost = static_cast<Nanos>(std::min<unsigned __int128>(
      static_cast<unsigned __int128>(bytes) * kSeconds / rate_, static_cast<unsigned __int128>(UINT64_MAX / 4)));
  std::lock_guard lock(mu_);
  // Idle time earns no credit beyond the burst: the booking restarts at now.
  // The bytes are charged before they go: by any time t, no more than the
  // rate's worth since the start (plus the burst) has been let through.
  booked_until_ = std::max(booked_until_, now) + cost;
  return booked_until_ > now + burst_ ? booked_until_ - now - burst_ : 0;
}

void RateLimiter::acquire(uint64_t bytes) {
  const Nanos wait = reserve(bytes, monotonic_now());
  if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
}

}  // namespace rcp
