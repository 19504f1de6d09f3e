#include <gtest/gtest.h>

#include "copy/file_policy.h"

namespace rcp {
namespace {

struct stat regular(uint64_t size, int64_t s, long ns) {
  struct stat st {};
  st.st_mode = S_IFREG | 0644;
  st.st_size = static_cast<off_t>(size);
  st.st_mtim.tv_sec = static_cast<time_t>(s);
  st.st_mtim.tv_nsec = ns;
  return st;
}

FileEntry entry(uint64_t size, int64_t s, uint32_t ns) { return FileEntry{0, "f", size, s, ns, 0644, {}}; }

TEST(FilePolicy, ComparesMtimesAtTheCoarserPrecision) {
  EXPECT_EQ(compare_mtime(10, 123456789, 10, 123456789), 0);
  EXPECT_EQ(compare_mtime(10, 123456789, 10, 123456788), 1);
  EXPECT_EQ(compare_mtime(10, 123456789, 10, 0), 0);          // a filesystem keeping seconds
  EXPECT_EQ(compare_mtime(10, 123456789, 10, 123456000), 0);  // ...or microseconds
  EXPECT_EQ(compare_mtime(10, 123457789, 10, 123456000), 1);
  EXPECT_EQ(compare_mtime(9, 999999999, 10, 0), -1);
  EXPECT_EQ(compare_mtime(-1, 5, -1, 5), 0);  // before 1970
}

TEST(FilePolicy, NewFilesAreSent) {
  EXPECT_EQ(decide({}, entry(5, 10, 1), std::nullopt, std::nullopt), FileVerdict::send);
  EXPECT_EQ(decide({.ignore_existing = true}, entry(5, 10, 1), std::nullopt, std::nullopt), FileVerdict::send);
}

TEST(FilePolicy, SameSizeAndMtimeIsUnchanged) {
  for (FilePolicy p : {FilePolicy{}, FilePolicy{.overwrite = true}, FilePolicy{.update = true}})
    EXPECT_EQ(decide(p, entry(5, 10, 7), regular(5, 10, 7), std::nullopt), FileVerdict::unchanged);
  EXPECT_EQ(decide({}, entry(5, 10, 7), regular(5, 10, 0), std::nullopt), FileVerdict::unchanged);
}

TEST(FilePolicy, WhatDiffersIsKeptUnlessAsked) {
  const auto older = regular(5, 9, 0), newer = regular(5, 11, 0), bigger = regular(6, 10, 7);
  EXPECT_EQ(decide({}, entry(5, 10, 7), older, std::nullopt), FileVerdict::kept);
  EXPECT_EQ(decide({}, entry(5, 10, 7), bigger, std::nullopt), FileVerdict::kept);
  EXPECT_EQ(decide({.overwrite = true}, entry(5, 10, 7), newer, std::nullopt), FileVerdict::replace);
  EXPECT_EQ(decide({.update = true}, entry(5, 10, 7), older, std::nullopt), FileVerdict::replace);
  EXPECT_EQ(decide({.update = true}, entry(5, 10, 7), newer, std::nullopt), FileVerdict::ignored);
  EXPECT_EQ(decide({.update = true}, entry(5, 10, 7), bigger, std::nullopt), FileVerdict::replace);  // same mtime
  EXPECT_EQ(decide({.ignore_existing = true}, entry(5, 10, 7), older, std::nullopt), FileVerdict::ignored);
  EXPECT_EQ(decide({.ignore_existing = true}, entry(5, 10, 7), regular(5, 10, 7), std::nullopt),
            FileVerdict::unchanged);
  struct stat dir {};
  dir.st_mode = S_IFDIR | 0755;
  EXPECT_EQ(decide({}, entry(0, 0, 0), dir, std::nullopt), FileVerdict::kept);  // a directory is never "the same"
}

TEST(FilePolicy, ChecksumComparesContent) {
  const FilePolicy p{.checksum = true};
  EXPECT_EQ(decide(p, entry(5, 10, 7), regular(5, 10, 7), false), FileVerdict::kept);  // same size and mtime
  EXPECT_EQ(decide(p, entry(5, 10, 7), regular(5, 3, 0), true), FileVerdict::unchanged);
  EXPECT_EQ(decide({.overwrite = true, .checksum = true}, entry(5, 10, 7), regular(5, 10, 7), false),
            FileVerdict::replace);
}

}  // namespace
}  // namespace rcp
