// DestTree against the real filesystem, in a fresh temporary directory.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "copy/dest_tree.h"

namespace fs = std::filesystem;

namespace rcp {
namespace {

class DestTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rcp-dest-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "dst");
    fs::create_directories(root_ / "outside");
  }
  void TearDown() override { fs::remove_all(root_); }
  std::unique_ptr<DestTree> tree(uint32_t sources = 1, bool overwrite = false, const std::string& path = "") {
    auto t = DestTree::open(DestSpec{path.empty() ? (root_ / "dst").string() : path, sources, false, overwrite, {}});
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
    return t.ok() ? std::move(t.value()) : nullptr;
  }
  void write_file(DestTree& t, uint32_t root, const std::string& rel, const std::string& body, bool expect_commit) {
    auto parent = t.parent_of(root, rel);
    ASSERT_TRUE(parent.ok()) << parent.error().message;
    auto tmp = t.create_temp(parent->first);
    ASSERT_TRUE(tmp.ok());
    ASSERT_EQ(write(tmp->first.get(), body.data(), body.size()), static_cast<ssize_t>(body.size()));
    auto committed = t.commit(parent->first, tmp->second, parent->second);
    ASSERT_TRUE(committed.ok()) << committed.error().message;
    EXPECT_EQ(*committed, expect_commit);
  }
  fs::path root_;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(DestTreeTest, IntoExistingDirectory) {
  auto t = tree();
  ASSERT_TRUE(t->set_root(0, "src", 'd').ok());
  write_file(*t, 0, "a/b/file", "hello", true);
  EXPECT_EQ(slurp(root_ / "dst/src/a/b/file"), "hello");
  // No temporary left behind.
  for (auto& e : fs::recursive_directory_iterator(root_ / "dst"))
    EXPECT_EQ(e.path().filename().string().find(".rcp-"), std::string::npos) << e.path();
}

TEST_F(DestTreeTest, AsNewName) {
  auto t = tree(1, false, (root_ / "dst" / "renamed").string());
  ASSERT_TRUE(t->set_root(0, "whatever", 'f').ok());
  write_file(*t, 0, "", "x", true);
  EXPECT_EQ(slurp(root_ / "dst/renamed"), "x");
}

TEST_F(DestTreeTest, ExistingFileKeptWithoutOverwrite) {
  std::ofstream(root_ / "dst/f") << "old";
  auto t = tree();
  ASSERT_TRUE(t->set_root(0, "f", 'f').ok());
  write_file(*t, 0, "", "new", false);
  EXPECT_EQ(slurp(root_ / "dst/f"), "old");
  auto t2 = tree(1, true);
  ASSERT_TRUE(t2->set_root(0, "f", 'f').ok());
  write_file(*t2, 0, "", "new", true);
  EXPECT_EQ(slurp(root_ / "dst/f"), "new");
}

TEST_F(DestTreeTest, NeverFollowsSymlinksBelowTheDestination) {
  fs::create_directories(root_ / "dst/src");
  fs::create_directory_symlink(root_ / "outside", root_ / "dst/src/dir");
  auto t = tree();
  ASSERT_TRUE(t->set_root(0, "src", 'd').ok());
  auto parent = t->parent_of(0, "dir/file");
  ASSERT_FALSE(parent.ok());
  EXPECT_NE(parent.error().message.find("not a directory"), std::string::npos) << parent.error().message;
  EXPECT_TRUE(fs::is_empty(root_ / "outside"));
}

TEST_F(DestTreeTest, RefusesHostileRoots) {
  auto t = tree(1);
  EXPECT_FALSE(t->set_root(0, "..", 'd').ok());
  EXPECT_FALSE(t->set_root(0, "a/b", 'd').ok());
  EXPECT_FALSE(t->set_root(1, "x", 'd').ok());  // never requested
  ASSERT_TRUE(t->set_root(0, "ok", 'd').ok());
  EXPECT_FALSE(t->set_root(0, "again", 'd').ok());
  EXPECT_FALSE(t->parent_of(0, "../x").ok());
  EXPECT_FALSE(t->parent_of(0, "/etc/passwd").ok());
  EXPECT_FALSE(t->directory(0, "a/../..").ok());
}

TEST_F(DestTreeTest, TemporariesRemovedOnAbort) {
  auto t = tree();
  ASSERT_TRUE(t->set_root(0, "src", 'd').ok());
  auto parent = t->parent_of(0, "f");
  ASSERT_TRUE(parent.ok());
  auto tmp = t->create_temp(parent->first);
  ASSERT_TRUE(tmp.ok());
  EXPECT_TRUE(fs::exists(root_ / "dst/src" / tmp->second));
  t->remove_temps();
  EXPECT_FALSE(fs::exists(root_ / "dst/src" / tmp->second));
}

TEST_F(DestTreeTest, DestinationErrors) {
  EXPECT_FALSE(DestTree::open(DestSpec{(root_ / "missing/x").string(), 1, false, false, {}}).ok());
  EXPECT_FALSE(DestTree::open(DestSpec{(root_ / "nodir").string(), 1, true, false, {}}).ok());   // trailing '/'
  EXPECT_FALSE(DestTree::open(DestSpec{(root_ / "nodir").string(), 2, false, false, {}}).ok());  // several sources
}

}  // namespace
}  // namespace rcp
