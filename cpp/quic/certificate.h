// Certificate: an ephemeral key pair and self-signed X.509 certificate made at
// process start. A process's identity is the SHA-256 of its DER certificate.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/crypto.h"
#include "base/result.h"

namespace rcp {

using Fingerprint = Sha256Digest;

struct Certificate {
  std::vector<uint8_t> der;      // X.509, DER
  std::vector<uint8_t> key_der;  // private key, DER; never leaves the process
  Fingerprint fingerprint{};

  // ECDSA P-256 key and a self-signed certificate valid for a few days.
  static Result<Certificate> generate(std::string_view common_name = "rcp");
  std::string fingerprint_hex() const { return to_hex(fingerprint); }
};

Fingerprint fingerprint_of(std::span<const uint8_t> der);
// 64 hex digits, ':' separators allowed.
Result<Fingerprint> parse_fingerprint(std::string_view hex);

}  // namespace rcp
