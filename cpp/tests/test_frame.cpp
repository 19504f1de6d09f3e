#include <gtest/gtest.h>

#include "frame.h"

namespace rcp {
namespace {

TEST(Frame, GoldenBytes) {
  std::vector<uint8_t> body{0x01, 0x02, 0x03};
  EXPECT_EQ(encode_frame(body), (std::vector<uint8_t>{0, 0, 0, 3, 1, 2, 3}));
  std::vector<uint8_t> big(0x010203, 7);
  auto f = encode_frame(big);
  EXPECT_EQ(f[0], 0x00);
  EXPECT_EQ(f[1], 0x01);
  EXPECT_EQ(f[2], 0x02);
  EXPECT_EQ(f[3], 0x03);
  EXPECT_EQ(f.size(), 4u + 0x010203);
}

TEST(Frame, DecodesByteByByte) {
  std::vector<uint8_t> wire;
  append_frame(wire, std::vector<uint8_t>{9, 8, 7});
  append_frame(wire, std::vector<uint8_t>{});
  append_frame(wire, std::vector<uint8_t>{42});
  FrameDecoder d;
  std::vector<std::vector<uint8_t>> got;
  std::vector<uint8_t> body;
  for (uint8_t b : wire) {
    ASSERT_TRUE(d.feed({&b, 1}).ok());
    while (d.next(body)) got.push_back(body);
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], (std::vector<uint8_t>{9, 8, 7}));
  EXPECT_TRUE(got[1].empty());
  EXPECT_EQ(got[2], (std::vector<uint8_t>{42}));
  EXPECT_FALSE(d.mid_frame());
}

TEST(Frame, SeveralFramesInOneFeed) {
  std::vector<uint8_t> wire;
  for (uint8_t i = 0; i < 10; ++i) append_frame(wire, std::vector<uint8_t>(i, i));
  FrameDecoder d;
  ASSERT_TRUE(d.feed(wire).ok());
  std::vector<uint8_t> body;
  for (uint8_t i = 0; i < 10; ++i) {
    ASSERT_TRUE(d.next(body));
    EXPECT_EQ(body, std::vector<uint8_t>(i, i));
  }
  EXPECT_FALSE(d.next(body));
}

TEST(Frame, TruncatedFrameIsVisible) {
  auto wire = encode_frame(std::vector<uint8_t>{1, 2, 3, 4});
  FrameDecoder d;
  ASSERT_TRUE(d.feed(std::span(wire).first(wire.size() - 1)).ok());
  std::vector<uint8_t> body;
  EXPECT_FALSE(d.next(body));
  EXPECT_TRUE(d.mid_frame());
  FrameDecoder header_only;
  ASSERT_TRUE(header_only.feed(std::span(wire).first(2)).ok());
  EXPECT_TRUE(header_only.mid_frame());
}

TEST(Frame, OversizeRefusedBeforeAllocation) {
  for (uint32_t len : {1025u, 0xFFFFFFFFu}) {
    FrameDecoder d(1024);
    uint8_t header[4] = {static_cast<uint8_t>(len >> 24), static_cast<uint8_t>(len >> 16),
                         static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)};
    auto r = d.feed(header);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::too_large);
    EXPECT_LT(d.buffered_bytes(), 16u);
    uint8_t more = 0;
    EXPECT_FALSE(d.feed({&more, 1}).ok());  // stays failed
  }
  FrameDecoder exact(1024);
  auto ok = encode_frame(std::vector<uint8_t>(1024, 1));
  EXPECT_TRUE(exact.feed(ok).ok());
}

}  // namespace
}  // namespace rcp
