#include <gtest/gtest.h>

#include <xxhash.h>

#include "wire/chunk_header.h"

namespace rcp {
namespace {

constexpr uint64_t kC = kMinChunkBytes;

// The last of two chunks of a file of 1.5 chunks.
ChunkHeader sample() { return ChunkHeader{7, 0, "dir/file", kC + kC / 2, 0644, -5, 999, 1, 2, kC, kC / 2, {}}; }

TEST(ChunkHeader, RoundTrip) {
  auto h = ChunkHeader::decode(sample().encode());
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->file_id, 7u);
  EXPECT_EQ(h->relpath, "dir/file");
  EXPECT_EQ(h->mtime_s, -5);
  EXPECT_EQ(h->offset, kC);
  EXPECT_EQ(h->nchunks, 2u);
  EXPECT_EQ(h->chunk_bytes(), kC);
}

TEST(ChunkHeader, GeometryFollowsFromTheSize) {
  auto ok = [](const ChunkHeader& h) { return ChunkHeader::decode(h.encode()).ok(); };
  const uint64_t size = 10 * kC + 1;
  EXPECT_TRUE(ok({1, 0, "f", size, 0644, 0, 0, 0, 11, 0, kC, {}}));
  EXPECT_TRUE(ok({1, 0, "f", size, 0644, 0, 0, 5, 11, 5 * kC, kC, {}}));
  EXPECT_TRUE(ok({1, 0, "f", size, 0644, 0, 0, 10, 11, 10 * kC, 1, {}}));
  EXPECT_TRUE(ok({1, 0, "f", 0, 0644, 0, 0, 0, 1, 0, 0, {}}));
  EXPECT_FALSE(ok({1, 0, "f", size, 0644, 0, 0, 0, 12, 0, kC, {}}));           // one chunk too many
  EXPECT_FALSE(ok({1, 0, "f", size, 0644, 0, 0, 5, 11, 5 * kC + 1, kC, {}}));  // off the grid
  EXPECT_FALSE(ok({1, 0, "f", size, 0644, 0, 0, 0, 11, 0, kC - 1, {}}));
  EXPECT_FALSE(ok({1, 0, "f", 100, 0644, 0, 0, 0, 2, 0, 50, {}}));  // chunks below the minimum
  EXPECT_FALSE(ok({1, 0, "f", 100, 0644, 0, 0, 0, 1, 0, 50, {}}));  // one chunk, not the whole file
  // The attack of the review: 2^32-1 chunks declared for any size the bytes can't justify.
  EXPECT_FALSE(ok({1, 0, "f", 1ull << 40, 0644, 0, 0, 0, UINT32_MAX, 0, 256, {}}));
  EXPECT_FALSE(ok({1, 0, "f", UINT64_MAX, 0644, 0, 0, 0, UINT32_MAX, 0, kC, {}}));
}

TEST(ChunkHeader, RefusesBadGeometry) {
  auto bad = [](auto mutate) {
    ChunkHeader h = sample();
    mutate(h);
    return ChunkHeader::decode(h.encode()).ok();
  };
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.offset = kC + 1; }));      // past the end
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.length = UINT64_MAX; }));  // 2^64-1
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.offset = UINT64_MAX; }));
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.chunk = 2; }));
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.nchunks = 0; }));
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.nchunks = 1000; }));  // more chunks than the size holds
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.mode = 0xffff; }));
  EXPECT_TRUE(bad([](ChunkHeader&) {}));
  EXPECT_FALSE(ChunkHeader::decode(encode_message(MsgType::chunk, 1u)).ok());
  EXPECT_FALSE(ChunkHeader::decode(encode_message(MsgType::dir, 1u)).ok());
}

TEST(ChunkHeader, SparseExtentsRoundTripAndAreBounded) {
  ChunkHeader h = sample();  // kC / 2 bytes at kC
  h.sparse = true;
  h.extents = {{0, 10}, {4096, 100}};
  auto back = ChunkHeader::decode(h.encode());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->sparse);
  EXPECT_EQ(back->extents, h.extents);
  EXPECT_EQ(back->wire_length(), 110u);
  h.extents.clear();  // all hole: nothing travels
  back = ChunkHeader::decode(h.encode());
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->sparse);
  EXPECT_EQ(back->wire_length(), 0u);
  EXPECT_EQ(sample().wire_length(), kC / 2);  // dense: all of it
  auto bad = [](std::vector<std::pair<uint64_t, uint64_t>> extents) {
    ChunkHeader c = sample();
    c.sparse = true;
    c.extents = std::move(extents);
    return !ChunkHeader::decode(c.encode()).ok();
  };
  EXPECT_TRUE(bad({{0, 0}}));            // empty
  EXPECT_TRUE(bad({{10, 5}, {0, 5}}));   // out of order
  EXPECT_TRUE(bad({{0, 10}, {10, 5}}));  // touching: one extent
  EXPECT_TRUE(bad({{0, 10}, {5, 10}}));  // overlapping
  EXPECT_TRUE(bad({{kC / 2 - 1, 2}}));   // past the chunk
  EXPECT_TRUE(bad({{UINT64_MAX, 1}}));   // far past it
  EXPECT_TRUE(bad({{1, UINT64_MAX}}));   // wrapping
  std::vector<std::pair<uint64_t, uint64_t>> many;
  for (uint64_t i = 0; i <= kMaxExtents; ++i) many.emplace_back(2 * i, 1);
  EXPECT_TRUE(bad(many));  // more than kMaxExtents
  many.pop_back();
  EXPECT_FALSE(bad(many));
}

TEST(ChunkHeader, ReusedBlocksFitTheChunks) {
  // Chunk 1 of 4 of a resumed --partial file; blocks 0 and 3 are reused.
  ChunkHeader h{1, 0, "f", 3 * (4 * kC) + 5, 0644, 0, 0, 1, 4, 4 * kC, 4 * kC};
  h.reused = {0x09};
  auto back = ChunkHeader::decode(h.encode());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->reused, std::vector<uint8_t>{0x09});
  EXPECT_TRUE(ChunkHeader::decode(sample().encode())->reused.empty());  // absent: every chunk comes
  auto bad = [&](std::vector<uint8_t> reused) {
    ChunkHeader x = h;
    x.reused = std::move(reused);
    return !ChunkHeader::decode(x.encode()).ok();
  };
  EXPECT_TRUE(bad({0x02}));        // this chunk's own bit
  EXPECT_TRUE(bad({0x10}));        // past nchunks
  EXPECT_TRUE(bad({0x01, 0x00}));  // not ceil(nchunks / 8) bytes
  ChunkHeader one{1, 0, "f", 10, 0644, 0, 0, 0, 1, 0, 10};
  one.reused = {0x00};
  EXPECT_FALSE(ChunkHeader::decode(one.encode()).ok());  // a single chunk reuses nothing
}

TEST(Xxh128, MatchesOneShotAndCanonicalOrder) {
  std::vector<uint8_t> data(100000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  Xxh128 h;
  h.update(std::span(data).first(12345));
  h.update(std::span(data).subspan(12345));
  XXH128_hash_t one = XXH3_128bits(data.data(), data.size());
  Digest128 d = h.digest();
  uint64_t high = 0;
  for (int i = 0; i < 8; ++i) high = high << 8 | d[i];
  EXPECT_EQ(high, one.high64);
  EXPECT_EQ(Xxh128::of(data), d);  // the one-shot path the source uses for small files
  Xxh128 other;
  other.update(std::span(data).first(10));
  EXPECT_NE(other.digest(), d);
}

}  // namespace
}  // namespace rcp
