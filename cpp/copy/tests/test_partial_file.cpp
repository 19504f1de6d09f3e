// The --partial pair (hidden file + record) against the real filesystem:
// the record is hostile input, and the file, not the record, says what is kept.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "copy/partial_file.h"
#include "wire/partial_blocks.h"

namespace fs = std::filesystem;

namespace rcp {
namespace {

constexpr uint64_t kB = kPartialBlockBytes;
const PartialKey kKey{"big.bin", 3 * kB + 100, 1700000000, 123456789};

std::vector<uint8_t> block_bytes(uint32_t b, uint64_t length) {
  std::vector<uint8_t> out(length);
  for (uint64_t i = 0; i < length; ++i) out[i] = static_cast<uint8_t>(b * 31 + i * 7 + (i >> 9));
  return out;
}
uint64_t block_len(uint32_t b) { return std::min(kB, kKey.size - b * kB); }

class PartialFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rcp-partial-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = UniqueFd(open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_GE(dir_.get(), 0);
  }
  void TearDown() override { fs::remove_all(root_); }
  // A fresh pair with `blocks` written and recorded, then closed (as a killed run leaves it).
  void leave_partial(const std::vector<uint32_t>& blocks) {
    PartialFile p;
    auto made = create_partial(dir_.get(), kKey, p);
    ASSERT_TRUE(made.ok() && *made);
    for (uint32_t b : blocks) {
      auto data = block_bytes(b, block_len(b));
      ASSERT_EQ(pwrite(p.data.get(), data.data(), data.size(), static_cast<off_t>(b * kB)),
                static_cast<ssize_t>(data.size()));
      ASSERT_TRUE(record_block(p, b, sha256(data)).ok());
    }
  }
  std::vector<uint8_t> record() {
    std::ifstream in(root_ / partial_record_name(kKey.name), std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  void set_record(const std::vector<uint8_t>& bytes) {
    std::ofstream out(root_ / partial_record_name(kKey.name), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  bool exists(const std::string& name) { return fs::exists(fs::symlink_status(root_ / name)); }
  fs::path root_;
  UniqueFd dir_;
};

TEST(PartialRecord, ParsesWhatWasWritten) {
  auto bytes = partial_record::encode_header(kKey);
  for (uint32_t b : {2u, 0u}) {
    auto e = partial_record::encode_entry(b, sha256(block_bytes(b, 10)));
    bytes.insert(bytes.end(), e.begin(), e.end());
  }
  auto r = partial_record::parse(bytes, kKey);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 2u);
  EXPECT_EQ(r->at(2), sha256(block_bytes(2, 10)));
}

TEST(PartialRecord, RefusesAnythingInconsistent) {
  const auto header = partial_record::encode_header(kKey);
  const auto entry = partial_record::encode_entry(1, Sha256Digest{});
  auto with = [&](std::vector<std::vector<uint8_t>> parts) {
    std::vector<uint8_t> out;
    for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  auto refused = [&](const std::vector<uint8_t>& bytes, const PartialKey& key = kKey) {
    return !partial_record::parse(bytes, key).ok();
  };
  EXPECT_TRUE(refused({}));
  EXPECT_TRUE(refused(std::vector<uint8_t>(header.begin(), header.end() - 1)));  // short header
  auto bad_magic = header;
  bad_magic[0] = 'X';
  EXPECT_TRUE(refused(bad_magic));
  // Another file: name, size or mtime differ from the announcement.
  for (const PartialKey& other : {PartialKey{"other", kKey.size, kKey.mtime_s, kKey.mtime_ns},
                                  PartialKey{kKey.name, kKey.size + 1, kKey.mtime_s, kKey.mtime_ns},
                                  PartialKey{kKey.name, kKey.size, kKey.mtime_s + 1, kKey.mtime_ns},
                                  PartialKey{kKey.name, kKey.size, kKey.mtime_s, kKey.mtime_ns + 1}})
    EXPECT_TRUE(refused(with({header, entry}), other)) << other.name << " " << other.size;
  EXPECT_TRUE(refused(with({header, std::vector<uint8_t>(entry.begin(), entry.end() - 1)})));  // torn entry
  EXPECT_TRUE(refused(with({header, entry, entry})));                                          // a block twice
  EXPECT_TRUE(refused(with({header, partial_record::encode_entry(4, Sha256Digest{})})));       // past the end
  // Longer than the file could need (four blocks), however well-formed the start.
  std::vector<std::vector<uint8_t>> many{header};
  for (uint32_t b = 0; b < 5; ++b) many.push_back(partial_record::encode_entry(b % 4, Sha256Digest{}));
  EXPECT_TRUE(refused(with(many)));
  // A file too small to have one.
  EXPECT_TRUE(refused(partial_record::encode_header({"s", kB, 0, 0}), PartialKey{"s", kB, 0, 0}));
  EXPECT_TRUE(partial_record::parse(with({header, entry}), kKey).ok());
}

TEST(PartialRecord, BlockGridIsBounded) {
  EXPECT_EQ(partial_block_bytes(1ull << 30), kB);
  EXPECT_EQ(partial_blocks(1ull << 30), 256u);
  EXPECT_FALSE(partial_applies(kB));
  EXPECT_TRUE(partial_applies(kB + 1));
  for (uint64_t size : {uint64_t{64} << 30, (uint64_t{64} << 30) + 1, uint64_t{1} << 40, uint64_t{UINT64_MAX} / 2}) {
    EXPECT_LE(partial_blocks(size), kMaxPartialBlocks) << size;
    EXPECT_EQ(partial_block_bytes(size) % (1u << 20), 0u);
  }
}

TEST_F(PartialFileTest, NamesAreHiddenAndNotTheSweepsTemporaries) {
  const std::string data = partial_data_name(kKey.name), rec = partial_record_name(kKey.name);
  EXPECT_EQ(data.rfind(".rcp-partial-", 0), 0u);
  EXPECT_EQ(data.substr(data.size() - 5), ".part");
  EXPECT_EQ(rec.substr(rec.size() - 4), ".rec");
  EXPECT_EQ(partial_data_name(std::string(255, 'x')).size(), data.size());  // any name fits
}

TEST_F(PartialFileTest, ResumesTheBlocksThatHashAsRecorded) {
  leave_partial({0, 3});
  PartialFile p;
  auto found = find_partial(dir_.get(), kKey, p);
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_EQ(*found, PartialFound::resumed);
  ASSERT_EQ(p.kept.size(), 2u);
  EXPECT_EQ(p.kept.at(3), sha256(block_bytes(3, block_len(3))));
  // While this run holds it, another run leaves it alone.
  PartialFile q;
  auto busy = find_partial(dir_.get(), kKey, q);
  ASSERT_TRUE(busy.ok());
  EXPECT_EQ(*busy, PartialFound::busy);
}

TEST_F(PartialFileTest, AByteChangedInAKeptBlockDropsThatBlock) {
  leave_partial({0, 1, 2});
  {
    std::fstream f(root_ / partial_data_name(kKey.name), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(kB + 5000));
    f.put('\x5a');
  }
  PartialFile p;
  auto found = find_partial(dir_.get(), kKey, p);
  ASSERT_TRUE(found.ok() && *found == PartialFound::resumed);
  EXPECT_EQ(p.kept.size(), 2u);
  EXPECT_EQ(p.kept.count(1), 0u);
  // The record now lists only what still hashes as recorded.
  p = PartialFile{};
  auto again = partial_record::parse(record(), kKey);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size(), 2u);
}

TEST_F(PartialFileTest, ARecordClaimingOtherHashesKeepsNothingWrong) {
  leave_partial({0, 1});
  // A record rewritten to claim the file's wrong bytes are right: the file is re-hashed.
  auto bytes = partial_record::encode_header(kKey);
  for (uint32_t b : {0u, 1u, 2u}) {
    auto e = partial_record::encode_entry(b, sha256(std::vector<uint8_t>(block_len(b), 0)));
    bytes.insert(bytes.end(), e.begin(), e.end());
  }
  set_record(bytes);
  PartialFile p;
  auto found = find_partial(dir_.get(), kKey, p);
  ASSERT_TRUE(found.ok() && *found == PartialFound::resumed);
  EXPECT_TRUE(p.kept.empty());
}

TEST_F(PartialFileTest, AGarbledRecordIsDiscardedWithItsFile) {
  leave_partial({0});
  auto bytes = record();
  bytes.push_back(0);  // torn
  set_record(bytes);
  PartialFile p;
  auto found = find_partial(dir_.get(), kKey, p);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, PartialFound::none);
  EXPECT_FALSE(exists(partial_data_name(kKey.name)));
  EXPECT_FALSE(exists(partial_record_name(kKey.name)));
  // And a fresh pair can take the names.
  auto made = create_partial(dir_.get(), kKey, p);
  ASSERT_TRUE(made.ok() && *made);
}

TEST_F(PartialFileTest, ARecordOfAnotherVersionOfTheFileIsDiscarded) {
  leave_partial({0, 1});
  PartialKey newer = kKey;
  newer.mtime_s += 1;
  PartialFile p;
  auto found = find_partial(dir_.get(), newer, p);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, PartialFound::none);
  EXPECT_FALSE(exists(partial_data_name(kKey.name)));
}

TEST_F(PartialFileTest, SymlinksAreNeverFollowed) {
  fs::create_directories(root_ / "elsewhere");
  std::ofstream(root_ / "elsewhere/victim") << "keep me";
  fs::create_symlink(root_ / "elsewhere/victim", root_ / partial_record_name(kKey.name));
  fs::create_symlink(root_ / "elsewhere/victim", root_ / partial_data_name(kKey.name));
  PartialFile p;
  auto found = find_partial(dir_.get(), kKey, p);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, PartialFound::none);
  auto made = create_partial(dir_.get(), kKey, p);
  ASSERT_TRUE(made.ok());
  EXPECT_FALSE(*made);  // the name is taken by something not ours: no partial file
  std::ifstream in(root_ / "elsewhere/victim");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "keep me");
  EXPECT_TRUE(fs::is_symlink(root_ / partial_data_name(kKey.name)));
}

TEST_F(PartialFileTest, AFileWithoutItsRecordMakesWayForAFreshPair) {
  std::ofstream(root_ / partial_data_name(kKey.name)) << "orphan";
  PartialFile p;
  auto found = find_partial(dir_.get(), kKey, p);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, PartialFound::none);
  auto made = create_partial(dir_.get(), kKey, p);
  ASSERT_TRUE(made.ok() && *made);
}

TEST_F(PartialFileTest, AHardLinkedPartialFileIsNotOurs) {
  leave_partial({0});
  // Someone links the partial file elsewhere: writing into it would change that name too.
  fs::create_hard_link(root_ / partial_data_name(kKey.name), root_ / "elsewhere-link");
  PartialFile p;
  auto found = find_partial(dir_.get(), kKey, p);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, PartialFound::none);
  EXPECT_TRUE(p.kept.empty());
}

TEST_F(PartialFileTest, APartialFileOthersMayWriteIsNotResumed) {
  leave_partial({0, 1});
  // Left writable by others (a settle that failed after its chmod, or a local
  // user): they could change a kept block after it was re-hashed.
  fs::permissions(root_ / partial_data_name(kKey.name), fs::perms::others_write, fs::perm_options::add);
  PartialFile p;
  auto found = find_partial(dir_.get(), kKey, p);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, PartialFound::none);
  EXPECT_TRUE(p.kept.empty());
  EXPECT_FALSE(fs::exists(root_ / partial_data_name(kKey.name)));  // discarded with its record
  EXPECT_FALSE(fs::exists(root_ / partial_record_name(kKey.name)));
}

}  // namespace
}  // namespace rcp
