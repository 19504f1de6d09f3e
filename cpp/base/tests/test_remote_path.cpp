#include "base/remote_path.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace rcp {
namespace {

using Paths = std::vector<std::string>;

const PasswdDb& users() {
  static const PasswdDb db = PasswdDb::parse(
      "root:x:0:0:root:/root:/bin/bash\n"
      "alice:x:1000:1000::/home/alice:/bin/bash\n"
      "odd:x:1001:1001::/srv/[odd]*home/:/bin/sh\n"
      "nohome:x:1002:1002:::/bin/sh\n"
      "relhome:x:1003:1003::home/rel:/bin/sh\n",
      "");
  return db;
}

std::string resolve(std::string_view path, std::string_view home = "/home/me") {
  auto r = resolve_operand_path(path, home, users());
  EXPECT_TRUE(r.ok()) << path << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r->joined() : "";
}

std::string resolve_error(std::string_view path, std::string_view home = "/home/me") {
  auto r = resolve_operand_path(path, home, users());
  EXPECT_FALSE(r.ok()) << path << " resolved to " << (r.ok() ? r->joined() : "");
  return r.ok() ? "" : r.error().message;
}

TEST(ResolveOperandPath, RelativeIsBelowTheHome) {
  EXPECT_EQ(resolve(""), "/home/me");  // host:
  EXPECT_EQ(resolve("."), "/home/me/.");
  EXPECT_EQ(resolve("docs/a.txt"), "/home/me/docs/a.txt");
  EXPECT_EQ(resolve("dir/"), "/home/me/dir/");  // a trailing '/' is kept
  EXPECT_EQ(resolve("../other"), "/home/me/../other");
  EXPECT_EQ(resolve("a:b"), "/home/me/a:b");
  EXPECT_EQ(resolve("x", "/"), "/x");
}

TEST(ResolveOperandPath, TildeIsTheLoginsHome) {
  EXPECT_EQ(resolve("~"), "/home/me");
  EXPECT_EQ(resolve("~/"), "/home/me");
  EXPECT_EQ(resolve("~/x/y"), "/home/me/x/y");
  EXPECT_EQ(resolve("./~/x"), "/home/me/./~/x");  // not at the start: a name
  EXPECT_EQ(resolve("a/~b"), "/home/me/a/~b");
}

TEST(ResolveOperandPath, TildeUserFromThePasswdTable) {
  EXPECT_EQ(resolve("~alice"), "/home/alice");
  EXPECT_EQ(resolve("~alice/"), "/home/alice");
  EXPECT_EQ(resolve("~alice/notes.txt"), "/home/alice/notes.txt");
  EXPECT_EQ(resolve("~root/.profile"), "/root/.profile");
  EXPECT_NE(resolve_error("~bob/x").find("no such user 'bob' in /etc/passwd"), std::string::npos);
  EXPECT_NE(resolve_error("~nohome/x").find("no absolute home"), std::string::npos);
  EXPECT_NE(resolve_error("~relhome").find("no absolute home"), std::string::npos);
  EXPECT_NE(resolve_error("~al*").find("no such user"), std::string::npos);  // never a pattern
}

TEST(ResolveOperandPath, AbsoluteIsAbsolute) {
  EXPECT_EQ(resolve("/etc/hosts"), "/etc/hosts");
  EXPECT_EQ(resolve("//etc//hosts"), "/etc//hosts");
  EXPECT_EQ(resolve("/"), "/");
  // No home needed.
  auto r = resolve_operand_path("/abs", "", users());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->joined(), "/abs");
}

TEST(ResolveOperandPath, TheLiteralPartIsKeptApart) {
  // A home may hold wildcard characters: they are never a pattern.
  auto r = resolve_operand_path("~odd/*.txt", "/home/me", users());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->base, "/srv/[odd]*home/");
  EXPECT_EQ(r->rest, "*.txt");
  EXPECT_EQ(r->joined(), "/srv/[odd]*home/*.txt");
  EXPECT_EQ((resolve_operand_path("logs/*.gz", "/h", users()).value()), (OperandPath{"/h", "logs/*.gz"}));
  EXPECT_EQ((resolve_operand_path("/var/*", "/h", users()).value()), (OperandPath{"/", "var/*"}));
}

TEST(ResolveOperandPath, NoHome) {
  EXPECT_NE(resolve_error("x", "").find("no home directory"), std::string::npos);
  EXPECT_NE(resolve_error("~/x", "").find("no home directory"), std::string::npos);
  EXPECT_NE(resolve_error("x", "relative/home").find("not an absolute path"), std::string::npos);
  EXPECT_EQ(resolve("~alice/x", ""), "/home/alice/x");  // another user's home needs none of ours
}

TEST(ResolveOperandPath, TooLong) {
  const std::string name(kMaxResolvedPath, 'n');
  auto r = resolve_operand_path(name, "/home/me", users());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::too_large);
  EXPECT_NE(r.error().message.find("longer than 4096 bytes"), std::string::npos) << r.error().message;
  EXPECT_LE(r.error().message.size(), 300u);  // the path is not repeated whole
  EXPECT_TRUE(resolve_operand_path(name.substr(0, 4000), "/home/me", users()).ok());
}

TEST(LoginHome, EnvironmentFirstThenPasswd) {
  auto h = login_home("/custom/home", 1000, users());
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, "/custom/home");
  EXPECT_EQ(login_home(nullptr, 1000, users()).value(), "/home/alice");
  EXPECT_EQ(login_home("", 0, users()).value(), "/root");
  EXPECT_EQ(login_home("not/absolute", 0, users()).value(), "/root");
  EXPECT_FALSE(login_home(nullptr, 4242, users()).ok());  // unknown uid
  EXPECT_FALSE(login_home(nullptr, 1002, users()).ok());  // entry without a home
}

TEST(HasWildcard, Characters) {
  EXPECT_TRUE(has_wildcard("*.gz"));
  EXPECT_TRUE(has_wildcard("a?c"));
  EXPECT_TRUE(has_wildcard("[ab]"));
  EXPECT_TRUE(has_wildcard("a\\*b"));  // escaped: still read as a pattern, whose escape names '*'
  EXPECT_FALSE(has_wildcard("plain/path~x"));
  EXPECT_FALSE(has_wildcard("{a,b}"));  // no brace expansion: no shell
}

TEST(HasLiveWildcard, OnlyUnescapedOnes) {
  EXPECT_TRUE(has_live_wildcard("photo [1].jpg"));
  EXPECT_TRUE(has_live_wildcard("a\\*b?"));
  EXPECT_FALSE(has_live_wildcard("a\\*b"));
  EXPECT_FALSE(has_live_wildcard("\\[x\\].gz"));
  EXPECT_FALSE(has_live_wildcard("plain"));
}

TEST(UnescapePattern, DropsTheEscapes) {
  EXPECT_EQ(unescape_pattern("a\\*b"), "a*b");
  EXPECT_EQ(unescape_pattern("\\\\x"), "\\x");
  EXPECT_EQ(unescape_pattern("photo [1].jpg"), "photo [1].jpg");
  EXPECT_EQ(unescape_pattern("end\\"), "end\\");  // a trailing backslash escapes nothing
}

// A scratch tree under /tmp, removed afterwards.
class WildcardTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rcp-glob-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    for (const char* d : {"logs", "logs/old", "logs/new.gz.d", "a1", "a2", "b1", ".hidden", "sp ace"})
      ASSERT_EQ(mkdir((root_ + "/" + d).c_str(), 0755), 0) << d;
    for (const char* f : {"logs/b.gz", "logs/a.gz", "logs/c.txt", "logs/.dot.gz", "logs/old/x.gz", "a1/x", "a2/x",
                          "a2/y", "b1/x", "star*name", "q?", ".hidden/h", "sp ace/f", "logs/[x].gz"})
      touch(f);
    ASSERT_EQ(symlink("logs", (root_ + "/link").c_str()), 0);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void touch(const std::string& rel) const {
    int fd = ::open((root_ + "/" + rel).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << rel;
    ::close(fd);
  }
  Paths expand(const std::string& pattern, size_t max = kMaxGlobMatches) const {
    auto r = expand_wildcard(OperandPath{root_, pattern}, max);
    EXPECT_TRUE(r.ok()) << pattern << ": " << (r.ok() ? "" : r.error().message);
    Paths out;
    if (r.ok())
      for (const auto& p : *r) out.push_back(p.substr(root_.size() + 1));
    return out;
  }
  std::string root_;
};

TEST_F(WildcardTree, StarMatchesSortedAndSkipsHiddenNames) {
  EXPECT_EQ(expand("logs/*.gz"), (Paths{"logs/[x].gz", "logs/a.gz", "logs/b.gz"}));  // bytewise order
  EXPECT_EQ(expand("logs/.*"), (Paths{"logs/.dot.gz"}));                             // never "." or ".."
  EXPECT_EQ(expand("*1/x"), (Paths{"a1/x", "b1/x"}));
  EXPECT_EQ(expand("a?/*"), (Paths{"a1/x", "a2/x", "a2/y"}));
  EXPECT_EQ(expand("[ab]1"), (Paths{"a1", "b1"}));
  EXPECT_EQ(expand("[!a]1"), (Paths{"b1"}));
  EXPECT_EQ(expand("sp ace/*"), (Paths{"sp ace/f"}));
  EXPECT_EQ(expand("link/a.*"), (Paths{"link/a.gz"}));  // the user's own symlinks lead on, as in glob(3)
  EXPECT_EQ(expand("*/*/x.gz"), (Paths{"link/old/x.gz", "logs/old/x.gz"}));
}

TEST_F(WildcardTree, TrailingSlashMatchesDirectoriesOnly) {
  EXPECT_EQ(expand("logs/*/"), (Paths{"logs/new.gz.d/", "logs/old/"}));
  EXPECT_EQ(expand("a*/"), (Paths{"a1/", "a2/"}));
}

TEST_F(WildcardTree, EscapesNameWildcardCharacters) {
  EXPECT_EQ(expand("star\\*name"), (Paths{"star*name"}));
  EXPECT_EQ(expand("q\\?"), (Paths{"q?"}));
  EXPECT_EQ(expand("logs/\\[x\\].gz"), (Paths{"logs/[x].gz"}));
  EXPECT_EQ(expand("star*"), (Paths{"star*name"}));
}

TEST_F(WildcardTree, NoMatchIsAnError) {
  for (const char* pattern : {"logs/*.zip", "nodir/*.gz", "*1/missing", "logs/c.txt/*", "a1/x/"}) {
    auto r = expand_wildcard(OperandPath{root_, pattern});
    ASSERT_FALSE(r.ok()) << pattern;
    EXPECT_EQ(r.error().code, Errc::io);
    EXPECT_NE(r.error().message.find("No such file or directory"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(root_ + "/" + pattern), std::string::npos) << r.error().message;
  }
}

TEST_F(WildcardTree, TooManyMatchesIsAnError) {
  EXPECT_EQ(expand("a*/*", 3).size(), 3u);
  auto r = expand_wildcard(OperandPath{root_, "a*/*"}, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::too_large);
  EXPECT_NE(r.error().message.find("more than 2 entries"), std::string::npos) << r.error().message;
  // Intermediate directories count too: the bound holds as the expansion goes.
  auto mid = expand_wildcard(OperandPath{root_, "*/x"}, 2);
  ASSERT_FALSE(mid.ok());
  EXPECT_EQ(mid.error().code, Errc::too_large);
}

TEST_F(WildcardTree, TheBaseIsNeverAPattern) {
  const std::string odd = root_ + "/[b]*";
  ASSERT_EQ(mkdir(odd.c_str(), 0755), 0);
  touch("[b]*/inside");
  auto r = expand_wildcard(OperandPath{odd, "*"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (Paths{odd + "/inside"}));
}

TEST_F(WildcardTree, ExpandOperand) {
  // Without a wildcard: the one path, existing or not (the copy says what is missing).
  auto plain = expand_operand("nothing/here", root_, users());
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, (Paths{root_ + "/nothing/here"}));
  auto globbed = expand_operand("logs/?.gz", root_, users());
  ASSERT_TRUE(globbed.ok()) << globbed.error().message;
  EXPECT_EQ(*globbed, (Paths{root_ + "/logs/a.gz", root_ + "/logs/b.gz"}));
  auto abs = expand_operand(root_ + "/a*", "/nonexistent-home", users());
  ASSERT_TRUE(abs.ok()) << abs.error().message;
  EXPECT_EQ(*abs, (Paths{root_ + "/a1", root_ + "/a2"}));
  EXPECT_FALSE(expand_operand("~nobody/*", root_, users()).ok());
}

TEST_F(WildcardTree, APatternMatchingNothingStandsForItself) {
  // As scp's remote shell leaves a word matching nothing as written: a name with '[' needs no escaping.
  touch("photo [1].jpg");
  auto literal = expand_operand("photo [1].jpg", root_, users());
  ASSERT_TRUE(literal.ok()) << literal.error().message;
  EXPECT_EQ(*literal, (Paths{root_ + "/photo [1].jpg"}));
  auto below = expand_operand("logs/[x].gz", root_, users());  // matches no "x.gz"
  ASSERT_TRUE(below.ok()) << below.error().message;
  EXPECT_EQ(*below, (Paths{root_ + "/logs/[x].gz"}));
  // A pattern that matches something means what it matches, as in a shell.
  touch("logs/x.gz");
  auto matched = expand_operand("logs/[x].gz", root_, users());
  ASSERT_TRUE(matched.ok()) << matched.error().message;
  EXPECT_EQ(*matched, (Paths{root_ + "/logs/x.gz"}));
  // Neither a match nor the literal path: still the clear error.
  for (const char* missing : {"logs/[y].gz", "logs/[x].gz/", "nodir/[1]"}) {
    auto none = expand_operand(missing, root_, users());
    ASSERT_FALSE(none.ok()) << missing;
    EXPECT_EQ(none.error().code, Errc::io) << missing;
  }
}

}  // namespace
}  // namespace rcp
