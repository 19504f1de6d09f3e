// Every typed message: the round trip, extra trailing fields ignored, and
// each malformed field refused with an error naming it.
#include <gtest/gtest.h>

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

TEST(Messages, Verdicts) {
  VerdictsMsg v{3, {FileVerdict::send, FileVerdict::unchanged, FileVerdict::failed}};
  auto x = decode_as<VerdictsMsg>(v.encode());
  ASSERT_TRUE(x.ok()) << x.error().message;
  EXPECT_EQ(x->first, 3u);
  EXPECT_EQ(x->verdicts, v.verdicts);
  expect_refused<VerdictsMsg>(encode_message(MsgType::verdicts, 0u, Bytes{}), "no verdicts");
  expect_refused<VerdictsMsg>(encode_message(MsgType::verdicts, 0u, Bytes{6}), "unknown verdict");
  expect_refused<VerdictsMsg>(encode_message(MsgType::verdicts, 0u, Bytes(FilesMsg::kMaxFilesPerMsg + 1)), "verdicts");
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
  r.overwrite = true;
  expect_refused<ReceiveMsg>(r.encode(), "at most one");
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
