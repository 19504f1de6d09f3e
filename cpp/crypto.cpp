#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "crypto.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <new>

namespace rcp {

namespace {
Hmac* as_hmac(unsigned char* state) { return std::launder(reinterpret_cast<Hmac*>(state)); }
}  // namespace

Sha256Digest sha256(std::span<const uint8_t> data) {
  Sha256Digest out{};
  wc_Sha256Hash(data.data(), static_cast<word32>(data.size()), out.data());
  return out;
}

HmacSha256::HmacSha256(std::span<const uint8_t> key) {
  static_assert(sizeof(Hmac) <= sizeof(state_), "enlarge HmacSha256::state_");
  static_assert(alignof(Hmac) <= 16, "HmacSha256::state_ alignment too small");
  Hmac* h = new (state_) Hmac;
  wc_HmacInit(h, nullptr, INVALID_DEVID);
  wc_HmacSetKey(h, WC_SHA256, key.data(), static_cast<word32>(key.size()));
}

HmacSha256::~HmacSha256() {
  wc_HmacFree(as_hmac(state_));
  as_hmac(state_)->~Hmac();
}

void HmacSha256::update(std::span<const uint8_t> data) {
  wc_HmacUpdate(as_hmac(state_), data.data(), static_cast<word32>(data.size()));
}

Sha256Digest HmacSha256::finish() {
  Sha256Digest out{};
  wc_HmacFinal(as_hmac(state_), out.data());
  return out;
}

Sha256Digest hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  HmacSha256 h(key);
  h.update(data);
  return h.finish();
}

bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  volatile uint8_t diff = 0;  // volatile: keep the compiler from adding an early exit
  for (size_t i = 0; i < a.size(); ++i) diff = diff | static_cast<uint8_t>(a[i] ^ b[i]);
  return diff == 0;
}

Result<void> random_bytes(std::span<uint8_t> out) {
  // The kernel CSPRNG directly: no per-call DRBG setup (temp names need this often).
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(Errc::io, "getrandom failed");
    done += static_cast<size_t>(n);
  }
  return {};
}

std::string to_hex(std::span<const uint8_t> data) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(data.size() * 2);
  for (uint8_t b : data) {
    s += digits[b >> 4];
    s += digits[b & 0xf];
  }
  return s;
}

Result<std::vector<uint8_t>> from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<uint8_t> out;
  int hi = -1;
  for (char c : hex) {
    if (c == ':') {
      if (hi >= 0) return make_error(Errc::invalid_argument, "odd hex digit before ':'");
      continue;
    }
    int v = nibble(c);
    if (v < 0) return make_error(Errc::invalid_argument, "not a hex digit: '" + std::string(1, c) + "'");
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  if (hi >= 0) return make_error(Errc::invalid_argument, "odd number of hex digits");
  return out;
}

}  // namespace rcp
