#include "quic/address_validation.h"

#include <ngtcp2/ngtcp2_crypto.h>

#include <algorithm>

#include "base/crypto.h"
#include "quic/quic_config.h"

namespace rcp {

bool TokenBucket::take(Nanos now) {
  if (last_ != 0 && now > last_) tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now - last_) / 1e9);
  last_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

bool RetryLimiter::allow(const Address& to, Nanos now) {
  const std::string ip = to.ip_bytes();  // the IP alone: a spoofer picks ports freely
  auto it = per_ip_.find(ip);
  if (it == per_ip_.end()) {
    if (per_ip_.size() >= max_addresses_) per_ip_.clear();
    it = per_ip_.emplace(ip, TokenBucket(rate_, burst_)).first;
  }
  if (!it->second.take(now)) return false;
  return total_.take(now);
}

Result<AddressValidator> AddressValidator::create(Nanos token_lifetime) {
  AddressValidator v;
  auto r = random_bytes(v.secret_);
  if (!r) return r.error();
  v.lifetime_ = token_lifetime;
  return v;
}

Result<std::vector<uint8_t>> AddressValidator::retry_packet(const ngtcp2_pkt_hd& hd, const Address& from,
                                                            Nanos now) const {
  ngtcp2_cid retry_scid{};
  retry_scid.datalen = kQuicCidLen;
  auto r = random_bytes({retry_scid.data, retry_scid.datalen});
  if (!r) return r.error();
  uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN2];
  ngtcp2_ssize tokenlen = ngtcp2_crypto_generate_retry_token2(token, secret_.data(), secret_.size(), hd.version,
                                                              from.sa(), from.len, &retry_scid, &hd.dcid, now);
  if (tokenlen < 0) return make_error(Errc::quic, "generating a Retry token failed");
  std::vector<uint8_t> pkt(256 + sizeof token);
  ngtcp2_ssize n = ngtcp2_crypto_write_retry(pkt.data(), pkt.size(), hd.version, &hd.scid, &retry_scid, &hd.dcid, token,
                                             static_cast<size_t>(tokenlen));
  if (n < 0) return make_error(Errc::quic, "writing a Retry packet failed");
  pkt.resize(static_cast<size_t>(n));
  return pkt;
}

Result<ngtcp2_cid> AddressValidator::check_token(const ngtcp2_pkt_hd& hd, const Address& from, Nanos now) const {
  // We never send NEW_TOKEN, so a Retry token is the only kind we accept.
  if (hd.tokenlen == 0 || hd.token[0] != NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY2)
    return make_error(Errc::auth, "Initial without a Retry token of ours");
  ngtcp2_cid odcid{};
  int rv = ngtcp2_crypto_verify_retry_token2(&odcid, hd.token, hd.tokenlen, secret_.data(), secret_.size(), hd.version,
                                             from.sa(), from.len, &hd.dcid, lifetime_, now);
  if (rv == NGTCP2_CRYPTO_ERR_VERIFY_TOKEN)
    return make_error(Errc::auth, "Retry token expired or made for another address or connection ID");
  if (rv != 0) return make_error(Errc::auth, "unreadable Retry token");
  return odcid;
}

}  // namespace rcp
