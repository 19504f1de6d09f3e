// DestTree against the real filesystem, in a fresh temporary directory.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

// Old kernels (before 3.15) and some filesystems lack renameat2(RENAME_NOREPLACE):
// the weaker methods must still put files in place and still never replace one.
void check_no_replace_method(const fs::path& root, NoReplace how) {
  DestSpec spec{(root / "dst").string(), 1, false, false, {}};
  spec.no_replace = how;
  auto t = DestTree::open(spec);
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_TRUE((*t)->set_root(0, "src", 'd').ok());
  auto dir = (*t)->directory(0, "");
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  auto commit = [&](const std::string& name, const std::string& body) {
    auto tmp = (*t)->create_temp(*dir);
    EXPECT_TRUE(tmp.ok());
    EXPECT_EQ(write(tmp->first.get(), body.data(), body.size()), static_cast<ssize_t>(body.size()));
    auto r = (*t)->commit(*dir, tmp->second, name);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() && *r;
  };
  EXPECT_TRUE(commit("a", "first"));
  EXPECT_FALSE(commit("a", "second")) << "an existing file was replaced";
  std::string link_tmp;
  ASSERT_TRUE((*t)->create_temp_symlink(*dir, "../elsewhere", link_tmp).ok());
  auto linked = (*t)->commit(*dir, link_tmp, "l");
  ASSERT_TRUE(linked.ok() && *linked);
  EXPECT_EQ((*t)->no_replace(), how) << "the method stepped down on a filesystem that supports it";

  EXPECT_EQ(slurp(root / "dst/src/a"), "first");
  EXPECT_EQ(fs::hard_link_count(root / "dst/src/a"), 1u) << "the temporary name was left behind";
  EXPECT_EQ(fs::read_symlink(root / "dst/src/l"), "../elsewhere");
  for (auto& e : fs::recursive_directory_iterator(root / "dst"))
    EXPECT_EQ(e.path().filename().string().find(".rcp-"), std::string::npos) << e.path();
}

TEST_F(DestTreeTest, NoReplaceByRenameat2) { check_no_replace_method(root_, NoReplace::renameat2); }
TEST_F(DestTreeTest, NoReplaceByLinkAndUnlink) { check_no_replace_method(root_, NoReplace::link); }
TEST_F(DestTreeTest, NoReplaceByCheckThenRename) { check_no_replace_method(root_, NoReplace::check_then_rename); }

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

TEST_F(DestTreeTest, WildcardRootsFollowTheirOperandsRule) {
  DestSpec spec{(root_ / "dst").string(), 2, false, false, {}};
  spec.rules = {RootRule{RootRule::Kind::exact, "report.pdf"}, RootRule{RootRule::Kind::pattern, "*.txt", true}};
  auto t = DestTree::open(spec);
  ASSERT_TRUE(t.ok()) << t.error().message;
  auto& tree = **t;
  EXPECT_TRUE(tree.set_root(0, "report.pdf", 'f', 0, 4).ok());
  EXPECT_TRUE(tree.set_root(1, "a.txt", 'f', 1, 4).ok());
  EXPECT_TRUE(tree.set_root(2, "b.txt", 'd', 1, 4).ok());   // root 2 is operand 1's second match
  EXPECT_FALSE(tree.set_root(3, "c.txt", 'f', 0, 4).ok());  // operand 0 allows only report.pdf
  EXPECT_FALSE(tree.set_root(3, ".hidden.txt", 'f', 1, 4).ok());
  EXPECT_FALSE(tree.set_root(3, "c.pdf", 'f', 1, 4).ok());
  auto never = tree.set_root(3, "c.txt", 'f', 2, 4);  // there is no operand 2
  ASSERT_FALSE(never.ok());
  EXPECT_NE(never.error().message.find("never requested"), std::string::npos) << never.error().message;
  EXPECT_FALSE(tree.set_root(kMaxRoots, "c.txt", 'f', 1, 4).ok());
  EXPECT_TRUE(tree.set_root(3, "c.txt", 'f', 1, 4).ok());
  write_file(tree, 2, "inner", "in b", true);
  EXPECT_EQ(slurp(root_ / "dst/b.txt/inner"), "in b");
}

TEST_F(DestTreeTest, AnOperandWithoutAWildcardHasOneRoot) {
  // `host:` (any) and `host:x` (name) stand for one root each; `host:'d*/x'` (name, many) for several.
  DestSpec spec{(root_ / "dst").string(), 3, false, false, {}};
  spec.rules = {RootRule{RootRule::Kind::any, ""}, RootRule{RootRule::Kind::exact, "x"},
                RootRule{RootRule::Kind::exact, "x", true}};
  auto t = DestTree::open(spec);
  ASSERT_TRUE(t.ok()) << t.error().message;
  auto& tree = **t;
  EXPECT_TRUE(tree.set_root(0, "data", 'd', 0, 0).ok());
  auto invented = tree.set_root(1, "more", 'd', 0, 0);
  ASSERT_FALSE(invented.ok());
  EXPECT_EQ(invented.error().code, Errc::protocol);
  EXPECT_NE(invented.error().message.find("holds no wildcard"), std::string::npos) << invented.error().message;
  EXPECT_TRUE(tree.set_root(1, "x", 'f', 1, 0).ok());
  EXPECT_FALSE(tree.set_root(2, "x", 'f', 1, 0).ok());  // the same name again
  EXPECT_TRUE(tree.set_root(2, "x", 'd', 2, 0).ok());
  EXPECT_TRUE(tree.set_root(3, "x", 'd', 2, 0).ok());
  EXPECT_FALSE(tree.has_root(4));
}

TEST_F(DestTreeTest, OneRootAtMostBecomesASingleTarget) {
  const std::string single = (root_ / "dst" / "single").string();
  DestSpec spec{single, 1, false, false, {RootRule{RootRule::Kind::pattern, "*.txt"}}};
  auto said = DestTree::open(spec);
  ASSERT_TRUE(said.ok());
  auto several = (*said)->set_root(0, "a.txt", 'f', 0, 2);
  ASSERT_FALSE(several.ok());
  EXPECT_EQ(several.error().code, Errc::io);  // the user's mistake, not the source's
  EXPECT_NE(several.error().message.find("not a directory, but the source operand matches 2 names"), std::string::npos)
      << several.error().message;
  auto unsaid = DestTree::open(spec);
  ASSERT_TRUE(unsaid.ok());
  ASSERT_TRUE((*unsaid)->set_root(0, "a.txt", 'f', 0, 0).ok());
  auto second = (*unsaid)->set_root(1, "b.txt", 'f', 0, 0);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, Errc::protocol);
  auto one = DestTree::open(spec);
  ASSERT_TRUE(one.ok());
  ASSERT_TRUE((*one)->set_root(0, "a.txt", 'f', 0, 1).ok());
  write_file(**one, 0, "", "only match", true);
  EXPECT_EQ(slurp(single), "only match");
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

TEST_F(DestTreeTest, WithoutTmpfileAGoneRcpdsTemporariesAreSweptOnTheNextRun) {
  DestSpec spec;
  spec.path = (root_ / "dst").string();
  spec.anonymous_temps = false;  // as on a filesystem without O_TMPFILE
  auto t = DestTree::open(spec);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE((*t)->set_root(0, "src", 'd').ok());
  auto dir = (*t)->directory(0, "");
  ASSERT_TRUE(dir.ok());
  pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);  // a pid that is gone, as a SIGKILLed rcpd's
  const std::string prefix = (*t)->temp_prefix();
  const std::string stale = prefix + std::to_string(child) + "-00.tmp";
  const std::string alive = prefix + std::to_string(getppid()) + "-00.tmp";  // a running copy's
  const std::string other_host = ".rcp-zzzzzzzz-" + std::to_string(child) + "-00.tmp";
  const std::string users = "report.tmp";
  for (const auto& n : {stale, alive, other_host, users}) std::ofstream(root_ / "dst/src" / n) << "x";
  auto tmp = (*t)->create_temp(*dir);  // the first in this directory sweeps it
  ASSERT_TRUE(tmp.ok());
  EXPECT_EQ(tmp->second.rfind(prefix + std::to_string(getpid()) + "-", 0), 0u) << tmp->second;
  EXPECT_FALSE(fs::exists(root_ / "dst/src" / stale));
  for (const auto& n : {alive, other_host, users}) EXPECT_TRUE(fs::exists(root_ / "dst/src" / n)) << n;
  (*t)->discard(*dir, tmp->second);
}

TEST_F(DestTreeTest, AGoneRcpdsTemporarySymlinkIsSweptEvenWithTmpfile) {
  // Symlinks (and a replaced file, for an instant) get a temporary name even
  // where files are O_TMPFILE: a run killed then leaves it for the next.
  auto t = tree();
  ASSERT_TRUE(t->set_root(0, "src", 'd').ok());
  auto dir = t->directory(0, "");
  ASSERT_TRUE(dir.ok());
  pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  const std::string stale = t->temp_prefix() + std::to_string(child) + "-00.tmp";
  fs::create_symlink("target", root_ / "dst/src" / stale);
  std::string tmp;
  ASSERT_TRUE(t->create_temp_symlink(*dir, "t", tmp).ok());
  EXPECT_FALSE(fs::exists(fs::symlink_status(root_ / "dst/src" / stale)));
  t->discard(*dir, tmp);
}

TEST_F(DestTreeTest, AnonymousFileHasItsModeAndIsLinkedByItsFd) {
  // The small-file path: made with its permission bits (no chmod after), and
  // named by linkat() on the fd; a name that exists is kept unless replacing.
  auto t = tree();
  ASSERT_TRUE(t->set_root(0, "src", 'd').ok());
  auto dir = t->directory(0, "");
  ASSERT_TRUE(dir.ok());
  const mode_t old_mask = umask(022);
  auto fd = t->create_anonymous(*dir, 04751);
  umask(old_mask);
  ASSERT_TRUE(fd.ok()) << fd.error().message;
  struct stat st {};
  ASSERT_EQ(fstat(fd->get(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0751u);  // the umask applies, special bits never at creation
  ASSERT_EQ(write(fd->get(), "new", 3), 3);
  auto linked = t->link_into_place(*dir, *fd, "f", false);
  ASSERT_TRUE(linked.ok()) << linked.error().message;
  EXPECT_TRUE(*linked);
  EXPECT_EQ(slurp(root_ / "dst/src/f"), "new");
  std::ofstream(root_ / "dst/src/g") << "old";
  auto second = t->create_anonymous(*dir);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(write(second->get(), "two", 3), 3);
  auto kept = t->link_into_place(*dir, *second, "g", false);
  ASSERT_TRUE(kept.ok());
  EXPECT_FALSE(*kept);
  EXPECT_EQ(slurp(root_ / "dst/src/g"), "old");
  auto replaced = t->link_into_place(*dir, *second, "g", true);
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_TRUE(*replaced);
  EXPECT_EQ(slurp(root_ / "dst/src/g"), "two");
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(root_ / "dst/src")) ++entries;
  EXPECT_EQ(entries, 2u);  // f and g: no temporary name left
}

}  // namespace
}  // namespace rcp
