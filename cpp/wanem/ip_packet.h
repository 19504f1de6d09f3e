// Just enough IPv4/IPv6 + UDP parsing for the WAN emulator: where a UDP
// payload starts, and keeping the UDP checksum valid after we change a byte
// (so corruption reaches the application instead of being dropped by the
// receiving kernel, which is what exercises QUIC's packet protection).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace rcp::wanem {

struct UdpView {
  size_t udp_offset = 0;      // start of the UDP header within the IP packet
  size_t payload_offset = 0;  // start of the UDP payload
  size_t payload_len = 0;
};

// The UDP header/payload of an IPv4 or IPv6 packet (IPv6 without extension
// headers, unfragmented IPv4), or nullopt for anything else.
std::optional<UdpView> find_udp(std::span<const uint8_t> packet);

// True when the UDP payload starts a QUIC long-header packet (Initial,
// 0-RTT, Handshake, Retry): the handshake phase of a connection.
bool is_quic_long_header(std::span<const uint8_t> packet, const UdpView& udp);

// Replaces packet[index] (inside the UDP payload) with `value` and patches
// the UDP checksum incrementally (RFC 1624). An IPv4 checksum of 0 means
// "none" and stays 0.
void rewrite_udp_byte(std::span<uint8_t> packet, const UdpView& udp, size_t index, uint8_t value);

// The UDP checksum the packet should carry (0xffff for a computed 0), for tests.
uint16_t compute_udp_checksum(std::span<const uint8_t> packet, const UdpView& udp);

}  // namespace rcp::wanem
