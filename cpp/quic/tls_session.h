// The TLS seam: everything QUIC needs from the TLS library, behind two small
// classes. tls_session_wolfssl.cpp is the only implementation; another
// backend would add its own .cpp without touching the QUIC code.
//
// Pinning: both roles require the peer's certificate and accept it only when
// its SHA-256 equals one of the pinned fingerprints (constant-time compare).
// A mismatch or a missing certificate fails the handshake with a TLS alert.
#pragma once

#include <ngtcp2/ngtcp2_crypto.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "quic/certificate.h"

namespace rcp {

enum class TlsRole { client, server };

inline constexpr char kAlpn[] = "rcp/1";

struct TlsConfig {
  TlsRole role = TlsRole::client;
  Certificate identity;
  std::vector<Fingerprint> pinned_peers;  // may start empty on a server and grow with add_pin
  std::string keylog_file;                // SSLKEYLOGFILE; empty = off
};

class TlsContext {
 public:
  static Result<std::shared_ptr<TlsContext>> create(const TlsConfig& config);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  TlsRole role() const { return role_; }
  // Thread-safe: the master learns each rcpd's fingerprint after it listens.
  void add_pin(const Fingerprint& fp);
  bool is_pinned(const Fingerprint& fp) const;
  void* native_handle() const { return ctx_; }
  void write_keylog(const char* line);

 private:
  TlsContext() = default;
  void* ctx_ = nullptr;  // WOLFSSL_CTX*
  TlsRole role_ = TlsRole::client;
  mutable std::mutex pins_mu_;
  std::vector<Fingerprint> pins_;
  std::mutex keylog_mu_;
  FILE* keylog_ = nullptr;
};

class TlsSession {
 public:
  // `conn_ref` must outlive the session; ngtcp2's crypto helper finds the
  // connection through it.
  static Result<std::unique_ptr<TlsSession>> create(std::shared_ptr<TlsContext> ctx, ngtcp2_crypto_conn_ref* conn_ref);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  void* native_handle() const { return ssl_; }  // for ngtcp2_conn_set_tls_native_handle

  // Second, independent check after the handshake: the certificate the peer
  // proved possession of matches a pin. Returns the matched fingerprint.
  Result<Fingerprint> verify_peer() const;
  // Why the verify callback refused the peer, if it did.
  const std::string& pin_failure() const { return pin_failure_; }

  // Called from the library's verify callback.
  bool check_leaf(const uint8_t* der, size_t len, int depth);
  TlsContext& context() { return *ctx_; }

 private:
  TlsSession() = default;
  std::shared_ptr<TlsContext> ctx_;
  void* ssl_ = nullptr;  // WOLFSSL*
  std::string pin_failure_;
};

// true when `fp` equals one of `pins`, comparing every pin in constant time.
bool fingerprint_pinned(const Fingerprint& fp, const std::vector<Fingerprint>& pins);

}  // namespace rcp
