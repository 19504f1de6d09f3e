// Loopback QUIC stream benchmark: one pinned connection over 127.0.0.1, a
// sender thread writes N bytes from memory on one data stream, the receiver
// reads them. Prints MB/s, the UDP payload size and whether GSO was used.
//   rcp-quic-bench [--bytes N] [--payload BYTES] [--cc cubic|bbr|reno]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "link/link.h"
#include "link/link_server.h"
#include "quic/certificate.h"

using namespace rcp;

namespace {

int fail(const char* what, const Error& e) {
  std::fprintf(stderr, "rcp-quic-bench: %s: %s\n", what, e.message.c_str());
  return 1;
}

}  // namespace

int run(int argc, char** argv) {
  uint64_t total = 1ull << 30;
  QuicConfig quic;
  quic.logger = Logger::from_env("bench");
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string opt = argv[i];
    if (opt == "--bytes")
      total = std::strtoull(argv[i + 1], nullptr, 10);
    else if (opt == "--payload")
      quic.max_udp_payload = std::strtoull(argv[i + 1], nullptr, 10);
    else if (opt == "--cc") {
      auto cc = parse_congestion_control(argv[i + 1]);
      if (!cc) return fail("--cc", cc.error());
      quic.cc = *cc;
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  auto server_cert = Certificate::generate();
  auto client_cert = Certificate::generate();
  if (!server_cert || !client_cert) return fail("certificate", server_cert ? client_cert.error() : server_cert.error());
  SessionKey key{};
  (void)random_bytes(key);

  LinkConfig scfg{{quic, {TlsRole::server, *server_cert, {client_cert->fingerprint}, ""}}, key, "server"};
  LinkConfig ccfg{{quic, {TlsRole::client, *client_cert, {server_cert->fingerprint}, ""}}, key, "client"};
  auto lo = Address::parse("127.0.0.1", 0);
  auto server = LinkServer::listen(scfg, *lo);
  if (!server) return fail("listen", server.error());
  auto target = (*server)->local_address();

  Result<std::shared_ptr<Link>> accepted = make_error(Errc::timeout, "not accepted");
  std::thread acceptor([&] { accepted = (*server)->accept(10 * kSeconds); });
  auto client = Link::connect(ccfg, target);
  acceptor.join();
  if (!client) return fail("connect", client.error());
  if (!accepted) return fail("accept", accepted.error());

  auto t0 = std::chrono::steady_clock::now();
  std::thread sender([&] {
    std::vector<uint8_t> block(1 << 20);
    for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<uint8_t>(i * 131);
    auto id = (*client)->open_data();
    if (!id) return;
    for (uint64_t sent = 0; sent < total;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(block.size(), total - sent));
      if (!(*client)->write(*id, {block.data(), n}, 60 * kSeconds)) return;
      sent += n;
    }
    (void)(*client)->finish(*id);
  });
  uint64_t got = 0;
  auto id = (*accepted)->accept_data(30 * kSeconds);
  if (!id) return fail("accept_data", id.error());
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    auto n = (*accepted)->read(*id, buf, 60 * kSeconds);
    if (!n) return fail("read", n.error());
    if (*n == 0) break;
    got += *n;
  }
  auto t1 = std::chrono::steady_clock::now();
  sender.join();
  double secs = std::chrono::duration<double>(t1 - t0).count();
  auto st = (*client)->stats();
  std::printf(
      "quic loopback: %llu bytes in %.3f s = %.1f MB/s; udp payload %zu B, gso %s, %llu packets in %llu sends, cc %s\n",
      static_cast<unsigned long long>(got), secs, static_cast<double>(got) / secs / 1e6, st.max_udp_payload,
      st.gso ? "on" : "off", static_cast<unsigned long long>(st.packets_sent),
      static_cast<unsigned long long>(st.send_calls), congestion_control_name(quic.cc));
  return got == total ? 0 : 1;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // out of memory, say: a message, not a core dump
    std::fprintf(stderr, "rcp-quic-bench: %s\n", e.what());
    return 1;
  }
}
