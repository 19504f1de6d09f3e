#include "base/port_range.h"

#include <gtest/gtest.h>

namespace rcp {
namespace {

PortRange must_parse(std::string_view spec) {
  auto r = PortRange::parse(spec);
  EXPECT_TRUE(r.ok()) << "spec \"" << spec << "\": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : PortRange{};
}

TEST(PortRange, EmptyAndZeroMeanAny) {
  for (const char* spec : {"", "0", "  ", " 0 "}) {
    PortRange p = must_parse(spec);
    EXPECT_TRUE(p.any()) << spec;
    EXPECT_EQ(p.count(), 0u);
    EXPECT_TRUE(p.contains(1234));  // any port is allowed
    EXPECT_EQ(p.to_string(), "0");
  }
}

TEST(PortRange, SinglePort) {
  PortRange p = must_parse("9100");
  ASSERT_FALSE(p.any());
  ASSERT_EQ(p.spans().size(), 1u);
  EXPECT_EQ(p.spans()[0].first, 9100);
  EXPECT_EQ(p.spans()[0].last, 9100);
  EXPECT_EQ(p.count(), 1u);
  EXPECT_TRUE(p.contains(9100));
  EXPECT_FALSE(p.contains(9101));
}

TEST(PortRange, SpansAndListsKeepOrder) {
  PortRange p = must_parse("8000-8999,9100");
  ASSERT_EQ(p.spans().size(), 2u);
  EXPECT_EQ(p.spans()[0].first, 8000);
  EXPECT_EQ(p.spans()[0].last, 8999);
  EXPECT_EQ(p.spans()[1].first, 9100);
  EXPECT_EQ(p.count(), 1001u);
  EXPECT_TRUE(p.contains(8000));
  EXPECT_TRUE(p.contains(8999));
  EXPECT_TRUE(p.contains(9100));
  EXPECT_FALSE(p.contains(7999));
  EXPECT_FALSE(p.contains(9000));
  EXPECT_EQ(p.to_string(), "8000-8999,9100");

  PortRange rev = must_parse("9100,8000-8001");
  EXPECT_EQ(rev.spans()[0].first, 9100);  // tried first by bind
  EXPECT_EQ(rev.count(), 3u);
}

TEST(PortRange, WhitespaceAllowed) {
  PortRange p = must_parse(" 9000 - 9001 , 7 ");
  ASSERT_EQ(p.spans().size(), 2u);
  EXPECT_EQ(p.spans()[0].first, 9000);
  EXPECT_EQ(p.spans()[0].last, 9001);
  EXPECT_EQ(p.spans()[1].first, 7);
  EXPECT_EQ(p.count(), 3u);
  EXPECT_EQ(p.to_string(), "9000-9001,7");
}

TEST(PortRange, Extremes) {
  PortRange p = must_parse("1-65535");
  EXPECT_EQ(p.count(), 65535u);
  EXPECT_TRUE(p.contains(1));
  EXPECT_TRUE(p.contains(65535));
  EXPECT_FALSE(p.contains(0));
  EXPECT_EQ(must_parse("65535").count(), 1u);
  EXPECT_EQ(must_parse("5-5").count(), 1u);
}

TEST(PortRange, OverlapsCountedOnce) {
  EXPECT_EQ(must_parse("8000-8010,8005").count(), 11u);
  EXPECT_EQ(must_parse("8005-8020,8000-8010").count(), 21u);
  EXPECT_EQ(must_parse("10,10,10").count(), 1u);
}

TEST(PortRange, RoundTrip) {
  for (const char* spec : {"1", "8000-8999,9100", "7,9-12,65535"}) {
    PortRange p = must_parse(spec);
    EXPECT_EQ(p.to_string(), spec);
    EXPECT_EQ(must_parse(p.to_string()).count(), p.count());
  }
}

TEST(PortRange, BadSpecsRejectedNamingTheItem) {
  struct Case {
    const char* spec;
    const char* item;  // must appear quoted in the message
  };
  const Case cases[] = {
      {"abc", "\"abc\""},
      {"80,abc", "\"abc\""},
      {"0,80", "\"0\""},
      {"80,0", "\"0\""},
      {"0-10", "\"0-10\""},
      {"65536", "\"65536\""},
      {"1-70000", "\"1-70000\""},
      {"99999999999999999999", "\"99999999999999999999\""},
      {"9000-8000", "\"9000-8000\""},
      {"1,,2", "\"\""},
      {"1,", "\"\""},
      {",1", "\"\""},
      {"80x", "\"80x\""},
      {"80 x", "\"80 x\""},
      {"1-2-3", "\"1-2-3\""},
      {"-5", "\"-5\""},
      {"5-", "\"5-\""},
      {"+5", "\"+5\""},
      {"8 0", "\"8 0\""},
      {"-", "\"-\""},
  };
  for (const Case& c : cases) {
    auto r = PortRange::parse(c.spec);
    ASSERT_FALSE(r.ok()) << "accepted \"" << c.spec << "\"";
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << c.spec;
    EXPECT_NE(r.error().message.find(c.item), std::string::npos)
        << "spec \"" << c.spec << "\" message: " << r.error().message;
  }
}

}  // namespace
}  // namespace rcp
