// Certificate generation with wolfCrypt (part of the TLS-backend seam).
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include <cstring>

#include "quic/certificate.h"

namespace rcp {

namespace {

struct RngGuard {
  WC_RNG rng{};
  bool ok = false;
  RngGuard() { ok = wc_InitRng(&rng) == 0; }
  ~RngGuard() {
    if (ok) wc_FreeRng(&rng);
  }
};

struct EccGuard {
  ecc_key key{};
  bool ok = false;
  EccGuard() { ok = wc_ecc_init(&key) == 0; }
  ~EccGuard() {
    if (ok) wc_ecc_free(&key);
  }
};

Error wc_error(const char* what, int rc) {
  return make_error(Errc::tls, std::string(what) + " failed: " + wc_GetErrorString(rc));
}

}  // namespace

Result<Certificate> Certificate::generate(std::string_view common_name) {
  RngGuard rng;
  EccGuard key;
  if (!rng.ok || !key.ok) return make_error(Errc::tls, "wolfCrypt RNG/ECC init failed");
  int rc = wc_ecc_make_key_ex(&rng.rng, 32, &key.key, ECC_SECP256R1);
  if (rc != 0) return wc_error("wc_ecc_make_key_ex", rc);

  Cert cert;
  if ((rc = wc_InitCert(&cert)) != 0) return wc_error("wc_InitCert", rc);
  size_t cn = std::min(common_name.size(), static_cast<size_t>(CTC_NAME_SIZE - 1));
  std::memcpy(cert.subject.commonName, common_name.data(), cn);
  cert.subject.commonName[cn] = '\0';
  cert.sigType = CTC_SHA256wECDSA;
  cert.isCA = 0;
  cert.daysValid = 7;  // ephemeral; pinning, not validity, is what is checked

  std::vector<uint8_t> der(4096);
  rc = wc_MakeCert(&cert, der.data(), static_cast<word32>(der.size()), nullptr, &key.key, &rng.rng);
  if (rc < 0) return wc_error("wc_MakeCert", rc);
  rc = wc_SignCert(cert.bodySz, cert.sigType, der.data(), static_cast<word32>(der.size()), nullptr, &key.key, &rng.rng);
  if (rc < 0) return wc_error("wc_SignCert", rc);
  der.resize(static_cast<size_t>(rc));

  std::vector<uint8_t> key_der(512);
  rc = wc_EccKeyToDer(&key.key, key_der.data(), static_cast<word32>(key_der.size()));
  if (rc < 0) return wc_error("wc_EccKeyToDer", rc);
  key_der.resize(static_cast<size_t>(rc));

  Certificate out;
  out.fingerprint = fingerprint_of(der);
  out.der = std::move(der);
  out.key_der = std::move(key_der);
  return out;
}

Fingerprint fingerprint_of(std::span<const uint8_t> der) { return sha256(der); }

Result<Fingerprint> parse_fingerprint(std::string_view hex) {
  auto bytes = from_hex(hex);
  if (!bytes || bytes->size() != Fingerprint{}.size())
    return make_error(Errc::invalid_argument,
                      "a certificate fingerprint is 64 hex digits (SHA-256), got '" + std::string(hex) + "'");
  Fingerprint fp{};
  std::memcpy(fp.data(), bytes->data(), fp.size());
  return fp;
}

}  // namespace rcp
