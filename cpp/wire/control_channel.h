// Control frames carry HMAC-SHA256 under the per-session key over
// (direction, sequence number, message), so a frame cannot be forged without
// the key, nor replayed, reordered or reflected back to its sender.
// Body layout: msgpack message || 32-byte tag.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/crypto.h"
#include "base/result.h"

namespace rcp {

enum class Direction : uint8_t { client_to_server = 1, server_to_client = 2 };

constexpr size_t kHmacTagSize = 32;

class ControlSealer {
 public:
  ControlSealer(const SessionKey& key, Direction dir) : key_(key), dir_(dir) {}
  // Returns a whole frame (length header, message, tag).
  std::vector<uint8_t> seal(std::span<const uint8_t> message);

 private:
  SessionKey key_;
  Direction dir_;
  uint64_t seq_ = 0;
};

class ControlOpener {
 public:
  ControlOpener(const SessionKey& key, Direction dir) : key_(key), dir_(dir) {}
  // Takes a frame body; checks the tag in constant time (Errc::auth on
  // mismatch, Errc::protocol when shorter than a tag) and returns the message.
  Result<std::vector<uint8_t>> open(std::span<const uint8_t> body);

 private:
  SessionKey key_;
  Direction dir_;
  uint64_t seq_ = 0;
};

}  // namespace rcp
