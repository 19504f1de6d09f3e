// DatagramSink: where a QuicConnection puts the packets it writes. The
// endpoint's sink is its UDP socket; tests use an in-memory network, so the
// connection itself does no I/O (sans-I/O).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/address.h"
#include "base/result.h"
#include "net/udp_socket.h"

namespace rcp {

class DatagramSink {
 public:
  virtual ~DatagramSink() = default;
  // `data` is one datagram, or a batch of `segment`-byte datagrams (the last
  // may be shorter) as for UDP GSO. would_block: nothing was taken, the
  // connection keeps the batch and retries on its next flush.
  virtual Result<SendStatus> send_datagrams(const Address& to, std::span<const uint8_t> data, size_t segment) = 0;
  virtual bool gso_enabled() const { return false; }
};

}  // namespace rcp
