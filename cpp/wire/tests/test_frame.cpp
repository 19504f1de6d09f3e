#include <gtest/gtest.h>

#include <vector>

#include "wire/frame.h"

namespace rcp {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes header_of(uint32_t len) {
  return {static_cast<uint8_t>(len >> 24), static_cast<uint8_t>(len >> 16), static_cast<uint8_t>(len >> 8),
          static_cast<uint8_t>(len)};
}

TEST(Frame, GoldenBytes) {
  EXPECT_EQ(encode_frame(Bytes{0x01, 0x02, 0x03}), (Bytes{0x00, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03}));
  EXPECT_EQ(encode_frame(Bytes{}), (Bytes{0, 0, 0, 0}));
  // Big endian in every byte of the length.
  Bytes big(0x010203, 7);
  auto f = encode_frame(big);
  ASSERT_EQ(f.size(), 4u + 0x010203);
  EXPECT_EQ(Bytes(f.begin(), f.begin() + 4), (Bytes{0x00, 0x01, 0x02, 0x03}));
  EXPECT_EQ(f.back(), 7);
}

TEST(Frame, AppendFrameAppends) {
  Bytes out{0xee};
  append_frame(out, Bytes{0xaa});
  append_frame(out, Bytes{});
  EXPECT_EQ(out, (Bytes{0xee, 0, 0, 0, 1, 0xaa, 0, 0, 0, 0}));
}

TEST(Frame, DecodesByteByByte) {
  Bytes wire;
  append_frame(wire, Bytes{9, 8, 7});
  append_frame(wire, Bytes{});
  append_frame(wire, Bytes{42});
  FrameDecoder d;
  std::vector<Bytes> got;
  Bytes body;
  for (size_t i = 0; i < wire.size(); ++i) {
    ASSERT_TRUE(d.feed({&wire[i], 1}).ok());
    while (d.next(body)) got.push_back(body);
    // A frame is open from its first header byte until its last body byte.
    const bool at_frame_end = i == 6 || i == 10 || i == 15;
    EXPECT_EQ(d.mid_frame(), !at_frame_end) << "after byte " << i;
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], (Bytes{9, 8, 7}));
  EXPECT_TRUE(got[1].empty());
  EXPECT_EQ(got[2], (Bytes{42}));
  EXPECT_FALSE(d.mid_frame());
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(Frame, SeveralFramesInOneFeed) {
  Bytes wire;
  for (uint8_t i = 0; i < 10; ++i) append_frame(wire, Bytes(i, i));
  FrameDecoder d;
  ASSERT_TRUE(d.feed(wire).ok());
  EXPECT_EQ(d.buffered_bytes(), 45u);  // 0 + 1 + ... + 9 body bytes waiting
  Bytes body;
  for (uint8_t i = 0; i < 10; ++i) {
    ASSERT_TRUE(d.next(body));
    EXPECT_EQ(body, Bytes(i, i));
  }
  EXPECT_FALSE(d.next(body));
  EXPECT_FALSE(d.mid_frame());
}

TEST(Frame, ArbitrarySplitsGiveTheSameFrames) {
  Bytes wire;
  for (uint8_t i = 0; i < 20; ++i) append_frame(wire, Bytes(i * 3u, static_cast<uint8_t>(i + 1)));
  for (size_t piece : {2u, 3u, 5u, 7u, 64u}) {
    FrameDecoder d;
    for (size_t off = 0; off < wire.size(); off += piece)
      ASSERT_TRUE(d.feed(std::span(wire).subspan(off, std::min(piece, wire.size() - off))).ok());
    Bytes body;
    for (uint8_t i = 0; i < 20; ++i) {
      ASSERT_TRUE(d.next(body)) << "piece " << piece;
      EXPECT_EQ(body, Bytes(i * 3u, static_cast<uint8_t>(i + 1)));
    }
    EXPECT_FALSE(d.next(body));
  }
}

TEST(Frame, TruncatedFrameIsVisible) {
  auto wire = encode_frame(Bytes{1, 2, 3, 4});
  FrameDecoder d;
  ASSERT_TRUE(d.feed(std::span(wire).first(wire.size() - 1)).ok());
  Bytes body;
  EXPECT_FALSE(d.next(body));
  EXPECT_TRUE(d.mid_frame());
  EXPECT_EQ(d.buffered_bytes(), 3u);
  // The last byte completes it.
  ASSERT_TRUE(d.feed(std::span(wire).last(1)).ok());
  ASSERT_TRUE(d.next(body));
  EXPECT_EQ(body, (Bytes{1, 2, 3, 4}));
  EXPECT_FALSE(d.mid_frame());

  FrameDecoder header_only;
  ASSERT_TRUE(header_only.feed(std::span(wire).first(2)).ok());
  EXPECT_TRUE(header_only.mid_frame());
  EXPECT_FALSE(header_only.next(body));
}

TEST(Frame, OversizeRefusedBeforeAllocation) {
  for (uint32_t len : {1025u, 0x7FFFFFFFu, 0xFFFFFFFFu}) {
    FrameDecoder d(1024);
    auto r = d.feed(header_of(len));
    ASSERT_FALSE(r.ok()) << len;
    EXPECT_EQ(r.error().code, Errc::too_large);
    EXPECT_NE(r.error().message.find(std::to_string(len)), std::string::npos) << r.error().message;
    EXPECT_LT(d.buffered_bytes(), 16u);
    // Stays failed, with the same error, whatever comes next.
    auto again = d.feed(encode_frame(Bytes{1}));
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, Errc::too_large);
    Bytes body;
    EXPECT_FALSE(d.next(body));
  }
}

TEST(Frame, OversizeHeaderSplitAcrossFeeds) {
  FrameDecoder d(1024);
  auto h = header_of(0xFFFFFFFFu);
  for (size_t i = 0; i < 3; ++i) ASSERT_TRUE(d.feed({&h[i], 1}).ok());
  auto r = d.feed({&h[3], 1});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::too_large);
  EXPECT_LT(d.buffered_bytes(), 16u);
}

TEST(Frame, FramesBeforeAnOversizeOneStayAvailable) {
  Bytes wire = encode_frame(Bytes{5, 6});
  auto h = header_of(2000);
  wire.insert(wire.end(), h.begin(), h.end());
  FrameDecoder d(1024);
  auto r = d.feed(wire);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::too_large);
  Bytes body;
  ASSERT_TRUE(d.next(body));
  EXPECT_EQ(body, (Bytes{5, 6}));
}

TEST(Frame, LimitIsInclusive) {
  FrameDecoder d(1024);
  ASSERT_TRUE(d.feed(encode_frame(Bytes(1024, 1))).ok());
  Bytes body;
  ASSERT_TRUE(d.next(body));
  EXPECT_EQ(body.size(), 1024u);
  FrameDecoder zero_limit(0);
  ASSERT_TRUE(zero_limit.feed(encode_frame(Bytes{})).ok());
  EXPECT_TRUE(zero_limit.next(body));
  EXPECT_TRUE(body.empty());
  EXPECT_EQ(zero_limit.feed(encode_frame(Bytes{1})).error().code, Errc::too_large);
}

}  // namespace
}  // namespace rcp
