#include "wanem/ip_packet.h"

namespace rcp::wanem {
namespace {

constexpr uint8_t kProtoUdp = 17;

uint16_t load16(std::span<const uint8_t> p, size_t at) { return static_cast<uint16_t>(p[at] << 8 | p[at + 1]); }

// One's-complement sum of 16-bit big-endian words (odd tail padded with zero).
uint32_t sum16(std::span<const uint8_t> p, size_t from, size_t len, uint32_t acc) {
  size_t i = 0;
  for (; i + 1 < len; i += 2) acc += load16(p, from + i);
  if (i < len) acc += static_cast<uint32_t>(p[from + i]) << 8;
  return acc;
}

uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}

}  // namespace

std::optional<UdpView> find_udp(std::span<const uint8_t> p) {
  if (p.empty()) return std::nullopt;
  size_t udp = 0;
  const int version = p[0] >> 4;
  if (version == 4) {
    if (p.size() < 20) return std::nullopt;
    const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
    const bool fragment = (load16(p, 6) & 0x3fff) != 0;  // MF set or offset non-zero
    if (ihl < 20 || p[9] != kProtoUdp || fragment) return std::nullopt;
    udp = ihl;
  } else if (version == 6) {
    if (p.size() < 40 || p[6] != kProtoUdp) return std::nullopt;
    udp = 40;
  } else {
    return std::nullopt;
  }
  if (p.size() < udp + 8) return std::nullopt;
  const size_t udp_len = load16(p, udp + 4);
  if (udp_len < 8 || udp + udp_len > p.size()) return std::nullopt;
  return UdpView{udp, udp + 8, udp_len - 8};
}

bool is_quic_long_header(std::span<const uint8_t> p, const UdpView& udp) {
  return udp.payload_len > 0 && (p[udp.payload_offset] & 0x80) != 0;
}

void rewrite_udp_byte(std::span<uint8_t> p, const UdpView& udp, size_t index, uint8_t value) {
  const size_t word_at = index - ((index - udp.udp_offset) % 2);  // 16-bit words count from the UDP header
  const size_t end = udp.payload_offset + udp.payload_len;
  // An odd last byte is summed as if padded with a zero byte.
  auto word = [&] { return word_at + 1 < end ? load16(p, word_at) : static_cast<uint16_t>(p[word_at] << 8); };
  const uint16_t old_word = word();
  p[index] = value;
  const uint16_t new_word = word();
  const size_t ck = udp.udp_offset + 6;
  const uint16_t old_ck = load16(p, ck);
  if (old_ck == 0 && (p[0] >> 4) == 4) return;  // IPv4 without checksum
  // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')
  uint32_t acc = static_cast<uint16_t>(~old_ck);
  acc += static_cast<uint16_t>(~old_word);
  acc += new_word;
  uint16_t out = static_cast<uint16_t>(~fold(acc));
  if (out == 0) out = 0xffff;  // 0 is reserved for "no checksum"
  p[ck] = static_cast<uint8_t>(out >> 8);
  p[ck + 1] = static_cast<uint8_t>(out);
}

uint16_t compute_udp_checksum(std::span<const uint8_t> p, const UdpView& udp) {
  const size_t udp_len = udp.payload_len + 8;
  uint32_t acc = 0;
  if ((p[0] >> 4) == 4) {
    acc = sum16(p, 12, 8, acc);  // source and destination addresses
  } else {
    acc = sum16(p, 8, 32, acc);
  }
  acc += kProtoUdp;
  acc += static_cast<uint32_t>(udp_len);
  acc = sum16(p, udp.udp_offset, 6, acc);  // header without the checksum field
  acc = sum16(p, udp.payload_offset, udp.payload_len, acc);
  uint16_t out = static_cast<uint16_t>(~fold(acc));
  return out == 0 ? 0xffff : out;
}

}  // namespace rcp::wanem
