#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "base/unique_fd.h"
#include "copy/sparse.h"

namespace rcp {
namespace {

// A real file in the test's temporary directory, removed at the end.
class SparseFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    path_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/rcp-sparse-XXXXXX";
    fd_ = UniqueFd(mkstemp(path_.data()));
    ASSERT_GE(fd_.get(), 0);
  }
  void TearDown() override { unlink(path_.c_str()); }
  void write_at(uint64_t offset, size_t n) {
    std::string data(n, 'x');
    ASSERT_EQ(pwrite(fd_.get(), data.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
  }
  std::string path_;
  UniqueFd fd_;
};

constexpr uint64_t kMiB = 1u << 20;

TEST_F(SparseFile, ADenseFileHasNoExtents) {
  write_at(0, 3 * 4096);
  EXPECT_FALSE(data_extents(fd_.get(), 0, 3 * 4096, 16).has_value());
}

TEST_F(SparseFile, HolesAreLeftOutRelativeToTheChunk) {
  // Data at 1 MiB and at 5 MiB, 16 MiB in all: the holes between do not travel.
  write_at(kMiB, 4096);
  write_at(5 * kMiB, 8192);
  ASSERT_EQ(ftruncate(fd_.get(), 16 * kMiB), 0);
  auto all = data_extents(fd_.get(), 0, 16 * kMiB, 16);
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0], std::make_pair(kMiB, uint64_t{4096}));
  EXPECT_EQ((*all)[1], std::make_pair(5 * kMiB, uint64_t{8192}));
  // The second half of the file, as its own chunk: positions from its start.
  auto tail = data_extents(fd_.get(), 4 * kMiB, 4 * kMiB, 16);
  ASSERT_TRUE(tail.has_value());
  ASSERT_EQ(tail->size(), 1u);
  EXPECT_EQ((*tail)[0], std::make_pair(kMiB, uint64_t{8192}));
  // A chunk that is all hole has no extents at all.
  auto empty = data_extents(fd_.get(), 8 * kMiB, 8 * kMiB, 16);
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
}

TEST(MergeExtents, TheSmallestHolesTravelAsZeros) {
  // Holes of 10, 1, 100 and 5 bytes between five extents; three extents allowed.
  Extents e{{0, 10}, {20, 10}, {31, 10}, {141, 10}, {156, 10}};
  merge_extents(e, 3);
  Extents want{{0, 10}, {20, 21}, {141, 25}};
  EXPECT_EQ(e, want);
  Extents one{{0, 1}, {5, 1}, {9, 1}};
  merge_extents(one, 1);
  EXPECT_EQ(one, (Extents{{0, 10}}));
}

}  // namespace
}  // namespace rcp
