#include "base/address.h"
#include "base/resolve.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace rcp {
namespace {

TEST(Address, ParseIPv4) {
  auto r = Address::parse("127.0.0.1", 443);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->family(), AF_INET);
  EXPECT_EQ(r->len, sizeof(sockaddr_in));
  EXPECT_EQ(r->port(), 443);
  EXPECT_EQ(r->host_string(), "127.0.0.1");
  EXPECT_EQ(r->to_string(), "127.0.0.1:443");
}

TEST(Address, ParseIPv6WithAndWithoutBrackets) {
  for (const char* host : {"::1", "[::1]"}) {
    auto r = Address::parse(host, 443);
    ASSERT_TRUE(r.ok()) << host << ": " << r.error().message;
    EXPECT_EQ(r->family(), AF_INET6);
    EXPECT_EQ(r->len, sizeof(sockaddr_in6));
    EXPECT_EQ(r->port(), 443);
    EXPECT_EQ(r->host_string(), "::1");
    EXPECT_EQ(r->to_string(), "[::1]:443");
  }
  auto full = Address::parse("2001:db8::42", 1);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->to_string(), "[2001:db8::42]:1");
}

TEST(Address, ParseV4MappedAndWildcards) {
  auto mapped = Address::parse("::ffff:10.1.2.3", 5);
  ASSERT_TRUE(mapped.ok());
  EXPECT_EQ(mapped->family(), AF_INET6);
  auto any4 = Address::parse("0.0.0.0", 0);
  ASSERT_TRUE(any4.ok());
  EXPECT_EQ(any4->family(), AF_INET);
  auto any6 = Address::parse("::", 0);
  ASSERT_TRUE(any6.ok());
  EXPECT_EQ(any6->to_string(), "[::]:0");
}

TEST(Address, ParseRejectsNamesAndGarbage) {
  for (const char* host : {"", "localhost", "example.com", "1.2.3", "1.2.3.4.5", "256.1.1.1", "::1::2", "[::1", "::1]",
                           "[127.0.0.1]", "[]", " 127.0.0.1", "1.2.3.4:80", "fe80::1%no-such-if0"}) {
    auto r = Address::parse(host, 1);
    EXPECT_FALSE(r.ok()) << "accepted \"" << host << "\"";
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, Errc::invalid_argument);
      EXPECT_NE(r.error().message.find(host), std::string::npos) << r.error().message;
    }
  }
}

TEST(Address, SetPort) {
  auto v4 = Address::parse("10.0.0.1", 1);
  auto v6 = Address::parse("::1", 1);
  ASSERT_TRUE(v4.ok() && v6.ok());
  v4->set_port(65535);
  v6->set_port(8080);
  EXPECT_EQ(v4->port(), 65535);
  EXPECT_EQ(v6->port(), 8080);
  EXPECT_EQ(v6->to_string(), "[::1]:8080");
}

TEST(Address, Equality) {
  auto a = Address::parse("127.0.0.1", 1000);
  auto b = Address::parse("127.0.0.1", 1000);
  auto c = Address::parse("127.0.0.1", 1001);
  auto d = Address::parse("127.0.0.2", 1000);
  auto e = Address::parse("::1", 1000);
  auto f = Address::parse("[::1]", 1000);
  auto g = Address::parse("::ffff:127.0.0.1", 1000);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok() && e.ok() && f.ok() && g.ok());
  EXPECT_TRUE(*a == *b);
  EXPECT_FALSE(*a == *c);
  EXPECT_FALSE(*a == *d);
  EXPECT_FALSE(*a == *e);
  EXPECT_TRUE(*e == *f);
  EXPECT_FALSE(*a == *g);  // v4-mapped is a different family
  EXPECT_TRUE(Address{} == Address{});
}

TEST(ResolveAddress, NumericAndLocalhost) {
  auto v4 = resolve_address("127.0.0.1", 22);
  ASSERT_TRUE(v4.ok()) << v4.error().message;
  ASSERT_EQ(v4->size(), 1u);
  EXPECT_EQ((*v4)[0].to_string(), "127.0.0.1:22");

  auto v6 = resolve_address("[::1]", 22);
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  ASSERT_EQ(v6->size(), 1u);
  EXPECT_EQ((*v6)[0].to_string(), "[::1]:22");

  auto local = resolve_address("localhost", 7);
  ASSERT_TRUE(local.ok()) << local.error().message;
  ASSERT_FALSE(local->empty());
  for (const Address& a : *local) {
    EXPECT_EQ(a.port(), 7);
    EXPECT_TRUE(a.host_string() == "127.0.0.1" || a.host_string() == "::1") << a.to_string();
  }
}

TEST(ResolveAddress, FailureNamesHost) {
  auto r = resolve_address("no-such-host.invalid", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no-such-host.invalid"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace rcp
