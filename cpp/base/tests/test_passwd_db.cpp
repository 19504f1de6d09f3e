#include "base/passwd_db.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace rcp {
namespace {

constexpr const char* kPasswd =
    "root:x:0:0:root:/root:/bin/bash\n"
    "# a comment\n"
    "\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n"
    "nohome:x:1001:1001:::/bin/sh\n"
    "+nisuser::::::\n"
    "alice:x:2000:2000:a second alice:/elsewhere:/bin/sh\n";

constexpr const char* kGroup =
    "root:x:0:\n"
    "staff:x:50:alice,bob\n"
    "alice:x:1000:\n";

TEST(PasswdLine, AllFields) {
  auto e = parse_passwd_line("alice:x:1000:100:Alice A.:/home/alice:/bin/bash");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->name, "alice");
  EXPECT_EQ(e->uid, 1000u);
  EXPECT_EQ(e->gid, 100u);
  EXPECT_EQ(e->home, "/home/alice");
}

TEST(PasswdLine, EmptyFieldsAreAllowedButTheName) {
  auto e = parse_passwd_line("svc::4294967294:0:::");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->uid, 4294967294u);  // nobody on some systems: the largest real id
  EXPECT_EQ(e->home, "");
}

TEST(PasswdLine, MalformedLinesSayWhy) {
  struct Case {
    const char* line;
    const char* why;
  };
  for (const Case& c :
       {Case{"alice:x:1000:100:A:/home/alice", "7 ':'-separated fields"},
        Case{"alice:x:1000:100:A:/home/alice:/bin/sh:extra", "7 ':'-separated fields"},
        Case{"", "7 ':'-separated fields"}, Case{":x:1000:100:A:/home/a:/bin/sh", "empty user name"},
        Case{"a:x::100:A:/h:/bin/sh", "user id ''"}, Case{"a:x:-1:100:A:/h:/bin/sh", "user id '-1'"},
        Case{"a:x:+5:100:A:/h:/bin/sh", "user id '+5'"}, Case{"a:x: 5:100:A:/h:/bin/sh", "user id ' 5'"},
        Case{"a:x:0x10:100:A:/h:/bin/sh", "user id '0x10'"},
        Case{"a:x:4294967295:100:A:/h:/bin/sh", "user id"},  // (uid_t)-1 is no id
        Case{"a:x:99999999999:100:A:/h:/bin/sh", "user id"}, Case{"a:x:5:g:A:/h:/bin/sh", "group id 'g'"}}) {
    auto e = parse_passwd_line(c.line);
    ASSERT_FALSE(e.ok()) << c.line;
    EXPECT_NE(e.error().message.find(c.why), std::string::npos) << c.line << " -> " << e.error().message;
    EXPECT_NE(e.error().message.find("malformed passwd entry"), std::string::npos) << e.error().message;
  }
}

TEST(PasswdLine, BoundedLength) {
  const std::string home(PasswdDb::kMaxLineBytes, 'h');
  auto e = parse_passwd_line("a:x:1:1::/" + home + ":/bin/sh");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("longer than 4096 bytes"), std::string::npos) << e.error().message;
  EXPECT_TRUE(parse_passwd_line("a:x:1:1::/" + home.substr(0, 4000) + ":/bin/sh").ok());
}

TEST(PasswdLine, NulIsMalformed) {
  auto e = parse_passwd_line(std::string("a:x:1:1::/h\0x:/bin/sh", 21));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("NUL"), std::string::npos) << e.error().message;
}

TEST(GroupLine, FieldsAndErrors) {
  auto g = parse_group_line("staff:x:50:alice,bob");
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g->name, "staff");
  EXPECT_EQ(g->gid, 50u);
  EXPECT_FALSE(parse_group_line("staff:x:50").ok());
  EXPECT_FALSE(parse_group_line("staff:x:50:a:b").ok());
  EXPECT_FALSE(parse_group_line(":x:50:").ok());
  auto bad = parse_group_line("staff:x:fifty:");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("malformed group entry: group id 'fifty'"), std::string::npos)
      << bad.error().message;
}

TEST(PasswdDb, LookupsByNameAndId) {
  PasswdDb db = PasswdDb::parse(kPasswd, kGroup);
  EXPECT_TRUE(db.problems().empty()) << db.problems().front();
  ASSERT_EQ(db.users().size(), 5u);  // comment, blank and NIS lines skipped
  ASSERT_NE(db.user("alice"), nullptr);
  EXPECT_EQ(db.user("alice")->home, "/home/alice");  // the first entry wins, as in the files backend
  EXPECT_EQ(db.user(2000u)->home, "/elsewhere");
  EXPECT_EQ(db.user(0u)->name, "root");
  EXPECT_EQ(db.user("nisuser"), nullptr);
  EXPECT_EQ(db.user("bob"), nullptr);
  EXPECT_EQ(db.user(4242u), nullptr);
  EXPECT_EQ(db.user("nohome")->home, "");
  ASSERT_NE(db.group("staff"), nullptr);
  EXPECT_EQ(db.group("staff")->gid, 50u);
  EXPECT_EQ(db.group(1000u)->name, "alice");
  EXPECT_EQ(db.group("wheel"), nullptr);
}

TEST(PasswdDb, NumericFallback) {
  PasswdDb db = PasswdDb::parse(kPasswd, kGroup);
  EXPECT_EQ(db.user_name(1000), "alice");
  EXPECT_EQ(db.user_name(4242), "4242");
  EXPECT_EQ(db.group_name(50), "staff");
  EXPECT_EQ(db.group_name(77), "77");
  PasswdDb nobody;  // no files at all (an empty chroot)
  EXPECT_EQ(nobody.user_name(0), "0");
  EXPECT_EQ(nobody.group_name(0), "0");
}

TEST(PasswdDb, MalformedLinesAreSkippedAndReported) {
  PasswdDb db = PasswdDb::parse("root:x:0:0:root:/root:/bin/bash\nbroken line\nbob:x:12:12::/home/bob:/bin/sh\n",
                                "staff:x:fifty:\nusers:x:100:\n");
  ASSERT_EQ(db.users().size(), 2u);
  EXPECT_EQ(db.user("bob")->uid, 12u);
  ASSERT_EQ(db.groups().size(), 1u);
  ASSERT_EQ(db.problems().size(), 2u);
  EXPECT_EQ(db.problems()[0].rfind("passwd line 2: malformed passwd entry", 0), 0u) << db.problems()[0];
  EXPECT_EQ(db.problems()[1].rfind("group line 1: malformed group entry", 0), 0u) << db.problems()[1];
}

TEST(PasswdDb, ProblemsAreBounded) {
  std::string junk;
  for (int i = 0; i < 1000; ++i) junk += "junk\n";
  PasswdDb db = PasswdDb::parse(junk + "ok:x:1:1::/h:/bin/sh", "");
  EXPECT_EQ(db.users().size(), 1u);
  EXPECT_LE(db.problems().size(), 101u);
  EXPECT_EQ(db.problems().back(), "and 900 more malformed lines");
}

TEST(PasswdDb, NoTrailingNewline) {
  PasswdDb db = PasswdDb::parse("a:x:1:1::/h:/bin/sh", "g:x:5:");
  EXPECT_EQ(db.user("a")->uid, 1u);
  EXPECT_EQ(db.group("g")->gid, 5u);
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/rcp-passwd-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    for (const char* f : {"/passwd", "/group"}) unlink((path_ + f).c_str());
    rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(PasswdDb, LoadsFiles) {
  TempDir dir;
  std::ofstream(dir.path() + "/passwd") << kPasswd;
  std::ofstream(dir.path() + "/group") << kGroup;
  auto db = PasswdDb::load(dir.path() + "/passwd", dir.path() + "/group");
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ(db->user("alice")->uid, 1000u);
  EXPECT_EQ(db->group_name(50), "staff");
}

TEST(PasswdDb, MissingFilesAreEmptyTables) {
  TempDir dir;
  auto db = PasswdDb::load(dir.path() + "/passwd", dir.path() + "/group");
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_TRUE(db->users().empty());
  EXPECT_EQ(db->user_name(0), "0");
}

TEST(PasswdDb, UnreadableOrOversizedFileIsAnError) {
  TempDir dir;
  auto as_dir = PasswdDb::load(dir.path(), dir.path() + "/group");  // a directory: read fails
  ASSERT_FALSE(as_dir.ok());
  EXPECT_NE(as_dir.error().message.find(dir.path()), std::string::npos) << as_dir.error().message;
  {
    std::ofstream big(dir.path() + "/passwd");
    const std::string line = "u:x:1:1::/h:/bin/sh\n";
    std::string block;
    while (block.size() < (1u << 20)) block += line;
    for (size_t written = 0; written <= PasswdDb::kMaxFileBytes; written += block.size()) big << block;
  }
  auto big = PasswdDb::load(dir.path() + "/passwd", dir.path() + "/group");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, Errc::too_large);
  EXPECT_NE(big.error().message.find("larger than 64 MiB"), std::string::npos) << big.error().message;
}

}  // namespace
}  // namespace rcp
