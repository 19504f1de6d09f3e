#include "link/link_server.h"

#include <chrono>

#include "link/quic_transport.h"

namespace rcp {

Result<std::shared_ptr<LinkServer>> LinkServer::listen(const LinkConfig& config, const Address& bind_addr) {
  auto ep = QuicEndpoint::listen(config, bind_addr, QuicTransport::factory(config, false));
  if (!ep) return ep.error();
  return std::shared_ptr<LinkServer>(new LinkServer(std::move(ep.value())));
}

Result<std::shared_ptr<Link>> LinkServer::accept(Nanos timeout) {
  auto handle = endpoint_->accept(timeout);
  if (!handle) return handle.error();
  return QuicTransport::link_of(*handle);
}

// Link's QUIC client side lives here, with the server side, so that link.cpp
// knows only its Transport.
Result<std::shared_ptr<Link>> Link::connect(const LinkConfig& config, const Address& remote) {
  auto handle = QuicEndpoint::connect(config, remote, QuicTransport::factory(config, true));
  if (!handle) return handle.error();
  auto link = QuicTransport::link_of(*handle);
  // The handshake timeout bounds this wait; the margin lets the connection report its own reason.
  auto ready = link->wait_ready(config.quic.handshake_timeout + kSeconds);
  if (!ready) return ready.error();
  return link;
}

Result<std::shared_ptr<Link>> Link::connect(const LinkConfig& config, const Address& remote, Nanos no_answer) {
  auto handle = QuicEndpoint::connect(config, remote, QuicTransport::factory(config, true));
  if (!handle) return handle.error();
  auto link = QuicTransport::link_of(*handle);
  const auto start = std::chrono::steady_clock::now();
  const auto give_up = start + std::chrono::nanoseconds(config.quic.handshake_timeout + kSeconds);
  bool answered = false;
  for (;;) {
    auto ready = link->wait_ready(50 * kMillis);
    if (ready) return link;
    if (ready.error().code != Errc::timeout) return ready.error();
    const auto now = std::chrono::steady_clock::now();
    if (now >= give_up) return ready.error();
    if (answered || now - start < std::chrono::nanoseconds(no_answer)) continue;
    answered = link->stats().packets_received > 0;  // an answer, however slow the rest: keep going
    if (!answered) {
      link->close("no answer");
      return make_error(Errc::timeout, "QUIC to " + remote.to_string() + ": no answer within " +
                                           std::to_string(no_answer / kMillis) + " ms");
    }
  }
}

}  // namespace rcp
