#include <gtest/gtest.h>

#include "quic/send_buffer.h"

namespace rcp {
namespace {

TEST(SendBuffer, TracksSentAndAckedAcrossChunks) {
  SendBuffer b;
  b.append({1, 2, 3});
  b.append({4, 5});
  ngtcp2_vec v[4];
  ASSERT_EQ(b.unsent(v, 4), 2u);
  EXPECT_EQ(v[0].len, 3u);
  EXPECT_EQ(v[1].len, 2u);
  b.mark_sent(4);
  ASSERT_EQ(b.unsent(v, 4), 1u);
  EXPECT_EQ(v[0].len, 1u);
  EXPECT_EQ(v[0].base[0], 5);
  EXPECT_EQ(b.ack_to(2), 2u);
  EXPECT_EQ(b.unacked(), 3u);
  EXPECT_EQ(b.ack_to(2), 0u);  // repeated ack frees nothing
  EXPECT_EQ(b.ack_to(3), 1u);  // first chunk now fully acked and dropped
  b.mark_sent(1);
  EXPECT_FALSE(b.has_unsent());
  EXPECT_EQ(b.ack_to(100), 2u);  // clamped to what exists
  EXPECT_EQ(b.unacked(), 0u);
}

TEST(SendBuffer, FinLifecycle) {
  SendBuffer b;
  EXPECT_FALSE(b.fin_pending());
  b.append({9});
  b.finish();
  EXPECT_TRUE(b.fin_pending());
  b.mark_sent(1);
  b.mark_fin_sent();
  EXPECT_FALSE(b.fin_pending());
  EXPECT_FALSE(b.done());
  b.ack_to(1);
  EXPECT_TRUE(b.done());
}

TEST(SendBuffer, UnsentRespectsMax) {
  SendBuffer b;
  for (int i = 0; i < 10; ++i) b.append(std::vector<uint8_t>(10, static_cast<uint8_t>(i)));
  ngtcp2_vec v[3];
  EXPECT_EQ(b.unsent(v, 3), 3u);
  EXPECT_EQ(b.unsent_bytes(), 100u);
  b.append({});
  EXPECT_EQ(b.end_offset(), 100u);  // empty appends are ignored
}

}  // namespace
}  // namespace rcp
