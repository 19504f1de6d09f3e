// Every typed message: the round trip, extra trailing fields ignored, and
// each malformed field refused with an error naming it.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <tuple>
#include <vector>

#include "wire/messages.h"

namespace rcp {
namespace {

using Bytes = std::vector<uint8_t>;
using Strings = std::vector<std::string>;

template <typename T>
Result<T> decode_as(const Bytes& bytes) {
  auto m = decode_message(bytes);
  if (!m) return m.error();
  return T::decode(*m);
}

// Refused, with a protocol error whose message names `what`.
template <typename T>
void expect_refused(const Bytes& bytes, const std::string& what) {
  auto r = decode_as<T>(bytes);
  ASSERT_FALSE(r.ok()) << "accepted a message with a bad " << what;
  EXPECT_EQ(r.error().code, Errc::protocol);
  EXPECT_NE(r.error().message.find(what), std::string::npos) << r.error().message;
}

const std::string kFp(64, 'a');

TEST(Messages, EveryDecoderRefusesAnotherType) {
  const Bytes other = encode_message(MsgType::user, 1u);
  EXPECT_FALSE(decode_as<ExpectPeerMsg>(other).ok());
  EXPECT_FALSE(decode_as<ListeningMsg>(other).ok());
  EXPECT_FALSE(decode_as<ConnectPeerMsg>(other).ok());
  EXPECT_FALSE(decode_as<PeerConnectedMsg>(other).ok());
  EXPECT_FALSE(decode_as<SendMsg>(other).ok());
  EXPECT_FALSE(decode_as<ReceiveMsg>(other).ok());
  EXPECT_FALSE(decode_as<AbortMsg>(other).ok());
  EXPECT_FALSE(decode_as<ProgressMsg>(other).ok());
  EXPECT_FALSE(decode_as<LogMsg>(other).ok());
  EXPECT_FALSE(decode_as<ErrorMsg>(other).ok());
  EXPECT_FALSE(decode_as<ResultMsg>(other).ok());
  EXPECT_FALSE(decode_as<RootMsg>(other).ok());
  EXPECT_FALSE(decode_as<DirMsg>(other).ok());
  EXPECT_FALSE(decode_as<SymlinkMsg>(other).ok());
  EXPECT_FALSE(decode_as<SourceErrorMsg>(other).ok());
  EXPECT_FALSE(decode_as<DoneMsg>(other).ok());
  EXPECT_FALSE(decode_as<FinishedMsg>(other).ok());
  EXPECT_FALSE(decode_as<FilesMsg>(other).ok());
  EXPECT_FALSE(decode_as<VerdictsMsg>(other).ok());
  EXPECT_FALSE(decode_as<PlanMsg>(other).ok());
}

TEST(Messages, Files) {
  FilesMsg f{7, {{0, "", 5, -3, 999999999, 0644, {}}, {2, "a/b", 1ull << 40, 1700000000, 1, 04755, Bytes(16, 0xab)}}};
  auto x = decode_as<FilesMsg>(f.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->first, 7u);
  EXPECT_EQ(x->files, f.files);
  using Entry = std::tuple<unsigned, std::string, unsigned, int, unsigned, unsigned, Bytes>;
  auto one = [](const Entry& e) { return encode_message(MsgType::files, 0u, std::vector<Entry>{e}); };
  const std::string p = "p";
  expect_refused<FilesMsg>(encode_message(MsgType::files, 0u, std::vector<Entry>{}), "1 to 1024");
  expect_refused<FilesMsg>(encode_message(MsgType::files, 0u), "files");
  expect_refused<FilesMsg>(one({0, p, 1, 0, 1000000000, 0644, {}}), "mtime_ns");
  expect_refused<FilesMsg>(one({0, p, 1, 0, 0, 010000, {}}), "mode");
  expect_refused<FilesMsg>(one({0, p, 1, 0, 0, 0644, Bytes(3)}), "digest");
  expect_refused<FilesMsg>(one({0, p, 1, 0, 0, 0644, Bytes(17)}), "digest");
  expect_refused<FilesMsg>(one({0, std::string(kMaxPathBytes + 1, 'x'), 1, 0, 0, 0644, {}}), "relpath");
  expect_refused<FilesMsg>(encode_message(MsgType::files, 0u, std::vector<int>{1}), "not a list");
  std::vector<Entry> many(FilesMsg::kMaxFilesPerMsg + 1, Entry{0, p, 1, 0, 0, 0644, {}});
  expect_refused<FilesMsg>(encode_message(MsgType::files, 0u, many), "1 to 1024");
}

TEST(Messages, FilesWithInodes) {
  FileEntry first{0, "a", 5, 1, 2, 0644, {}};
  first.link_first = true;
  first.inode = std::array<uint64_t, 2>{64769, 1ull << 40};
  FileEntry later{0, "b", 5, 1, 2, 0644, {}};
  later.link_to = 7;
  later.inode = first.inode;
  FilesMsg f{7, {first, later}};
  auto x = decode_as<FilesMsg>(f.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->files, f.files);
  // Anything but [] or [device, inode] is refused.
  using Entry = std::tuple<unsigned, std::string, unsigned, int, unsigned, unsigned, Bytes, bool, std::vector<unsigned>,
                           std::vector<unsigned>, std::vector<unsigned>, std::vector<unsigned>>;
  auto with = [](std::vector<unsigned> inode) {
    return encode_message(MsgType::files, 0u,
                          std::vector<Entry>{{0, "p", 1, 0, 0, 0644, {}, false, {}, {}, {}, inode}});
  };
  EXPECT_TRUE(decode_as<FilesMsg>(with({})).ok());
  EXPECT_FALSE(decode_as<FilesMsg>(with({})).value().files[0].inode.has_value());
  expect_refused<FilesMsg>(with({1}), "inode");
  expect_refused<FilesMsg>(with({1, 2, 3}), "inode");
}

TEST(Messages, SendInodes) {
  SendMsg s{{"a"}};
  s.hard_links = true;
  s.inodes = true;
  auto x = decode_as<SendMsg>(s.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_TRUE(x->inodes);
  EXPECT_FALSE(decode_as<SendMsg>(SendMsg{{"a"}}.encode())->inodes);  // absent: false
}

TEST(Messages, Verdicts) {
  VerdictsMsg v{3, {FileVerdict::send, FileVerdict::unchanged, FileVerdict::failed}, {}};
  auto x = decode_as<VerdictsMsg>(v.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->first, 3u);
  EXPECT_EQ(x->verdicts, v.verdicts);
  expect_refused<VerdictsMsg>(encode_message(MsgType::verdicts, 0u, Bytes{}), "no verdicts");
  expect_refused<VerdictsMsg>(encode_message(MsgType::verdicts, 0u, Bytes{7}),
                              "unknown verdict");  // 6: linked (protocol 5)
  expect_refused<VerdictsMsg>(encode_message(MsgType::verdicts, 0u, Bytes(FilesMsg::kMaxFilesPerMsg + 1)), "verdicts");
}

TEST(Messages, SendBandwidthLimit) {
  SendMsg s{{"a"}};
  s.bandwidth_limit = 2u << 20;
  auto x = decode_as<SendMsg>(s.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->bandwidth_limit, 2u << 20);
  EXPECT_FALSE(x->checksum);
  EXPECT_EQ(decode_as<SendMsg>(SendMsg{{"a"}}.encode())->bandwidth_limit, 0u);  // absent: no limit
  expect_refused<SendMsg>(encode_message(MsgType::send, Strings{"a"}, false, false, Strings{}, true, false, false,
                                         false, false, false, false, std::string("x")),
                          "bandwidth_limit");
}

TEST(Messages, VerdictsWithResumeOffers) {
  VerdictsMsg v{3, {FileVerdict::unchanged, FileVerdict::send, FileVerdict::replace}, {}};
  v.resume.push_back({1, {0x05}, Bytes(2 * 32, 0xab)});
  v.resume.push_back({2, {0x00, 0x80}, Bytes(32, 0xcd)});
  auto x = decode_as<VerdictsMsg>(v.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->resume, v.resume);
  EXPECT_TRUE(decode_as<VerdictsMsg>(VerdictsMsg{0, {FileVerdict::send}, {}}.encode())->resume.empty());
  auto refused = [&](std::vector<ResumeOffer> offers, const std::string& what) {
    VerdictsMsg bad{0, {FileVerdict::unchanged, FileVerdict::send, FileVerdict::send}, std::move(offers)};
    expect_refused<VerdictsMsg>(bad.encode(), what);
  };
  refused({{0, {0x01}, Bytes(32)}}, "not asked for");  // an unchanged file
  refused({{3, {0x01}, Bytes(32)}}, "not asked for");  // no such file
  refused({{2, {0x01}, Bytes(32)}, {1, {0x01}, Bytes(32)}}, "out of order");
  refused({{1, {0x03}, Bytes(32)}}, "one 32-byte hash");                // two blocks, one hash
  refused({{1, {0x00}, Bytes{}}}, "one 32-byte hash");                  // nothing kept
  refused({{1, Bytes(kMaxBlockBitmap + 1, 0xff), Bytes{}}}, "blocks");  // bitmap too long
  // At most kMaxResumeBlocks hashes in one message, all files together.
  refused({{1, Bytes(kMaxBlockBitmap, 0xff), Bytes(kMaxResumeBlocks * 32)}, {2, {0x01}, Bytes(32)}}, "too many");
}

TEST(Messages, IncrementalOptions) {
  SendMsg s{{"a"}, false, true};
  EXPECT_TRUE(decode_as<SendMsg>(s.encode())->checksum);
  EXPECT_FALSE(decode_as<SendMsg>(SendMsg{{"a"}}.encode())->checksum);
  ReceiveMsg r{"d", 1, false, false, {{"any", ""}}, false, false, {}};
  r.update = true;
  r.checksum = true;
  auto x = decode_as<ReceiveMsg>(r.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_TRUE(x->update);
  EXPECT_FALSE(x->ignore_existing);
  EXPECT_TRUE(x->checksum);
  EXPECT_EQ(x->wildcards, Bytes{0});
  EXPECT_FALSE(x->partial);
  r.partial = true;
  EXPECT_TRUE(decode_as<ReceiveMsg>(r.encode())->partial);
  EXPECT_FALSE(decode_as<ReceiveMsg>(r.encode())->hard_links);
  r.hard_links = true;  // appended after partial
  EXPECT_TRUE(decode_as<ReceiveMsg>(r.encode())->hard_links);
  SendMsg sp{{"a"}};
  sp.partial = true;
  EXPECT_TRUE(decode_as<SendMsg>(sp.encode())->partial);
  r.overwrite = true;
  expect_refused<ReceiveMsg>(r.encode(), "at most one");
}

TEST(Messages, FiltersDeleteAndDryRun) {
  SendMsg s{{"a"}, false, false, {"- *.o", "+ keep/"}};
  auto sx = decode_as<SendMsg>(s.encode());
  ASSERT_TRUE(sx.ok()) << sx.error().message;
  EXPECT_EQ(sx->filters, s.filters);
  EXPECT_TRUE(decode_as<SendMsg>(SendMsg{{"a"}}.encode())->filters.empty());  // absent: none
  ReceiveMsg r{"d", 1, false, false, {{"any", ""}}, false, false, {}};
  EXPECT_FALSE(decode_as<ReceiveMsg>(r.encode())->delete_extraneous);
  r.filters = {"- x"};
  r.delete_extraneous = true;
  r.dry_run = true;
  auto rx = decode_as<ReceiveMsg>(r.encode());
  ASSERT_TRUE(rx.ok()) << rx.error().message;
  EXPECT_EQ(rx->filters, r.filters);
  EXPECT_TRUE(rx->delete_extraneous);
  EXPECT_FALSE(rx->delete_excluded);
  EXPECT_TRUE(rx->dry_run);
  // Bounded in count and length before anything parses the rules.
  s.filters = Strings(kMaxFilterRules + 1, "- x");
  expect_refused<SendMsg>(s.encode(), "filter rules");
  s.filters = {"- " + std::string(kMaxFilterRuleBytes, 'a')};
  expect_refused<SendMsg>(s.encode(), "filters");
  ResultMsg res{1, 2, 3, 4, 5, 6, {}, 0, 0, {}, 9, 3};
  auto resx = decode_as<ResultMsg>(res.encode());
  ASSERT_TRUE(resx.ok()) << resx.error().message;
  EXPECT_EQ(resx->deleted, 9u);
  EXPECT_EQ(resx->plan_omitted, 3u);
}

TEST(Messages, Plan) {
  PlanMsg p{{{PlanAction::create, "d/a", 5}, {PlanAction::remove, "d/x/", 0}, {PlanAction::kept, "d/k", 1}}};
  auto x = decode_as<PlanMsg>(p.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->entries, p.entries);
  EXPECT_STREQ(plan_action_name(PlanAction::remove), "delete");
  expect_refused<PlanMsg>(encode_message(MsgType::plan, std::vector<Strings>{}), "entries");
  expect_refused<PlanMsg>(encode_message(MsgType::plan, std::vector<Strings>{{"erase", "x"}}), "entry");
  using Row = std::tuple<std::string, std::string, unsigned>;
  expect_refused<PlanMsg>(encode_message(MsgType::plan, std::vector<Row>{{"erase", "x", 1u}}), "action");
  PlanMsg many;
  many.entries.assign(PlanMsg::kMaxPlanPerMsg + 1, PlanEntry{PlanAction::create, "a", 0});
  expect_refused<PlanMsg>(many.encode(), "entries");
}

TEST(Messages, PlanWithInodes) {
  PlanMsg p{{{PlanAction::create, "d/a", 5, std::array<uint64_t, 2>{3, 99}}, {PlanAction::create, "d/b", 1}}};
  auto x = decode_as<PlanMsg>(p.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->entries, p.entries);
  using Row = std::tuple<std::string, std::string, unsigned, std::vector<unsigned>>;
  expect_refused<PlanMsg>(encode_message(MsgType::plan, std::vector<Row>{{"create", "x", 1u, {5}}}), "inode");
  EXPECT_TRUE(decode_as<PlanMsg>(encode_message(MsgType::plan, std::vector<Row>{{"create", "x", 1u, {}}})).ok());
}

TEST(Messages, ExpectPeer) {
  auto x = decode_as<ExpectPeerMsg>(ExpectPeerMsg{kFp}.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->fingerprint, kFp);
  EXPECT_EQ(x->transport, "quic");  // absent (an older master): QUIC
  auto tcp = decode_as<ExpectPeerMsg>(ExpectPeerMsg{kFp, "tcp"}.encode());
  ASSERT_TRUE(tcp.ok()) << tcp.error().message;
  EXPECT_EQ(tcp->transport, "tcp");
  EXPECT_TRUE(
      decode_as<ExpectPeerMsg>(encode_message(MsgType::expect_peer, kFp, std::string("auto"), 7u, std::string("new")))
          .ok());
  expect_refused<ExpectPeerMsg>(encode_message(MsgType::expect_peer, kFp, 7u), "transport");
  expect_refused<ExpectPeerMsg>(encode_message(MsgType::expect_peer, kFp, std::string(17, 't')), "transport");
  EXPECT_EQ(x->transport, "quic");
  EXPECT_EQ(decode_as<ExpectPeerMsg>(encode_message(MsgType::expect_peer, kFp)).value().transport, "quic");  // absent
  EXPECT_EQ(decode_as<ExpectPeerMsg>(ExpectPeerMsg{kFp, kTransportRelay}.encode()).value().transport, "relay");
  EXPECT_TRUE(
      decode_as<ExpectPeerMsg>(encode_message(MsgType::expect_peer, kFp, std::string("quic"), 7u, std::string("new")))
          .ok());
  expect_refused<ExpectPeerMsg>(encode_message(MsgType::expect_peer, kFp, 7u), "transport");
  expect_refused<ExpectPeerMsg>(encode_message(MsgType::expect_peer, kFp, std::string(17, 'q')), "transport");
  expect_refused<ExpectPeerMsg>(encode_message(MsgType::expect_peer), "fingerprint");
  expect_refused<ExpectPeerMsg>(encode_message(MsgType::expect_peer, 5u), "fingerprint");
  expect_refused<ExpectPeerMsg>(encode_message(MsgType::expect_peer, std::string(129, 'a')), "fingerprint");
}

TEST(Messages, Listening) {
  auto x = decode_as<ListeningMsg>(ListeningMsg{4433, {"10.0.0.1", "::1"}}.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->port, 4433);
  EXPECT_EQ(x->addresses, (Strings{"10.0.0.1", "::1"}));
  expect_refused<ListeningMsg>(encode_message(MsgType::listening, 0u, Strings{}), "port");
  expect_refused<ListeningMsg>(encode_message(MsgType::listening, 65536u, Strings{}), "port");
  expect_refused<ListeningMsg>(encode_message(MsgType::listening, -1, Strings{}), "port");
  expect_refused<ListeningMsg>(encode_message(MsgType::listening, 1u, std::string("a")), "addresses");
  expect_refused<ListeningMsg>(encode_message(MsgType::listening, 1u, std::vector<int>{1}), "addresses");
  expect_refused<ListeningMsg>(encode_message(MsgType::listening, 1u, Strings{std::string(257, 'h')}), "addresses");
  expect_refused<ListeningMsg>(encode_message(MsgType::listening, 1u), "addresses");
}

TEST(Messages, ConnectPeer) {
  auto x = decode_as<ConnectPeerMsg>(ConnectPeerMsg{{"192.0.2.1"}, 9000, kFp}.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->addresses, Strings{"192.0.2.1"});
  EXPECT_EQ(x->port, 9000);
  EXPECT_EQ(x->fingerprint, kFp);
  expect_refused<ConnectPeerMsg>(encode_message(MsgType::connect_peer, Strings{}, 0u, kFp), "port");
  expect_refused<ConnectPeerMsg>(encode_message(MsgType::connect_peer, Strings{}, 70000u, kFp), "port");
  expect_refused<ConnectPeerMsg>(encode_message(MsgType::connect_peer, Strings{}, 1u, 3u), "fingerprint");
  expect_refused<ConnectPeerMsg>(encode_message(MsgType::connect_peer, 1u, 1u, kFp), "addresses");
  EXPECT_EQ(x->transport, "quic");  // absent: QUIC, and the default fallback timeout
  EXPECT_EQ(x->fallback_timeout_ms, 2000u);
  auto a = decode_as<ConnectPeerMsg>(ConnectPeerMsg{{"192.0.2.1"}, 9000, kFp, "auto", 500}.encode());
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->transport, "auto");
  EXPECT_EQ(a->fallback_timeout_ms, 500u);
  expect_refused<ConnectPeerMsg>(encode_message(MsgType::connect_peer, Strings{}, 1u, kFp, 4u), "transport");
  expect_refused<ConnectPeerMsg>(
      encode_message(MsgType::connect_peer, Strings{}, 1u, kFp, std::string("auto"), kMaxFallbackTimeoutMs + 1),
      "fallback_timeout_ms");
  EXPECT_EQ(x->transport, "quic");
  EXPECT_EQ(decode_as<ConnectPeerMsg>(encode_message(MsgType::connect_peer, Strings{}, 1u, kFp)).value().transport,
            "quic");  // absent
  // Relayed: no address and port 0 (and port 0 only then).
  auto relay = decode_as<ConnectPeerMsg>(ConnectPeerMsg{{}, 0, kFp, kTransportRelay}.encode());
  ASSERT_TRUE(relay.ok()) << relay.error().message;
  EXPECT_EQ(relay->transport, "relay");
  EXPECT_EQ(relay->port, 0);
  expect_refused<ConnectPeerMsg>(encode_message(MsgType::connect_peer, Strings{}, 0u, kFp, std::string("quic")),
                                 "port");
  expect_refused<ConnectPeerMsg>(encode_message(MsgType::connect_peer, Strings{}, 1u, kFp, 1u), "transport");
  expect_refused<ConnectPeerMsg>(ConnectPeerMsg{{}, 9000, kFp, kTransportRelay}.encode(), "port");
  expect_refused<ConnectPeerMsg>(ConnectPeerMsg{{"192.0.2.1"}, 0, kFp, kTransportRelay}.encode(), "addresses");
}

TEST(Messages, EmptyMessages) {
  EXPECT_TRUE(decode_as<PeerConnectedMsg>(PeerConnectedMsg{}.encode()).ok());
  EXPECT_EQ(decode_as<PeerConnectedMsg>(encode_message(MsgType::peer_connected))->transport, "quic");  // absent
  EXPECT_EQ(decode_as<PeerConnectedMsg>(PeerConnectedMsg{"tcp"}.encode())->transport, "tcp");
  expect_refused<PeerConnectedMsg>(encode_message(MsgType::peer_connected, 1u), "transport");
  EXPECT_TRUE(decode_as<FinishedMsg>(FinishedMsg{}.encode()).ok());
  EXPECT_TRUE(decode_as<FinishedMsg>(encode_message(MsgType::finished, 1u)).ok());  // appended fields
}

TEST(Messages, Send) {
  auto x = decode_as<SendMsg>(SendMsg{{"/data/a", "b c"}}.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->paths, (Strings{"/data/a", "b c"}));
  EXPECT_FALSE(x->resolve);  // absent (an older master): taken as they are
  auto remote = decode_as<SendMsg>(SendMsg{{"~/a", "logs/*.gz"}, true}.encode());
  ASSERT_TRUE(remote.ok()) << remote.error().message;
  EXPECT_TRUE(remote->resolve);
  EXPECT_FALSE(decode_as<SendMsg>(SendMsg{{"a"}, false}.encode())->resolve);
  expect_refused<SendMsg>(encode_message(MsgType::send, Strings{"a"}, 1u), "resolve");
  expect_refused<SendMsg>(encode_message(MsgType::send), "paths");
  expect_refused<SendMsg>(encode_message(MsgType::send, std::string("/a")), "paths");
  expect_refused<SendMsg>(encode_message(MsgType::send, Strings{std::string(kMaxPathBytes + 1, 'p')}), "paths");
}

TEST(Messages, Receive) {
  ReceiveMsg r{"/backup/", 2, true, false, {{"name", "a"}, {"glob", "*.pdf"}}, true, false, {}};
  auto x = decode_as<ReceiveMsg>(r.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->path, "/backup/");
  EXPECT_EQ(x->sources, 2u);
  EXPECT_TRUE(x->trailing_slash);
  EXPECT_FALSE(x->overwrite);
  EXPECT_EQ(x->root_rules, r.root_rules);
  EXPECT_TRUE(x->fsync);
  // fsync was appended: a master that does not send it means false.
  const Strings rule{"any", ""};
  auto old = decode_as<ReceiveMsg>(encode_message(MsgType::receive, std::string("d"), 1u, false, true, rule));
  ASSERT_TRUE(old.ok()) << old.error().message;
  EXPECT_FALSE(old->fsync);
  EXPECT_FALSE(old->resolve);
  EXPECT_TRUE(old->overwrite);
  ReceiveMsg remote{"~/in/", 1, true, false, {{"any", ""}}, false, true, {}};
  auto y = decode_as<ReceiveMsg>(remote.encode());
  ASSERT_TRUE(y.ok()) << y.error().message;
  EXPECT_TRUE(y->resolve);
  EXPECT_EQ(y->path, "~/in/");
  auto bad = [&](auto path, auto n, auto slash, auto over, auto rules, auto fsync) {
    return encode_message(MsgType::receive, path, n, slash, over, rules, fsync);
  };
  const std::string d = "d";
  expect_refused<ReceiveMsg>(bad(1u, 1u, false, false, rule, false), "path");
  expect_refused<ReceiveMsg>(bad(std::string(kMaxPathBytes + 1, 'x'), 1u, false, false, rule, false), "path");
  expect_refused<ReceiveMsg>(bad(d, 0u, false, false, Strings{}, false), "sources");
  expect_refused<ReceiveMsg>(bad(d, kMaxSources + 1, false, false, rule, false), "sources");
  expect_refused<ReceiveMsg>(bad(d, 1u, 1u, false, rule, false), "trailing_slash");
  expect_refused<ReceiveMsg>(bad(d, 1u, false, std::string("y"), rule, false), "overwrite");
  expect_refused<ReceiveMsg>(bad(d, 1u, false, false, std::string("any"), false), "root_rules");
  expect_refused<ReceiveMsg>(bad(d, 2u, false, false, rule, false), "one root rule per source");
  expect_refused<ReceiveMsg>(bad(d, 1u, false, false, Strings{"any"}, false), "one root rule per source");
  expect_refused<ReceiveMsg>(bad(d, 1u, false, false, rule, 1u), "fsync");
  expect_refused<ReceiveMsg>(encode_message(MsgType::receive, d, 1u, false, false, rule, false, 1u), "resolve");
}

TEST(Messages, ReceiveWildcards) {
  ReceiveMsg r{"d/", 3, true, false, {{"name", "x"}, {"glob", "*.pdf"}, {"any", ""}}, false, true, {1, 1, 0}};
  auto x = decode_as<ReceiveMsg>(r.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->wildcards, (std::vector<uint8_t>{1, 1, 0}));
  // Absent (appended): a "glob" operand may have several roots, any other one.
  r.wildcards.clear();
  auto old = decode_as<ReceiveMsg>(r.encode());
  ASSERT_TRUE(old.ok()) << old.error().message;
  EXPECT_EQ(old->wildcards, (std::vector<uint8_t>{0, 1, 0}));
  const Strings rule{"any", ""};
  const std::string d = "d";
  auto with = [&](auto wildcards) {
    return encode_message(MsgType::receive, d, 1u, false, false, rule, false, false, wildcards);
  };
  expect_refused<ReceiveMsg>(with(std::vector<uint8_t>{}), "one wildcards byte per source");
  expect_refused<ReceiveMsg>(with(std::vector<uint8_t>{0, 0}), "one wildcards byte per source");
  expect_refused<ReceiveMsg>(with(std::vector<uint8_t>{2}), "other than 0 or 1");
  expect_refused<ReceiveMsg>(with(std::string("1")), "wildcards");
}

TEST(Messages, Abort) {
  auto x = decode_as<AbortMsg>(AbortMsg{"user interrupt"}.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->reason, "user interrupt");
  expect_refused<AbortMsg>(encode_message(MsgType::abort, 3u), "reason");
  expect_refused<AbortMsg>(encode_message(MsgType::abort, std::string(kMaxErrorText + 1, 'r')), "reason");
  // The encoder cuts a long reason so its receiver takes it.
  EXPECT_TRUE(decode_as<AbortMsg>(AbortMsg{std::string(3 * kMaxErrorText, 'r')}.encode()).ok());
}

TEST(Messages, Progress) {
  auto x = decode_as<ProgressMsg>(ProgressMsg{UINT64_MAX, 2, 3, 4}.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->bytes_done, UINT64_MAX);
  EXPECT_EQ(x->files_done, 2u);
  EXPECT_EQ(x->bytes_total, 3u);
  EXPECT_EQ(x->files_total, 4u);
  EXPECT_EQ(x->current, "");
  auto named = decode_as<ProgressMsg>(ProgressMsg{1, 2, 3, 4, "dir/f\xff.bin"}.encode());
  ASSERT_TRUE(named.ok()) << named.error().message;
  EXPECT_EQ(named->current, "dir/f\xff.bin");
  // Appended in 5: a progress without it is an empty one; a wrong type or an overlong path is refused.
  auto older = decode_as<ProgressMsg>(encode_message(MsgType::progress, 1u, 2u, 3u, 4u));
  ASSERT_TRUE(older.ok()) << older.error().message;
  EXPECT_EQ(older->current, "");
  expect_refused<ProgressMsg>(encode_message(MsgType::progress, 1u, 2u, 3u, 4u, 5u), "current");
  expect_refused<ProgressMsg>(encode_message(MsgType::progress, 1u, 2u, 3u, 4u, std::string(kMaxPathBytes + 1, 'p')),
                              "current");
  expect_refused<ProgressMsg>(encode_message(MsgType::progress, 1u, 2u, 3u), "files_total");
  expect_refused<ProgressMsg>(encode_message(MsgType::progress, -1, 2u, 3u, 4u), "bytes_done");
  expect_refused<ProgressMsg>(encode_message(MsgType::progress, 1u, std::string("2"), 3u, 4u), "files_done");
}

TEST(Messages, Log) {
  auto x = decode_as<LogMsg>(LogMsg{"warn", "disk nearly full"}.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->level, "warn");
  EXPECT_EQ(x->text, "disk nearly full");
  expect_refused<LogMsg>(encode_message(MsgType::log, std::string(17, 'l'), std::string("t")), "level");
  expect_refused<LogMsg>(encode_message(MsgType::log, std::string("info")), "text");
  expect_refused<LogMsg>(encode_message(MsgType::log, std::string("info"), std::string(kMaxLogText + 1, 't')), "text");
}

TEST(Messages, Error) {
  auto x = decode_as<ErrorMsg>(ErrorMsg{"no space"}.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->text, "no space");
  auto cut = decode_as<ErrorMsg>(ErrorMsg{std::string(kMaxErrorText, 'a') + "tail"}.encode());
  ASSERT_TRUE(cut.ok());
  EXPECT_LE(cut->text.size(), kMaxErrorText);
  EXPECT_EQ(cut->text.substr(cut->text.size() - 4), "tail");  // the end says where
  expect_refused<ErrorMsg>(encode_message(MsgType::error), "text");
  expect_refused<ErrorMsg>(encode_message(MsgType::error, std::string(kMaxErrorText + 1, 'e')), "text");
}

TEST(Messages, Result) {
  ResultMsg r{1, 2, 3, 4, 5, 6, {{"a/b", "permission denied"}}, 0, 0, {}};
  auto x = decode_as<ResultMsg>(r.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->files, 1u);
  EXPECT_EQ(x->bytes, 2u);
  EXPECT_EQ(x->dirs, 3u);
  EXPECT_EQ(x->symlinks, 4u);
  EXPECT_EQ(x->kept, 5u);
  EXPECT_EQ(x->failed, 6u);
  EXPECT_EQ(x->errors, r.errors);
  EXPECT_EQ(x->unchanged, 0u);
  r.unchanged = 7;
  r.ignored = 8;
  r.kept_paths = {"x", "y/z"};
  auto y = decode_as<ResultMsg>(r.encode());
  ASSERT_TRUE(y.ok()) << y.error().message;
  EXPECT_EQ(y->unchanged, 7u);
  EXPECT_EQ(y->ignored, 8u);
  EXPECT_EQ(y->kept_paths, r.kept_paths);
  EXPECT_EQ(y->resumed_bytes, 0u);
  r.resumed_bytes = 1ull << 40;
  EXPECT_EQ(decode_as<ResultMsg>(r.encode())->resumed_bytes, 1ull << 40);
  using Errors = std::vector<Strings>;
  expect_refused<ResultMsg>(encode_message(MsgType::result, 1u, 2u, 3u, 4u, 5u, Errors{}), "failed");
  expect_refused<ResultMsg>(encode_message(MsgType::result, 1u, 2u, 3u, 4u, 5u, 6u), "errors");
  expect_refused<ResultMsg>(encode_message(MsgType::result, 1u, 2u, 3u, 4u, 5u, 6u, Errors{{"p"}}), "error");
  using Ints = std::vector<std::vector<int>>;
  expect_refused<ResultMsg>(encode_message(MsgType::result, 1u, 2u, 3u, 4u, 5u, 6u, Ints{{1, 2}}), "error path");
  expect_refused<ResultMsg>(encode_message(MsgType::result, 1u, -2, 3u, 4u, 5u, 6u, Errors{}), "bytes");
}

TEST(Messages, Root) {
  auto x = decode_as<RootMsg>(RootMsg{3, "tree", 'd', "", {}, 0}.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->index, 3u);
  EXPECT_EQ(x->name, "tree");
  EXPECT_EQ(x->kind, 'd');
  EXPECT_EQ(x->error, "");
  EXPECT_EQ(x->operand_index(), 3u);  // not given: one root per operand
  EXPECT_EQ(x->roots, 0u);
  RootMsg expanded{7, "b.gz", 'f', "", 2u, 9};  // root 7 of 9, from operand 2's wildcard
  auto y = decode_as<RootMsg>(expanded.encode());
  ASSERT_TRUE(y.ok()) << y.error().message;
  EXPECT_EQ(y->index, 7u);
  EXPECT_EQ(y->operand_index(), 2u);
  EXPECT_EQ(y->roots, 9u);
  const std::string n = "n", k = "f", e;
  auto old = decode_as<RootMsg>(encode_message(MsgType::root, 5u, n, k, e));  // before the appended fields
  ASSERT_TRUE(old.ok()) << old.error().message;
  EXPECT_EQ(old->operand_index(), 5u);
  EXPECT_EQ(old->roots, 0u);
  expect_refused<RootMsg>(encode_message(MsgType::root, 0u, n, k, e, uint64_t{1} << 32), "operand");
  expect_refused<RootMsg>(encode_message(MsgType::root, 0u, n, k, e, 0u, kMaxRoots + 1), "roots");
  expect_refused<RootMsg>(encode_message(MsgType::root, uint64_t{1} << 32, n, k, e), "index");
  expect_refused<RootMsg>(encode_message(MsgType::root, 0u, std::string(kMaxNameBytes + 1, 'n'), k, e), "name");
  expect_refused<RootMsg>(encode_message(MsgType::root, 0u, n, std::string("dd"), e), "kind");
  expect_refused<RootMsg>(encode_message(MsgType::root, 0u, n, std::string("x"), e), "kind");
  expect_refused<RootMsg>(encode_message(MsgType::root, 0u, n, k), "error");
  expect_refused<RootMsg>(encode_message(MsgType::root, 0u, n, k, std::string(kMaxErrorText + 1, 'e')), "error");
}

TEST(Messages, DirWithNegativeMtime) {
  auto x = decode_as<DirMsg>(DirMsg{1, "a/b", 0755, -86400, 999999999}.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->index, 1u);
  EXPECT_EQ(x->relpath, "a/b");
  EXPECT_EQ(x->mode, 0755u);
  EXPECT_EQ(x->mtime_s, -86400);
  EXPECT_EQ(x->mtime_ns, 999999999u);
  const std::string p = "p";
  const std::string too_long(kMaxPathBytes + 1, 'p');
  expect_refused<DirMsg>(encode_message(MsgType::dir, 0u, too_long, 0755u, 0, 0u), "relpath");
  expect_refused<DirMsg>(encode_message(MsgType::dir, 0u, p, 010000u, 0, 0u), "mode");
  expect_refused<DirMsg>(encode_message(MsgType::dir, 0u, p, 0755u, std::string("now"), 0u), "mtime_s");
  expect_refused<DirMsg>(encode_message(MsgType::dir, 0u, p, 0755u, UINT64_MAX, 0u), "mtime_s");
  expect_refused<DirMsg>(encode_message(MsgType::dir, 0u, p, 0755u, 0, 1000000000u), "mtime_ns");
  expect_refused<DirMsg>(encode_message(MsgType::dir, 0u, p, 0755u, 0), "mtime_ns");
}

TEST(Messages, Symlink) {
  auto x = decode_as<SymlinkMsg>(SymlinkMsg{0, "l", "../t", 1600000000, 5}.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->relpath, "l");
  EXPECT_EQ(x->target, "../t");
  EXPECT_EQ(x->mtime_s, 1600000000);
  EXPECT_EQ(x->mtime_ns, 5u);
  const std::string p = "p";
  expect_refused<SymlinkMsg>(encode_message(MsgType::symlink, 0u, p, std::string(kMaxLinkTarget + 1, 't'), 0, 0u),
                             "target");
  expect_refused<SymlinkMsg>(encode_message(MsgType::symlink, 0u, p, 4u, 0, 0u), "target");
  expect_refused<SymlinkMsg>(encode_message(MsgType::symlink, 0u, p, p, 0.5, 0u), "mtime_s");
}

TEST(Messages, SourceError) {
  auto x = decode_as<SourceErrorMsg>(SourceErrorMsg{2, "x", "unreadable"}.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->index, 2u);
  EXPECT_EQ(x->relpath, "x");
  EXPECT_EQ(x->text, "unreadable");
  EXPECT_TRUE(decode_as<SourceErrorMsg>(SourceErrorMsg{0, "", std::string(2 * kMaxErrorText, 'e')}.encode()).ok());
  expect_refused<SourceErrorMsg>(encode_message(MsgType::source_error, 0u, std::string("x")), "text");
  expect_refused<SourceErrorMsg>(
      encode_message(MsgType::source_error, std::string("0"), std::string("x"), std::string("t")), "index");
}

TEST(Messages, Done) {
  auto x = decode_as<DoneMsg>(DoneMsg{7, 1u << 30}.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->files, 7u);
  EXPECT_EQ(x->bytes, 1u << 30);
  expect_refused<DoneMsg>(encode_message(MsgType::done, 1u), "bytes");
  expect_refused<DoneMsg>(encode_message(MsgType::done, -1, 0u), "files");
}

}  // namespace
}  // namespace rcp

namespace rcp {
namespace {

TEST(Messages, FidelityOptions) {
  SendMsg s{{"a"}, false, false};
  EXPECT_TRUE(decode_as<SendMsg>(s.encode())->sparse);  // absent: holes do not travel
  s.sparse = false;
  s.hard_links = s.owners = s.xattrs = s.acls = s.keep_capabilities = s.dereference = true;
  auto x = decode_as<SendMsg>(s.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_FALSE(x->sparse);
  EXPECT_TRUE(x->hard_links && x->owners && x->xattrs && x->acls && x->keep_capabilities && x->dereference);
  ReceiveMsg r{"d", 1, false, false, {{"any", ""}}, false, false, {}};
  EXPECT_EQ(decode_as<ReceiveMsg>(r.encode())->owner, ReceiveMsg::kOff);
  r.owner = ReceiveMsg::kAuto;
  r.group = ReceiveMsg::kOn;
  r.numeric_ids = r.xattrs = r.acls = true;
  auto y = decode_as<ReceiveMsg>(r.encode());
  ASSERT_TRUE(y.ok()) << y.error().message;
  EXPECT_EQ(y->owner, ReceiveMsg::kAuto);
  EXPECT_EQ(y->group, ReceiveMsg::kOn);
  EXPECT_TRUE(y->numeric_ids && y->xattrs && y->acls && !y->keep_capabilities);
  Bytes bad = encode_message(MsgType::receive, "d", 1u, false, false, Strings{"any", ""}, false, false, Bytes{0}, false,
                             false, false, Strings{}, false, false, false, 3u);
  expect_refused<ReceiveMsg>(bad, "owner");
  ResultMsg res;
  res.sparse_bytes = 1ull << 40;
  res.hard_links = 7;
  auto z = decode_as<ResultMsg>(res.encode());
  ASSERT_TRUE(z.ok()) << z.error().message;
  EXPECT_EQ(z->sparse_bytes, 1ull << 40);
  EXPECT_EQ(z->hard_links, 7u);
}

TEST(Messages, OwnersAndXattrs) {
  const Ownership owner{1000, 100, "alice", "users"};
  const Xattrs attrs{{"user.a", std::string("\0\1\2", 3)}, {"trusted.b", ""}};
  DirMsg d{0, "sub", 0755, 1, 2, owner, attrs};
  auto dir = decode_as<DirMsg>(d.encode());
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  EXPECT_EQ(dir->owner, owner);
  EXPECT_EQ(dir->xattrs, attrs);
  EXPECT_FALSE(decode_as<DirMsg>(DirMsg{0, "sub", 0755, 1, 2}.encode())->owner.has_value());
  SymlinkMsg l{0, "l", "t", 1, 2, std::nullopt, attrs};
  auto link = decode_as<SymlinkMsg>(l.encode());
  ASSERT_TRUE(link.ok()) << link.error().message;
  EXPECT_FALSE(link->owner.has_value());
  EXPECT_EQ(link->xattrs, attrs);
  FilesMsg f{5,
             {FileEntry{0, "a", 1, 2, 3, 0644, {}, true, std::nullopt, owner, attrs},
              FileEntry{0, "b", 1, 2, 3, 0644, {}, false, 5, std::nullopt, {}},
              FileEntry{0, "c", 1, 2, 3, 0644, {}, false, std::nullopt, std::nullopt, {}}}};
  auto files = decode_as<FilesMsg>(f.encode());
  ASSERT_TRUE(files.ok()) << files.error().message;
  EXPECT_EQ(files->files, f.files);
  // A hard link names an earlier file, never itself or one after it.
  FilesMsg ahead{5, {FileEntry{0, "b", 1, 2, 3, 0644, {}, false, 5, std::nullopt, {}}}};
  expect_refused<FilesMsg>(ahead.encode(), "hard link");
  // Bounds: -1 is no owner; names, values and counts are limited.
  expect_refused<DirMsg>(encode_message(MsgType::dir, 0u, "s", 0u, 0, 0u, std::vector<uint32_t>{UINT32_MAX, 0u}),
                         "owner");
  DirMsg big = d;
  big.owner = Ownership{UINT32_MAX, 0, "", ""};
  expect_refused<DirMsg>(big.encode(), "uid");
  big.owner = Ownership{1, 1, std::string(kMaxOwnerName + 1, 'u'), ""};
  expect_refused<DirMsg>(big.encode(), "user");
  big.owner.reset();
  big.xattrs = {{std::string(kMaxXattrName + 1, 'n'), "v"}};
  expect_refused<DirMsg>(big.encode(), "xattr name");
  big.xattrs = {{"user.v", std::string(kMaxXattrValue + 1, 'v')}};
  expect_refused<DirMsg>(big.encode(), "xattr value");
  big.xattrs = Xattrs(kMaxXattrs + 1, {"user.n", "v"});
  expect_refused<DirMsg>(big.encode(), "xattrs");
  big.xattrs = Xattrs(5, {"user.n", std::string(kMaxXattrValue, 'v')});  // 320 KiB in all
  expect_refused<DirMsg>(big.encode(), "256 KiB");
}

}  // namespace
}  // namespace rcp
