#include "base/interval_set.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace rcp {
namespace {

TEST(IntervalSet, InOrderIdsStayOneRange) {
  IntervalSet s;
  for (uint64_t i = 0; i < 100000; ++i) s.insert(i);
  EXPECT_EQ(s.ranges(), 1u);
  EXPECT_TRUE(s.contains(0));
  EXPECT_TRUE(s.contains(99999));
  EXPECT_FALSE(s.contains(100000));
}

TEST(IntervalSet, GapsMergeWhenFilled) {
  IntervalSet s;
  s.insert(5);
  s.insert(7);
  EXPECT_EQ(s.ranges(), 2u);
  EXPECT_FALSE(s.contains(6));
  EXPECT_FALSE(s.contains(4));
  s.insert(6);
  EXPECT_EQ(s.ranges(), 1u);
  for (uint64_t v : {5, 6, 7}) EXPECT_TRUE(s.contains(v));
  s.insert(6);  // again: no change
  EXPECT_EQ(s.ranges(), 1u);
}

TEST(IntervalSet, Extremes) {
  IntervalSet s;
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  s.insert(max);
  s.insert(0);
  EXPECT_TRUE(s.contains(max));
  EXPECT_TRUE(s.contains(0));
  EXPECT_FALSE(s.contains(max - 1));
  s.insert(max - 1);
  EXPECT_EQ(s.ranges(), 2u);
  EXPECT_TRUE(s.contains(max - 1));
}

}  // namespace
}  // namespace rcp
