// QuicConfig: every tunable of a QUIC link, passed in (no globals).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/logger.h"
#include "base/result.h"
#include "net/event_loop.h"
#include "net/udp_socket.h"

namespace rcp {

enum class CongestionControl { cubic, bbr, reno };
Result<CongestionControl> parse_congestion_control(std::string_view name);
const char* congestion_control_name(CongestionControl cc);

constexpr size_t kMaxUdpPayload = 65527;  // largest UDP payload over IPv6 without jumbograms
constexpr size_t kQuicCidLen = 18;

struct QuicConfig {
  Nanos handshake_timeout = 10 * kSeconds;
  Nanos idle_timeout = 30 * kSeconds;
  Nanos keep_alive = 5 * kSeconds;  // 0 disables PINGs on an idle link
  CongestionControl cc = CongestionControl::cubic;
  // The largest datagram PMTUD may try: a 9000-byte (jumbo, and loopback)
  // MTU over IPv6. Probes go down 1452, 1392, 1280 when it is not there.
  size_t max_udp_payload = 8952;
  uint64_t stream_window = 8u << 20;       // initial per-stream receive window
  uint64_t conn_window = 32u << 20;        // initial connection receive window
  uint64_t max_stream_window = 64u << 20;  // auto-tuning ceiling
  uint64_t max_conn_window = 256u << 20;
  uint64_t max_streams = 1024;  // concurrent bidi streams the peer may open
  // Unidirectional streams the peer may have open. A data stream's credit
  // comes back only once the application has read it to the end (Link), so
  // a receiver with N readers sets this to N (+ its log stream): then every
  // stream holding connection window has a reader, and streams queued behind
  // busy readers can never starve the ones being read.
  uint64_t max_uni_streams = 1024;
  uint32_t max_frame_body = 1u << 20;  // control/log frame size limit
  size_t send_buffer = 32u << 20;      // unacknowledged bytes per connection before writers block
  std::string port_range;              // listener ports, e.g. "8000-8999,9100"
  UdpOptions udp;
  std::string keylog_file;  // defaults to $SSLKEYLOGFILE at the facade
  Logger logger;
};

}  // namespace rcp
