#include "ssh/ssh_proxy.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace rcp {
namespace {

TEST(ParseProxyJump, HopForms) {
  auto hops = parse_proxy_jump("gw,alice@10.0.0.1:2222,ssh://bob@h:22,[::1]:2200,carol@[fe80::1]");
  ASSERT_TRUE(hops) << hops.error().message;
  ASSERT_EQ(hops->size(), 5u);
  EXPECT_EQ((*hops)[0].host, "gw");
  EXPECT_EQ((*hops)[0].user, "");
  EXPECT_FALSE((*hops)[0].port);
  EXPECT_EQ((*hops)[1].user, "alice");
  EXPECT_EQ((*hops)[1].host, "10.0.0.1");
  EXPECT_EQ((*hops)[1].port, 2222);
  EXPECT_EQ((*hops)[1].text, "alice@10.0.0.1:2222");
  EXPECT_EQ((*hops)[2].user, "bob");
  EXPECT_EQ((*hops)[2].host, "h");
  EXPECT_EQ((*hops)[2].port, 22);
  EXPECT_EQ((*hops)[3].host, "::1");
  EXPECT_EQ((*hops)[3].port, 2200);
  EXPECT_EQ((*hops)[4].user, "carol");
  EXPECT_EQ((*hops)[4].host, "fe80::1");
  EXPECT_FALSE((*hops)[4].port);
}

TEST(ParseProxyJump, RefusesBadHops) {
  for (const char* bad : {"", "a,,b", "h:0", "h:65536", "h:x", "@h", "u@", "[::1", "[::1]x", "a,"})
    EXPECT_FALSE(parse_proxy_jump(bad)) << bad;
}

TEST(ExpandProxyCommand, OpenSshEscapes) {
  auto cmd = expand_proxy_command("ssh -W %h:%p -l %r gw # %n 100%%", "10.0.0.2", 2222, "alice", "db");
  ASSERT_TRUE(cmd) << cmd.error().message;
  EXPECT_EQ(*cmd, "ssh -W 10.0.0.2:2222 -l alice gw # db 100%");
  EXPECT_FALSE(expand_proxy_command("nc %x", "h", 22, "u", "h"));
  EXPECT_FALSE(expand_proxy_command("nc %", "h", 22, "u", "h"));
}

TEST(ExpandProxyCommand, RefusesShellMetacharactersInNames) {
  EXPECT_FALSE(expand_proxy_command("ssh -l %r -W %h:%p gw", "h", 22, "x;touch /tmp/owned", "h"));
  EXPECT_FALSE(expand_proxy_command("nc %h %p", "h$(id)", 22, "u", "h"));
  EXPECT_FALSE(expand_proxy_command("echo %n", "h", 22, "u", "a b"));
  EXPECT_TRUE(expand_proxy_command("nc %h %p", "h", 22, "x;y", "h"));  // %r not used: not refused
}

// The command's stdin and stdout are the transport: what we write comes back
// through `cat`, and the command is reaped when the transport goes.
TEST(SpawnProxyCommand, RelaysThroughTheCommand) {
  auto proxy = spawn_proxy_command("cat");
  ASSERT_TRUE(proxy) << proxy.error().message;
  const int fd = (*proxy)->take_fd();
  ASSERT_GE(fd, 0);
  EXPECT_EQ((*proxy)->take_fd(), -1);
  ASSERT_EQ(::write(fd, "ping", 4), 4);
  char buf[4] = {};
  ASSERT_EQ(::read(fd, buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  EXPECT_EQ((*proxy)->failure(), "");  // still running (after a short wait for it to exit)
  ::close(fd);
  proxy->reset();
}

TEST(SpawnProxyCommand, ExitStatusIsReported) {
  auto proxy = spawn_proxy_command("sh -c 'exit 5'");
  ASSERT_TRUE(proxy);
  const int fd = (*proxy)->take_fd();
  char c;
  EXPECT_EQ(::read(fd, &c, 1), 0);  // the command's end of the socket closed
  ::close(fd);
  const std::string failure = (*proxy)->failure();  // waits a moment for the exit, as after a failed connect
  EXPECT_EQ(failure, "the ProxyCommand 'sh -c 'exit 5'' exited with status 5");
}

}  // namespace
}  // namespace rcp
