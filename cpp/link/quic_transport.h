// QuicTransport: a Link on a QUIC connection. To the endpoint it is the
// connection's handler (events in); to its Link the Transport (streams out).
// It owns the Link and lives as long as the endpoint's entry or an
// application handle.
#pragma once

#include <memory>

#include "link/link.h"
#include "link/transport.h"
#include "quic/connection_handler.h"

namespace rcp {

class QuicTransport : public ConnectionHandler, public Transport {
 public:
  QuicTransport(ConnectionPort port, const LinkConfig& config, bool client);

  Link& link() { return *link_; }
  // A factory for QuicEndpoint: each connection gets a QuicTransport.
  static ConnectionHandlerFactory factory(const LinkConfig& config, bool client);
  // The Link of an endpoint handle, sharing its ownership.
  static std::shared_ptr<Link> link_of(const std::shared_ptr<ConnectionHandler>& handle);

  // ConnectionHandler (loop thread)
  void on_handshake_done() override { link_->on_handshake_done(); }
  void on_stream_data(int64_t id, std::span<const uint8_t> data, bool fin) override {
    link_->on_stream_data(id, data, fin);
  }
  void on_stream_acked(int64_t id, uint64_t freed) override { link_->on_stream_acked(id, freed); }
  void on_stream_closed(int64_t id, uint64_t app_error) override { link_->on_stream_closed(id, app_error); }
  void on_streams_available() override { link_->on_streams_available(); }
  void on_closed(const Error& err) override { link_->on_closed(err); }
  void wake_readers() override { link_->wake_readers(); }
  uint64_t close_code() const override { return static_cast<uint64_t>(AppError::closed_by_app); }
  Errc classify_app_error(uint64_t code) const override { return rcp::classify_app_error(code); }

  // Transport
  void execute(std::function<void(Transport*)> fn) override;
  Result<int64_t> open_stream(bool bidi) override;
  void send(int64_t id, std::vector<uint8_t> data, bool fin) override;
  void consume(int64_t id, uint64_t n) override;
  void grant_peer_uni_stream() override;
  bool close(uint64_t app_error, const std::string& reason) override;
  bool closed() const override;
  Fingerprint peer_fingerprint() const override;
  TransportStats stats() const override;
  void session_ready() override { port_.session_ready(); }

 private:
  ConnectionPort port_;
  std::unique_ptr<Link> link_;
};

}  // namespace rcp
