// Small crypto primitives (wolfCrypt underneath): SHA-256, HMAC-SHA256,
// constant-time comparison, CSPRNG, hex.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace rcp {

using Sha256Digest = std::array<uint8_t, 32>;
using SessionKey = std::array<uint8_t, 32>;

Sha256Digest sha256(std::span<const uint8_t> data);

// Incremental SHA-256, for data that arrives in pieces (RAII over wolfCrypt's wc_Sha256).
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void update(std::span<const uint8_t> data);
  Sha256Digest finish();  // usable once

 private:
  alignas(16) unsigned char state_[512]{};  // wolfCrypt wc_Sha256, kept opaque to callers
};

// Incremental HMAC-SHA256 (RAII over wolfCrypt's Hmac).
class HmacSha256 {
 public:
  explicit HmacSha256(std::span<const uint8_t> key);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;
  void update(std::span<const uint8_t> data);
  Sha256Digest finish();  // usable once

 private:
  alignas(16) unsigned char state_[1024]{};  // wolfCrypt Hmac, kept opaque to callers
};

Sha256Digest hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data);

// Compares without data-dependent early exit; different lengths -> false.
bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b);

// From the kernel: getrandom(2), or /dev/urandom before Linux 3.17 (ENOSYS).
Result<void> random_bytes(std::span<uint8_t> out);
// The fallback alone (tests force it, as on a kernel without getrandom).
Result<void> urandom_bytes(std::span<uint8_t> out);

std::string to_hex(std::span<const uint8_t> data);  // lowercase
// Accepts upper/lower case and optional ':' separators ("AB:cd:..").
Result<std::vector<uint8_t>> from_hex(std::string_view hex);

}  // namespace rcp
