// --delete's walk (dest_prune) and --dry-run's lookups (DestTree::existing_*)
// against the real filesystem, in a fresh temporary directory.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "copy/dest_prune.h"
#include "copy/dest_tree.h"

namespace fs = std::filesystem;

namespace rcp {
namespace {

class DestPruneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rcp-prune-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "dst");
    fs::create_directories(root_ / "outside/inner");
    touch("outside/precious");
    touch("outside/inner/precious");
  }
  void TearDown() override { fs::remove_all(root_); }
  void touch(const std::string& rel) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << "x";
  }
  // Prunes dst (root 0) against `announced`; what was removed, relative to dst.
  std::set<std::string> prune(AnnouncedSet& announced, const FilterRules& rules, bool delete_excluded, bool dry) {
    announced.seal();
    std::set<std::string> removed;
    const std::string base = (root_ / "dst").string();
    PruneOptions o;
    o.rules = &rules;
    o.delete_excluded = delete_excluded;
    o.dry_run = dry;
    o.removed = [&](const std::string& path, uint64_t, bool) { removed.insert(path.substr(base.size() + 1)); };
    o.failed = [&](const std::string& path, const std::string& why) { ADD_FAILURE() << path << ": " << why; };
    UniqueFd dir(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    prune_directory(dir, 0, "", base, announced, o);
    return removed;
  }
  fs::path root_;
};

// The review's finding: a source naming one directory again and again made
// the keys grow (to the cap, 1 GiB) until the end. Repeats are dropped as
// they come, so what is held follows the distinct entries.
TEST(AnnouncedSet, RepeatsAreDroppedAsTheyArrive) {
  AnnouncedSet announced;
  const std::string deep(200, 'd');
  for (int i = 0; i < 1000000; ++i) announced.add(0, deep, true);
  announced.add(0, "other", false);
  EXPECT_FALSE(announced.full());
  EXPECT_LE(announced.size(), size_t{1} << 17);  // not 2 million keys
  EXPECT_LE(AnnouncedSet::kMaxKeys * sizeof(Digest128), size_t{64} << 20);
  announced.seal();
  EXPECT_EQ(announced.size(), 3u);
  EXPECT_TRUE(announced.has(0, deep) && announced.has_dir(0, deep) && announced.has(0, "other"));
  EXPECT_FALSE(announced.has_dir(0, "other") || announced.has(0, "absent"));
}

// Distinct entries past the room: full() (and --delete then deletes nothing);
// the keys held never pass kMaxKeys.
TEST(AnnouncedSet, DistinctEntriesPastTheRoomMakeItFull) {
  AnnouncedSet announced;
  size_t i = 0;
  for (; i < AnnouncedSet::kMaxKeys && !announced.full(); ++i) {
    announced.add(0, "f" + std::to_string(i), false);
    ASSERT_LE(announced.size(), AnnouncedSet::kMaxKeys);
  }
  EXPECT_TRUE(announced.full());
  EXPECT_GE(i, AnnouncedSet::kMaxKeys / 2 - 2);
}

TEST_F(DestPruneTest, RemovesWhatWasNotAnnouncedAndNeverFollowsSymlinks) {
  touch("dst/kept");
  touch("dst/sub/kept");
  touch("dst/sub/extra");
  touch("dst/gone/deep/file");
  touch("dst/file_not_dir/x");  // announced as a file: not searched
  fs::create_directory_symlink(root_ / "outside", root_ / "dst/escape");
  fs::create_directory_symlink(root_ / "outside/inner", root_ / "dst/sub/escape");
  AnnouncedSet a;
  a.add(0, "", true);
  a.add(0, "kept", false);
  a.add(0, "sub", true);
  a.add(0, "sub/kept", false);
  a.add(0, "file_not_dir", false);
  auto rules = FilterRules::parse({});
  ASSERT_TRUE(rules);
  const std::set<std::string> want{"sub/extra", "gone/deep/file", "gone/deep", "gone", "escape", "sub/escape"};
  EXPECT_EQ(prune(a, *rules, false, true), want);         // dry: the same list...
  EXPECT_TRUE(fs::exists(root_ / "dst/gone/deep/file"));  // ...and nothing removed
  AnnouncedSet again = a;
  EXPECT_EQ(prune(again, *rules, false, false), want);
  EXPECT_FALSE(fs::exists(root_ / "dst/gone"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(root_ / "dst/escape")));
  EXPECT_TRUE(fs::exists(root_ / "dst/file_not_dir/x"));
  EXPECT_TRUE(fs::exists(root_ / "outside/precious"));
  EXPECT_TRUE(fs::exists(root_ / "outside/inner/precious"));
}

TEST_F(DestPruneTest, ExcludedEntriesAndTheirDirectoriesStayUnlessDeleteExcluded) {
  touch("dst/a.o");
  touch("dst/old/b.o");
  touch("dst/old/c.txt");
  auto rules = FilterRules::parse({"- *.o"});
  ASSERT_TRUE(rules);
  AnnouncedSet a;
  a.add(0, "", true);
  EXPECT_EQ(prune(a, *rules, false, false), (std::set<std::string>{"old/c.txt"}));
  EXPECT_TRUE(fs::exists(root_ / "dst/a.o"));
  EXPECT_TRUE(fs::exists(root_ / "dst/old/b.o"));
  AnnouncedSet b;
  b.add(0, "", true);
  EXPECT_EQ(prune(b, *rules, true, false), (std::set<std::string>{"a.o", "old/b.o", "old"}));
  EXPECT_FALSE(fs::exists(root_ / "dst/old"));
}

TEST_F(DestPruneTest, DryRunLookupsCreateNothing) {
  DestSpec spec{(root_ / "dst").string(), 1, false, false, {}};
  spec.dry_run = true;
  auto tree = DestTree::open(spec);
  ASSERT_TRUE(tree) << tree.error().message;
  ASSERT_TRUE((*tree)->set_root(0, "new", 'd'));
  auto dir = (*tree)->existing_directory(0, "a/b");
  ASSERT_TRUE(dir) << dir.error().message;
  EXPECT_FALSE(*dir);
  auto parent = (*tree)->existing_parent_of(0, "a/b/f");
  ASSERT_TRUE(parent);
  EXPECT_FALSE(*parent);
  EXPECT_FALSE((*tree)->directory(0, "a"));  // even the creating call creates nothing in a dry run
  EXPECT_FALSE(fs::exists(root_ / "dst/new"));
  fs::create_directories(root_ / "dst/new/a");
  auto found = (*tree)->existing_parent_of(0, "a/f");
  ASSERT_TRUE(found);
  ASSERT_TRUE(*found);
  EXPECT_EQ((*found)->second, "f");
}

}  // namespace
}  // namespace rcp
