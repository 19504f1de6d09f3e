// Address validation for a QUIC server (RFC 9000 8.1): a client's first
// Initial is answered with a stateless Retry carrying a token bound to the
// client's address; only an Initial that brings a valid token back creates
// connection state. A replayed or spoofed Initial therefore costs the server
// one small Retry packet (rate-limited here), never a handshake slot.
#pragma once

#include <ngtcp2/ngtcp2.h>

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/address.h"
#include "base/result.h"
#include "net/event_loop.h"

namespace rcp {

// Long enough for a Retry round trip on any real path; short, so a captured
// token is soon worthless.
constexpr Nanos kRetryTokenLifetime = 10 * 1000000000ull;

// Refills `rate` tokens a second up to `burst`.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}
  bool take(Nanos now);

 private:
  double rate_;
  double burst_;
  double tokens_;
  Nanos last_ = 0;
};

// Retries are rate-limited per client IP (so a flood cannot make us reflect
// Retries at one victim, nor starve a peer at another address) and in total
// (CPU). The table is bounded: when full it starts over, the total cap still holds.
class RetryLimiter {
 public:
  RetryLimiter(double per_address_rate, double per_address_burst, double total_rate, size_t max_addresses = 4096)
      : rate_(per_address_rate), burst_(per_address_burst), max_addresses_(max_addresses),
        total_(total_rate, total_rate / 10) {}
  bool allow(const Address& to, Nanos now);

 private:
  double rate_, burst_;
  size_t max_addresses_;
  TokenBucket total_;
  std::unordered_map<std::string, TokenBucket> per_ip_;
};

class AddressValidator {
 public:
  // A fresh random secret: tokens are only good at the endpoint that made them.
  static Result<AddressValidator> create(Nanos token_lifetime = kRetryTokenLifetime);

  // The Retry packet answering the token-less Initial `hd` from `from`.
  Result<std::vector<uint8_t>> retry_packet(const ngtcp2_pkt_hd& hd, const Address& from, Nanos now) const;
  // The client's original destination connection ID when `hd` carries a Retry
  // token this validator made for `from`, for this DCID, and not yet expired.
  Result<ngtcp2_cid> check_token(const ngtcp2_pkt_hd& hd, const Address& from, Nanos now) const;

 private:
  AddressValidator() = default;
  std::array<uint8_t, 32> secret_{};
  Nanos lifetime_ = kRetryTokenLifetime;
};

}  // namespace rcp
