#include "link/quic_transport.h"

#include "quic/quic_connection.h"

namespace rcp {

QuicTransport::QuicTransport(ConnectionPort port, const LinkConfig& config, bool client)
    : port_(port), link_(std::make_unique<Link>(*this, config, client)) {}

ConnectionHandlerFactory QuicTransport::factory(const LinkConfig& config, bool client) {
  return [config, client](ConnectionPort port) -> std::shared_ptr<ConnectionHandler> {
    return std::make_shared<QuicTransport>(port, config, client);
  };
}

std::shared_ptr<Link> QuicTransport::link_of(const std::shared_ptr<ConnectionHandler>& handle) {
  // Aliasing: the Link shares the handle's ownership (transport and endpoint).
  return std::shared_ptr<Link>(handle, &static_cast<QuicTransport&>(*handle).link());
}

void QuicTransport::execute(std::function<void(Transport*)> fn) {
  // The port finds no connection once the endpoint removed it; `this` is
  // then not touched (it may be gone with the entry).
  port_.post([this, fn = std::move(fn)](QuicConnection* c) { fn(c ? this : nullptr); });
}

Result<int64_t> QuicTransport::open_stream(bool bidi) {
  QuicConnection* c = port_.connection();
  if (c == nullptr) return make_error(Errc::closed, "connection closed");
  return c->open_stream(bidi);
}

void QuicTransport::send(int64_t id, std::vector<uint8_t> data, bool fin) {
  if (QuicConnection* c = port_.connection()) c->send(id, std::move(data), fin);
}

void QuicTransport::consume(int64_t id, uint64_t n) {
  if (QuicConnection* c = port_.connection()) c->consume(id, n);
}

void QuicTransport::grant_peer_uni_stream() {
  if (QuicConnection* c = port_.connection()) c->grant_peer_uni_stream();
}

bool QuicTransport::close(uint64_t app_error, const std::string& reason) {
  QuicConnection* c = port_.connection();
  if (c == nullptr) return false;
  c->close(app_error, reason);
  return true;
}

bool QuicTransport::closed() const {
  QuicConnection* c = port_.connection();
  return c == nullptr || c->closed();
}

Fingerprint QuicTransport::peer_fingerprint() const {
  QuicConnection* c = port_.connection();
  return c && c->peer_fingerprint() ? *c->peer_fingerprint() : Fingerprint{};
}

TransportStats QuicTransport::stats() const {
  QuicConnection* c = port_.connection();
  if (c == nullptr) return {};
  QuicStats q = c->stats();
  return TransportStats{q.bytes_sent, q.bytes_received,  q.packets_sent, q.packets_received,
                        q.send_calls, q.max_udp_payload, q.gso,          q.smoothed_rtt,
                        q.cwnd};
}

}  // namespace rcp
