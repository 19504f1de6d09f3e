#include <gtest/gtest.h>

#include <xxhash.h>

#include "chunk_header.h"

namespace rcp {
namespace {

ChunkHeader sample() {
  return ChunkHeader{7, 0, "dir/file", 100, 0644, -5, 999, 1, 2, 50, 50};
}

TEST(ChunkHeader, RoundTrip) {
  auto h = ChunkHeader::decode(sample().encode());
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->file_id, 7u);
  EXPECT_EQ(h->relpath, "dir/file");
  EXPECT_EQ(h->mtime_s, -5);
  EXPECT_EQ(h->offset, 50u);
  EXPECT_EQ(h->nchunks, 2u);
}

TEST(ChunkHeader, RefusesBadGeometry) {
  auto bad = [](auto mutate) {
    ChunkHeader h = sample();
    mutate(h);
    return ChunkHeader::decode(h.encode()).ok();
  };
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.offset = 60; }));          // past the end
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.length = UINT64_MAX; }));  // 2^64-1
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.offset = UINT64_MAX; }));
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.chunk = 2; }));
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.nchunks = 0; }));
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.nchunks = 1000; }));       // more chunks than bytes
  EXPECT_FALSE(bad([](ChunkHeader& h) { h.mode = 0xffff; }));
  EXPECT_TRUE(bad([](ChunkHeader&) {}));
  EXPECT_FALSE(ChunkHeader::decode(encode_message(MsgType::chunk, 1u)).ok());
  EXPECT_FALSE(ChunkHeader::decode(encode_message(MsgType::dir, 1u)).ok());
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
