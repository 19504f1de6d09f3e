#include "link/send_window.h"

#include <gtest/gtest.h>

namespace rcp {
namespace {

constexpr uint64_t kMiB = 1u << 20;

TEST(SendWindow, FollowsTheCongestionWindowBetweenFloorAndCap) {
  const SendWindowPolicy p{8 * kMiB, 32 * kMiB, 3};
  // 100 ms at 200 Mbit/s: BBR's cwnd ~5 MiB -> three of them.
  EXPECT_EQ(send_window_for(5 * kMiB, p), 15 * kMiB);
  EXPECT_EQ(send_window_for(10 * kMiB, p), 30 * kMiB);
}

TEST(SendWindow, NeverBelowTheFloor) {
  const SendWindowPolicy p{8 * kMiB, 32 * kMiB, 3};
  EXPECT_EQ(send_window_for(64u << 10, p), 8 * kMiB);  // loopback: a tiny BDP
  EXPECT_EQ(send_window_for(1, p), 8 * kMiB);
}

TEST(SendWindow, NeverAboveTheCap) {
  const SendWindowPolicy p{8 * kMiB, 32 * kMiB, 3};
  EXPECT_EQ(send_window_for(11 * kMiB, p), 32 * kMiB);
  EXPECT_EQ(send_window_for(UINT64_MAX, p), 32 * kMiB);  // no overflow
}

TEST(SendWindow, UnknownCongestionWindowMeansTheCap) {
  // A byte-stream transport (TCP) has no cwnd to go by.
  EXPECT_EQ(send_window_for(0, SendWindowPolicy{8 * kMiB, 32 * kMiB, 3}), 32 * kMiB);
}

TEST(SendWindow, ACapBelowTheFloorWins) {
  // A small configured send buffer (tests, the relay) is never exceeded.
  EXPECT_EQ(send_window_for(1, SendWindowPolicy{8 * kMiB, 4 * kMiB, 3}), 4 * kMiB);
}

}  // namespace
}  // namespace rcp
