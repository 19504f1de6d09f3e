#include "base/rate_limiter.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace rcp {
namespace {

constexpr uint64_t kRate = 1000000;  // bytes per second: 1 byte = 1 µs
constexpr Nanos kBurst = 10 * kMillis;

TEST(RateLimiter, WithinTheBurstNothingWaits) {
  RateLimiter r(kRate, kBurst);
  EXPECT_EQ(r.reserve(5000, kSeconds), 0u);  // 5 ms of bytes < 10 ms burst
  EXPECT_EQ(r.reserve(5000, kSeconds), 0u);  // 10 ms booked: exactly the burst
  EXPECT_EQ(r.reserve(1000, kSeconds), 1 * kMillis);
}

TEST(RateLimiter, LongRunsAverageTheRate) {
  // Send 1000-byte blocks as fast as allowed: after N blocks the time taken
  // (the sum of the waits, following the clock) is N ms minus the burst.
  RateLimiter r(kRate, kBurst);
  Nanos now = 7 * kSeconds;
  const Nanos t0 = now;
  for (int i = 0; i < 2000; ++i) now += r.reserve(1000, now);
  EXPECT_EQ(now - t0, 2000 * kMillis - kBurst);
}

TEST(RateLimiter, IdleTimeEarnsNoMoreThanTheBurst) {
  RateLimiter r(kRate, kBurst);
  EXPECT_EQ(r.reserve(1000, kSeconds), 0u);
  // A minute of silence, then a big block: only the burst goes free.
  const Nanos later = 61 * kSeconds;
  EXPECT_EQ(r.reserve(100000, later), 100 * kMillis - kBurst);
}

TEST(RateLimiter, HugeBlocksAtTinyRatesDoNotOverflow) {
  RateLimiter r(1, 0);
  const Nanos wait = r.reserve(64ull << 20, kSeconds);
  EXPECT_EQ(wait, (64ull << 20) * kSeconds);  // 64 Mi seconds: computed in 128 bits
}

TEST(RateLimiter, SharedByThreadsTheTotalHolds) {
  // 4 threads x 25 blocks of 2000 bytes at 1 MB/s: 200 ms of bytes in all.
  RateLimiter r(kRate, 0);
  const Nanos t0 = monotonic_now();
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&r] {
      for (int i = 0; i < 25; ++i) r.acquire(2000);
    });
  for (auto& t : threads) t.join();
  EXPECT_GE(monotonic_now() - t0, 195 * kMillis);  // a lower bound only: sleeps may run long
}

}  // namespace
}  // namespace rcp
