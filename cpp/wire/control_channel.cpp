#include "wire/control_channel.h"

#include <string>

#include "wire/frame.h"

namespace rcp {

namespace {

// HMAC-SHA256(key, dir || seq (8 bytes big endian) || message). The direction
// stops reflection back to the sender, the sequence stops replay and reordering.
Sha256Digest tag_for(const SessionKey& key, Direction dir, uint64_t seq, std::span<const uint8_t> message) {
  uint8_t prefix[1 + 8];
  prefix[0] = static_cast<uint8_t>(dir);
  for (int i = 0; i < 8; ++i) prefix[1 + i] = static_cast<uint8_t>(seq >> (56 - 8 * i));
  HmacSha256 h(key);
  h.update(prefix);
  h.update(message);
  return h.finish();
}

}  // namespace

std::vector<uint8_t> ControlSealer::seal(std::span<const uint8_t> message) {
  const Sha256Digest tag = tag_for(key_, dir_, seq_++, message);
  std::vector<uint8_t> body;
  body.reserve(message.size() + kHmacTagSize);
  body.insert(body.end(), message.begin(), message.end());
  body.insert(body.end(), tag.begin(), tag.end());
  return encode_frame(body);
}

Result<std::vector<uint8_t>> ControlOpener::open(std::span<const uint8_t> body) {
  if (body.size() < kHmacTagSize)
    return make_error(Errc::protocol,
                      "control frame of " + std::to_string(body.size()) + " bytes is shorter than its HMAC tag");
  const auto message = body.first(body.size() - kHmacTagSize);
  const Sha256Digest want = tag_for(key_, dir_, seq_, message);
  if (!constant_time_equal(want, body.last(kHmacTagSize)))
    return make_error(Errc::auth, "control frame " + std::to_string(seq_) +
                                      " has a bad HMAC tag (wrong session key, tampered, replayed or reordered)");
  ++seq_;  // only a verified frame moves the sequence on
  return std::vector<uint8_t>(message.begin(), message.end());
}

}  // namespace rcp
