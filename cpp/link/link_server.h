// LinkServer: a QUIC endpoint listening for Links. Accepts only peers that
// pass the pins, the handshake and the hello; Link::connect is the client side.
#pragma once

#include <memory>
#include <string>

#include "link/link.h"
#include "link/link_config.h"
#include "quic/quic_endpoint.h"

namespace rcp {

class LinkServer {
 public:
  static Result<std::shared_ptr<LinkServer>> listen(const LinkConfig& config, const Address& bind_addr);

  // Next peer that completed the handshake and the hello.
  Result<std::shared_ptr<Link>> accept(Nanos timeout);
  const Address& local_address() const { return endpoint_->local_address(); }
  // Handshakes refused so far (pin mismatch, bad hello...), and the last reason.
  uint64_t rejected() const { return endpoint_->rejected(); }
  std::string last_rejection() const { return endpoint_->last_rejection(); }
  ServerCounters counters() const { return endpoint_->counters(); }
  // Accept one more peer fingerprint (thread-safe).
  void add_pin(const Fingerprint& fp) { endpoint_->add_pin(fp); }
  // Stop accepting new handshakes (a source serves exactly one peer).
  void stop_accepting() { endpoint_->stop_accepting(); }

 private:
  explicit LinkServer(std::shared_ptr<QuicEndpoint> endpoint) : endpoint_(std::move(endpoint)) {}
  std::shared_ptr<QuicEndpoint> endpoint_;
};

}  // namespace rcp
