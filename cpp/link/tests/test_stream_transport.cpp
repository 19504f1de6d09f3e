// StreamTransport: Links over one byte stream (a socketpair standing in for
// rcpd's stdin/stdout or the SSH channel). The framing codec, two Links
// talking through it (hello, sealed messages, logs, a data stream larger
// than the flow-control window), and a hostile peer writing raw bytes:
// bad preface, oversized lengths, unknown types and streams, window
// overruns, too many streams, truncated frames, a peer that never reads.
// Each ends the link with a clear error, never a crash or unbounded growth.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <thread>

#include "link/stream_transport.h"
#include "quic/certificate.h"
#include "wire/frame.h"
#include "wire/stream_kind.h"

namespace rcp {
namespace {

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

// ---------------------------------------------------------------- codec

std::vector<uint8_t> preface() { return {kStreamPreface.begin(), kStreamPreface.end()}; }

std::vector<uint8_t> header(uint8_t type, uint8_t flags, uint64_t stream, uint32_t length) {
  std::vector<uint8_t> out{type, flags};
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<uint8_t>(stream >> (8 * i)));
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(length >> (8 * i)));
  return out;
}

TEST(StreamFrames, RoundTripFedOneByteAtATime) {
  std::vector<uint8_t> wire = preface();
  encode_stream_frame(wire, StreamFrameType::data, kFin, 6, bytes_of("hello"));
  encode_stream_value(wire, StreamFrameType::credit, 2, 1234);
  encode_stream_value(wire, StreamFrameType::close, 0, 5, bytes_of("bye"));
  StreamFrameDecoder dec;
  std::vector<StreamFrame> got;
  for (uint8_t b : wire) {
    ASSERT_TRUE(dec.feed(std::span<const uint8_t>(&b, 1)).ok());
    for (;;) {
      auto f = dec.next();
      ASSERT_TRUE(f.ok()) << f.error().message;
      if (!f->has_value()) break;
      got.push_back(std::move(**f));
    }
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].type, StreamFrameType::data);
  EXPECT_EQ(got[0].flags, kFin);
  EXPECT_EQ(got[0].stream, 6u);
  EXPECT_EQ(got[0].payload, bytes_of("hello"));
  EXPECT_EQ(got[1].type, StreamFrameType::credit);
  EXPECT_EQ(got[1].value(), 1234u);
  EXPECT_EQ(got[2].type, StreamFrameType::close);
  EXPECT_EQ(got[2].value(), 5u);
  EXPECT_FALSE(dec.mid_frame());
}

Error decode_error(const std::vector<uint8_t>& wire) {
  StreamFrameDecoder dec;
  EXPECT_TRUE(dec.feed(wire).ok());
  for (;;) {
    auto f = dec.next();
    if (!f) return f.error();
    if (!f->has_value()) return Error{};
  }
}

TEST(StreamFrames, RejectsABadPrefaceAtItsFirstWrongByte) {
  auto e = decode_error(bytes_of("RCPX"));
  EXPECT_EQ(e.code, Errc::protocol);
  EXPECT_NE(e.message.find("preface"), std::string::npos);
  EXPECT_EQ(decode_error(bytes_of("RCPL")).code, Errc::ok);  // a prefix: wait for more
}

TEST(StreamFrames, RejectsAnOversizedLengthFromTheHeaderAlone) {
  auto wire = preface();
  auto h = header(1, 0, 0, 0xffffffffu);  // 4 GiB declared, none sent
  wire.insert(wire.end(), h.begin(), h.end());
  auto e = decode_error(wire);
  EXPECT_EQ(e.code, Errc::too_large);
  EXPECT_NE(e.message.find("4294967295"), std::string::npos);
  wire = preface();
  h = header(1, 0, 0, kMaxStreamDataPayload + 1);
  wire.insert(wire.end(), h.begin(), h.end());
  EXPECT_EQ(decode_error(wire).code, Errc::too_large);
}

TEST(StreamFrames, RejectsUnknownTypesAndMisSizedValues) {
  auto wire = preface();
  auto h = header(99, 0, 0, 0);
  wire.insert(wire.end(), h.begin(), h.end());
  EXPECT_NE(decode_error(wire).message.find("unknown link frame type 99"), std::string::npos);
  wire = preface();
  h = header(static_cast<uint8_t>(StreamFrameType::credit), 0, 0, 4);
  wire.insert(wire.end(), h.begin(), h.end());
  EXPECT_EQ(decode_error(wire).code, Errc::too_large);
  wire = preface();
  h = header(static_cast<uint8_t>(StreamFrameType::close), 0, 0, 8 + kMaxCloseReason + 1);
  wire.insert(wire.end(), h.begin(), h.end());
  EXPECT_EQ(decode_error(wire).code, Errc::too_large);
}

TEST(StreamFrames, ATruncatedFrameIsMidFrame) {
  std::vector<uint8_t> wire = preface();
  encode_stream_frame(wire, StreamFrameType::data, 0, 0, bytes_of("abcdef"));
  wire.pop_back();
  StreamFrameDecoder dec;
  ASSERT_TRUE(dec.feed(wire).ok());
  auto f = dec.next();
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->has_value());
  EXPECT_TRUE(dec.mid_frame());
}

// ---------------------------------------------------------------- links

class StreamTransportTest : public ::testing::Test {
 protected:
  // A peer gone mid-write must be an error, not a signal that ends the test.
  void SetUp() override { std::signal(SIGPIPE, SIG_IGN); }

  Certificate client_cert = Certificate::generate().value();
  Certificate server_cert = Certificate::generate().value();
  SessionKey key{};

  StreamTransportTest() { EXPECT_TRUE(random_bytes(key).ok()); }

  LinkConfig config(bool client) {
    LinkConfig c{};
    c.tls = {client ? TlsRole::client : TlsRole::server,
             client ? client_cert : server_cert,
             {client ? server_cert.fingerprint : client_cert.fingerprint},
             ""};
    c.session_key = key;
    c.role = client ? "client" : "server";
    return c;
  }

  // A Link on one end of a fresh socketpair; the other end is returned raw.
  std::shared_ptr<Link> link_on_pair(bool client, UniqueFd& other, uint32_t max_frame = 0) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    other = UniqueFd(sv[1]);
    auto stream = FdStream::create(UniqueFd(dup(sv[0])), UniqueFd(sv[0]));
    EXPECT_TRUE(stream.ok());
    LinkConfig c = config(client);
    if (max_frame) c.quic.max_frame_body = max_frame;
    return StreamTransport::start(std::move(*stream), c, client);
  }

  // Two Links joined by a socketpair.
  std::pair<std::shared_ptr<Link>, std::shared_ptr<Link>> linked() {
    UniqueFd other;
    auto client = link_on_pair(true, other);
    int fd = other.release();
    auto stream = FdStream::create(UniqueFd(dup(fd)), UniqueFd(fd));
    EXPECT_TRUE(stream.ok());
    auto server = StreamTransport::start(std::move(*stream), config(false), false);
    return {client, server};
  }

  // Waits for the link to close; returns its error.
  static Error closed_error(Link& link) {
    for (int i = 0; i < 500 && !link.closed(); ++i) usleep(10000);
    EXPECT_TRUE(link.closed());
    return link.error();
  }
};

void write_all(int fd, const std::vector<uint8_t>& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    ASSERT_GT(n, 0);
    done += static_cast<size_t>(n);
  }
}

TEST_F(StreamTransportTest, HelloMessagesLogsAndData) {
  // Not a structured binding: the writer thread's lambda captures `client`.
  auto pair = linked();
  std::shared_ptr<Link> client = pair.first, server = pair.second;
  ASSERT_TRUE(client->wait_ready(5 * kSeconds).ok());
  ASSERT_TRUE(server->wait_ready(5 * kSeconds).ok());
  EXPECT_EQ(client->peer_hello().role, "server");
  EXPECT_EQ(server->peer_hello().role, "client");
  EXPECT_EQ(server->peer_fingerprint(), client_cert.fingerprint);

  // Sealed messages both ways, more than a window's worth in all.
  const std::vector<uint8_t> big(900u << 10, 0x5a);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(client->send_message(big).ok());
  ASSERT_TRUE(server->send_message(bytes_of("pong")).ok());
  for (int i = 0; i < 6; ++i) {
    auto m = server->recv_message(5 * kSeconds);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(*m, big);
  }
  EXPECT_EQ(client->recv_message(5 * kSeconds).value(), bytes_of("pong"));

  ASSERT_TRUE(server->send_log(bytes_of("a log line")).ok());
  EXPECT_EQ(client->recv_log(5 * kSeconds).value(), bytes_of("a log line"));

  // A data stream of 5 MiB: two and a half windows, so credit must flow back.
  std::vector<uint8_t> payload(5u << 20);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 7);
  std::thread writer([&] {
    auto id = client->open_data();
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(client->write(*id, payload, 10 * kSeconds).ok());
    ASSERT_TRUE(client->finish(*id).ok());
  });
  auto in = server->accept_data(5 * kSeconds);
  ASSERT_TRUE(in.ok());
  std::vector<uint8_t> got, buf(100000);
  for (;;) {
    auto n = server->read(*in, buf, 5 * kSeconds);
    ASSERT_TRUE(n.ok()) << n.error().message;
    if (*n == 0) break;
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<long>(*n));
  }
  writer.join();
  EXPECT_EQ(got, payload);

  client->close("done");
  auto e = closed_error(*server);
  EXPECT_EQ(e.code, Errc::closed);
  EXPECT_NE(e.message.find("peer closed the connection: done"), std::string::npos);
}

TEST_F(StreamTransportTest, AWrongSessionKeyFailsTheHello) {
  UniqueFd other;
  auto client = link_on_pair(true, other);
  LinkConfig c = config(false);
  c.session_key[0] ^= 1;
  int fd = other.release();
  auto server = StreamTransport::start(FdStream::create(UniqueFd(dup(fd)), UniqueFd(fd)).value(), c, false);
  auto e = closed_error(*server);
  EXPECT_EQ(e.code, Errc::auth);
  EXPECT_FALSE(client->wait_ready(5 * kSeconds).ok());
}

TEST_F(StreamTransportTest, EndOfStreamClosesTheLink) {
  UniqueFd other;
  auto server = link_on_pair(false, other);
  other.reset();
  auto e = closed_error(*server);
  EXPECT_EQ(e.code, Errc::closed);
  EXPECT_NE(e.message.find("the peer closed the link"), std::string::npos) << e.message;
}

struct Hostile {
  std::vector<uint8_t> bytes;
  const char* expect;  // in the link's error
};

class HostileInput : public StreamTransportTest, public ::testing::WithParamInterface<int> {};

std::vector<uint8_t> frames(const std::vector<std::vector<uint8_t>>& parts) {
  std::vector<uint8_t> out = preface();
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<uint8_t> data_frame(uint64_t stream, std::vector<uint8_t> payload, uint8_t flags = 0) {
  std::vector<uint8_t> out;
  encode_stream_frame(out, StreamFrameType::data, flags, stream, payload);
  return out;
}

Hostile hostile_case(int i) {
  switch (i) {
    case 0: return {bytes_of("SSH-2.0-banner\r\n"), "bad preface"};
    case 1: return {frames({header(1, 0, 0, 1u << 30)}), "bad length"};
    case 2: return {frames({header(42, 0, 0, 0)}), "unknown link frame type"};
    case 3:  // a server-initiated id sent to a server
      return {frames({data_frame(1, {1})}), "unknown stream 1"};
    case 4:  // skips stream 0
      return {frames({data_frame(4, {1})}), "unknown stream 4"};
    case 5: {  // more than the window on the control stream, without credit: one
               // control frame of 4 MiB (this case's link allows frames that large)
      std::vector<uint8_t> wire = preface();
      auto first = data_frame(0, {static_cast<uint8_t>(StreamKind::control), 0, 0x40, 0, 0});
      wire.insert(wire.end(), first.begin(), first.end());
      std::vector<uint8_t> chunk(kMaxStreamDataPayload, 0);
      for (uint64_t sent = 0; sent <= kStreamWindow; sent += chunk.size()) {
        auto f = data_frame(0, chunk);
        wire.insert(wire.end(), f.begin(), f.end());
      }
      return {wire, "overran the receive window"};
    }
    case 6: {  // a truncated frame, then the end of the stream
      auto wire = frames({data_frame(0, {1, 2, 3, 4})});
      wire.resize(wire.size() - 2);
      return {wire, "ended inside a frame"};
    }
    case 7:  // credit for a stream never opened
      return {[] {
                std::vector<uint8_t> out = preface();
                encode_stream_value(out, StreamFrameType::credit, 5, 100);
                return out;
              }(),
              "credit for stream 5"};
    default: {  // unidirectional streams beyond the grant (the kind byte is never read: no hello)
      std::vector<uint8_t> wire = preface();
      for (uint64_t s = 0; s <= kMaxStreamLinkUniStreams; ++s) {
        auto f = data_frame(2 + 4 * s, {});
        wire.insert(wire.end(), f.begin(), f.end());
      }
      return {wire, "beyond its limit"};
    }
  }
}

TEST_P(HostileInput, EndsTheLinkWithAClearError) {
  const Hostile h = hostile_case(GetParam());
  UniqueFd other;
  auto server = link_on_pair(false, other, GetParam() == 5 ? 8u << 20 : 0);
  std::thread drain([fd = other.get()] {  // whatever the link says, read it
    char buf[4096];
    while (::read(fd, buf, sizeof buf) > 0) {
    }
  });
  write_all(other.get(), h.bytes);
  if (GetParam() == 6) ::shutdown(other.get(), SHUT_WR);
  auto e = closed_error(*server);
  EXPECT_NE(e.message.find(h.expect), std::string::npos) << e.message;
  EXPECT_NE(e.code, Errc::ok);
  ::shutdown(other.get(), SHUT_RDWR);
  drain.join();
}

INSTANTIATE_TEST_SUITE_P(Cases, HostileInput, ::testing::Range(0, 9));

TEST_F(StreamTransportTest, APeerThatNeverReadsIsDroppedNotBuffered) {
  UniqueFd other;
  auto client = link_on_pair(true, other);  // the client opens the control stream by itself
  std::vector<uint8_t> wire = preface();
  write_all(other.get(), wire);  // but no credit and no hello, ever
  // send_message needs the control stream, which the client opens at start.
  for (int i = 0; i < 200 && client->send_message(bytes_of("x")).error().message.find("not open") != std::string::npos;
       ++i)
    usleep(10000);
  const std::vector<uint8_t> chunk(512u << 10, 1);
  for (int i = 0; i < 64 && !client->closed(); ++i) (void)client->send_message(chunk);
  auto e = closed_error(*client);
  EXPECT_NE(e.message.find("not reading"), std::string::npos) << e.message;
}

// A data stream's writer waits on its send limit (Link::write) while the
// reader is slow: the transport must never count that as a peer that does
// not read (kMaxUnsentPerStream), or a relayed copy to a slower destination
// fails (the Link's default limit, 32 MiB, was above that bound).
TEST_F(StreamTransportTest, ASlowDataReaderSlowsTheWriterAndNeverFailsTheLink) {
  auto pair = linked();
  std::shared_ptr<Link> client = pair.first, server = pair.second;
  ASSERT_TRUE(client->wait_ready(5 * kSeconds).ok());
  std::vector<uint8_t> payload(kMaxUnsentPerStream + (8u << 20));
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 13 + 1);
  std::atomic<bool> wrote{false};
  Result<void> written;
  std::thread writer([&] {
    auto id = client->open_data();
    written = id ? client->write(*id, payload, 30 * kSeconds) : Result<void>(id.error());
    if (written) written = client->finish(*id);
    wrote = true;
  });
  auto in = server->accept_data(5 * kSeconds);
  ASSERT_TRUE(in.ok());
  usleep(1'500'000);  // the reader is busy elsewhere
  EXPECT_FALSE(wrote.load()) << "the writer did not wait for the reader";
  EXPECT_FALSE(client->closed()) << client->error().message;
  std::vector<uint8_t> got, buf(1u << 20);
  Result<size_t> n = size_t{0};
  while ((n = server->read(*in, buf, 10 * kSeconds)) && *n > 0)
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<long>(*n));
  writer.join();
  EXPECT_TRUE(n.ok()) << n.error().message;
  EXPECT_TRUE(written.ok()) << written.error().message;
  EXPECT_TRUE(got == payload);
}

}  // namespace
}  // namespace rcp
