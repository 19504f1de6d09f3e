#include "ssh/ssh_config.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <string>

namespace rcp {
namespace {

// A scratch directory with config files, removed at the end.
class SshConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rcp-sshcfg-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::optional<std::string> value(const std::string& file, const std::string& host,
                                   const std::string& keyword = "StrictHostKeyChecking", const std::string& user = "") {
    auto r = ssh_config_value({file}, SshConfigQuery{host, "", user}, keyword);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : std::nullopt;
  }

  std::string dir_;
};

TEST_F(SshConfigTest, FirstValueWinsPerHostBlock) {
  const auto f = write("c",
                       "# comment\n"
                       "Host web*  !web-internal\n  StrictHostKeyChecking accept-new\n"
                       "Host db\n  StrictHostKeyChecking=no\n"
                       "Host *\n  StrictHostKeyChecking yes\n  HostName \"spaced name\"\n");
  EXPECT_EQ(value(f, "web1"), "accept-new");
  EXPECT_EQ(value(f, "WEB2"), "accept-new");   // host names compare case-insensitively
  EXPECT_EQ(value(f, "web-internal"), "yes");  // negated
  EXPECT_EQ(value(f, "db"), "no");             // "Keyword=value"
  EXPECT_EQ(value(f, "other"), "yes");
  EXPECT_EQ(value(f, "other", "stricthostkeychecking"), "yes");  // keywords too
  EXPECT_EQ(value(f, "db", "HostName"), "spaced name");
  EXPECT_EQ(value(f, "db", "Port"), std::nullopt);
}

TEST_F(SshConfigTest, GlobalLinesApplyToEveryHostUntilTheFirstBlock) {
  const auto f = write("c", "StrictHostKeyChecking ask\nHost a\n  StrictHostKeyChecking no\n");
  EXPECT_EQ(value(f, "a"), "ask");
}

TEST_F(SshConfigTest, MatchBlocks) {
  const auto f = write("c",
                       "Match originalhost a,b user bob\n  StrictHostKeyChecking no\n"
                       "Match exec true\n  StrictHostKeyChecking accept-new\n"  // not evaluated: not applied
                       "Match all\n  StrictHostKeyChecking yes\n");
  EXPECT_EQ(value(f, "b", "StrictHostKeyChecking", "bob"), "no");
  EXPECT_EQ(value(f, "b", "StrictHostKeyChecking", "alice"), "yes");
  EXPECT_EQ(value(f, "c", "StrictHostKeyChecking", "bob"), "yes");
}

TEST_F(SshConfigTest, IncludeInsideAHostBlock) {
  write("inc-1.conf", "StrictHostKeyChecking no\n");
  const auto f = write("c", "Host inc\n  Include " + dir_ + "/inc-*.conf\nHost *\n  StrictHostKeyChecking yes\n");
  EXPECT_EQ(value(f, "inc"), "no");
  EXPECT_EQ(value(f, "other"), "yes");
  const auto loop = write("loop", "Include " + dir_ + "/loop\n");
  auto r = ssh_config_value({loop}, SshConfigQuery{"x", "", ""}, "StrictHostKeyChecking");
  EXPECT_FALSE(r);  // bounded, not a stack overflow
}

TEST_F(SshConfigTest, MissingFilesAreEmpty) { EXPECT_EQ(value(dir_ + "/absent", "x"), std::nullopt); }

TEST_F(SshConfigTest, CommandsKeepTheWholeLine) {
  const auto f = write("c", "Host a\n  ProxyCommand = ssh -W %h:%p  \"gw 1\"  \nHost b\n  ProxyCommand none\n");
  EXPECT_EQ(value(f, "a", "ProxyCommand"), "ssh -W %h:%p  \"gw 1\"");
  EXPECT_EQ(value(f, "b", "proxycommand"), "none");
}

TEST_F(SshConfigTest, FirstOfCompetingKeywordsWins) {
  const auto f = write("c", "Host a\n  ProxyCommand nc %h %p\n  ProxyJump gw\nHost *\n  ProxyJump other\n");
  auto a = ssh_config_first({f}, SshConfigQuery{"a", "", ""}, {"ProxyJump", "ProxyCommand"});
  ASSERT_TRUE(a && *a);
  EXPECT_EQ((*a)->keyword, "proxycommand");
  EXPECT_EQ((*a)->value, "nc %h %p");
  auto b = ssh_config_first({f}, SshConfigQuery{"b", "", ""}, {"ProxyJump", "ProxyCommand"});
  ASSERT_TRUE(b && *b);
  EXPECT_EQ((*b)->keyword, "proxyjump");
  EXPECT_EQ((*b)->value, "other");
}

TEST(HostKeyPolicy, Parses) {
  EXPECT_EQ(*parse_host_key_policy("yes"), HostKeyPolicy::yes);
  EXPECT_EQ(*parse_host_key_policy("Accept-New"), HostKeyPolicy::accept_new);
  EXPECT_EQ(*parse_host_key_policy("no"), HostKeyPolicy::no);
  EXPECT_EQ(*parse_host_key_policy("off"), HostKeyPolicy::no);
  EXPECT_EQ(*parse_host_key_policy("ask"), HostKeyPolicy::ask);
  EXPECT_FALSE(parse_host_key_policy("maybe"));
  EXPECT_STREQ(host_key_policy_name(HostKeyPolicy::accept_new), "accept-new");
}

}  // namespace
}  // namespace rcp
