// TCP sockets on loopback: a listener on an exact port, connect with a
// deadline, accept, TCP_NODELAY, and TCP_CONGESTION by name (an unknown
// algorithm is an error and leaves the kernel's default).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/tcp_socket.h"

namespace rcp {
namespace {

TEST(TcpSocket, ListenConnectAcceptWithNoDelay) {
  auto l = tcp_listen(Address::parse("127.0.0.1", 0).value());
  ASSERT_TRUE(l.ok()) << l.error().message;
  auto at = local_address_of(l->get()).value();
  EXPECT_NE(at.port(), 0);
  // The same port again is taken.
  EXPECT_FALSE(tcp_listen(at).ok());
  auto c = tcp_connect(at, kSeconds);
  ASSERT_TRUE(c.ok()) << c.error().message;
  Result<UniqueFd> s = make_error(Errc::timeout, "");
  for (int i = 0; i < 200 && !s; ++i) {
    s = tcp_accept(l->get());
    if (!s) usleep(5000);
  }
  ASSERT_TRUE(s.ok());
  for (int fd : {c->get(), s->get()}) {
    int v = 0;
    socklen_t len = sizeof v;
    ASSERT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    EXPECT_EQ(v, 1);
  }
  EXPECT_EQ(tcp_accept(l->get()).error().code, Errc::timeout);  // nothing else waits
}

TEST(TcpSocket, ConnectToAClosedPortFailsAtOnce) {
  auto l = tcp_listen(Address::parse("127.0.0.1", 0).value()).value();
  auto at = local_address_of(l.get()).value();
  l.reset();
  auto c = tcp_connect(at, 2 * kSeconds);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().code, Errc::timeout);
}

TEST(TcpSocket, CongestionControlByName) {
  auto l = tcp_listen(Address::parse("127.0.0.1", 0).value()).value();
  auto c = tcp_connect(local_address_of(l.get()).value(), kSeconds).value();
  const std::string before = tcp_congestion(c.get());
  EXPECT_FALSE(before.empty());
  ASSERT_TRUE(set_tcp_congestion(c.get(), "reno").ok());  // always built in, always allowed
  EXPECT_EQ(tcp_congestion(c.get()), "reno");
  auto bad = set_tcp_congestion(c.get(), "no-such-cc");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("no-such-cc"), std::string::npos);
  EXPECT_EQ(tcp_congestion(c.get()), "reno");  // unchanged
}

}  // namespace
}  // namespace rcp
