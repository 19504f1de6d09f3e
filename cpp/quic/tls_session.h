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
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "quic/certificate.h"

namespace rcp {

enum class TlsRole { client, server };

inline constexpr char kAlpn[] = "rcp/1";
// The TCP+TLS data link (link/tls_stream.h): the same pinning, another ALPN,
// so neither kind of peer can be mistaken for the other.
inline constexpr char kTcpAlpn[] = "rcp-tcp/1";
static_assert(sizeof kTcpAlpn >= sizeof kAlpn, "the ALPN buffer in TlsSession::create holds either");

// What carries the TLS records: QUIC (ngtcp2 drives the handshake) or a TCP
// socket (TLS 1.3 records on the stream).
enum class TlsCarrier { quic, tcp };

struct TlsConfig {
  TlsRole role = TlsRole::client;
  Certificate identity;
  std::vector<Fingerprint> pinned_peers;  // may start empty on a server and grow with add_pin
  std::string keylog_file;                // SSLKEYLOGFILE; empty = off
};

class TlsContext {
 public:
  static Result<std::shared_ptr<TlsContext>> create(const TlsConfig& config, TlsCarrier carrier = TlsCarrier::quic);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  TlsRole role() const { return role_; }
  TlsCarrier carrier() const { return carrier_; }
  const char* alpn() const { return carrier_ == TlsCarrier::quic ? kAlpn : kTcpAlpn; }
  // Thread-safe: the master learns each rcpd's fingerprint after it listens.
  void add_pin(const Fingerprint& fp);
  bool is_pinned(const Fingerprint& fp) const;
  void* native_handle() const { return ctx_; }
  void write_keylog(const char* line);

 private:
  TlsContext() = default;
  void* ctx_ = nullptr;  // WOLFSSL_CTX*
  TlsRole role_ = TlsRole::client;
  TlsCarrier carrier_ = TlsCarrier::quic;
  mutable std::mutex pins_mu_;
  std::vector<Fingerprint> pins_;
  std::mutex keylog_mu_;
  FILE* keylog_ = nullptr;
};

class TlsSession {
 public:
  // `conn_ref` must outlive the session; ngtcp2's crypto helper finds the
  // connection through it. nullptr for a TCP context (TlsCarrier::tcp).
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

  // TCP carrier (TlsCarrier::tcp): TLS records go straight to the connected
  // socket `fd`, non-blocking; the caller polls for what a step waits on.
  // Not thread-safe: one caller at a time (link/tls_stream.h locks).
  enum class IoWait { none, read, write };
  struct Io {
    size_t bytes = 0;            // read/written (0 with a wait)
    IoWait wait = IoWait::none;  // poll for this, then call again with the same arguments
    bool end = false;            // read: the peer ended the stream (close_notify or EOF)
  };
  void set_fd(int fd);
  // One step of the handshake: IoWait::none once done (then verify_peer()).
  Result<IoWait> handshake_step();
  Result<Io> read(std::span<uint8_t> out);
  Result<Io> write(std::span<const uint8_t> in);

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
