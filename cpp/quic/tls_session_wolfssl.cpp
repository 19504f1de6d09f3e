// wolfSSL implementation of the TLS seam (see tls_session.h).
#include <ngtcp2/ngtcp2_crypto_wolfssl.h>
#include <wolfssl/options.h>
#include <wolfssl/quic.h>
#include <wolfssl/ssl.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "quic/tls_session.h"

namespace rcp {

namespace {

// ngtcp2's helper reads wolfSSL_get_app_data(ssl) as an ngtcp2_crypto_conn_ref*,
// so the box must start with one; we copy the caller's conn_ref into it.
struct AppData {
  ngtcp2_crypto_conn_ref ref;
  TlsSession* session;
};

TlsSession* session_of(WOLFSSL* ssl) {
  auto* ad = static_cast<AppData*>(wolfSSL_get_app_data(ssl));
  return ad ? ad->session : nullptr;
}

int verify_callback(int /*preverify*/, WOLFSSL_X509_STORE_CTX* store) {
  // Chain validity is irrelevant for self-signed ephemeral certificates: the
  // pin is the whole decision. Built with WOLFSSL_ALWAYS_VERIFY_CB, this runs
  // for the leaf even when wolfSSL found no error.
  auto* ssl =
      static_cast<WOLFSSL*>(wolfSSL_X509_STORE_CTX_get_ex_data(store, wolfSSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl == nullptr) return 0;
  TlsSession* session = session_of(ssl);
  WOLFSSL_X509* cert = wolfSSL_X509_STORE_CTX_get_current_cert(store);
  if (session == nullptr || cert == nullptr) return 0;
  int len = 0;
  const unsigned char* der = wolfSSL_X509_get_der(cert, &len);
  if (der == nullptr || len <= 0) return 0;
  int depth = wolfSSL_X509_STORE_CTX_get_error_depth(store);
  return session->check_leaf(der, static_cast<size_t>(len), depth) ? 1 : 0;
}

void keylog_callback(const WOLFSSL* ssl, const char* line) {
  TlsSession* session = session_of(const_cast<WOLFSSL*>(ssl));
  if (session) session->context().write_keylog(line);
}

int alpn_select(WOLFSSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void* arg) {
  const char* alpn = static_cast<const TlsContext*>(arg)->alpn();
  const size_t want = std::strlen(alpn);
  for (const unsigned char *p = in, *end = in + inlen; p < end && p + 1 + *p <= end; p += 1 + *p) {
    if (*p == want && std::memcmp(p + 1, alpn, want) == 0) {
      *out = p + 1;
      *outlen = *p;
      return SSL_TLSEXT_ERR_OK;
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

Error tls_error(const std::string& what) {
  char buf[160];
  wolfSSL_ERR_error_string_n(wolfSSL_ERR_get_error(), buf, sizeof buf);
  return make_error(Errc::tls, what + ": " + buf);
}

}  // namespace

bool fingerprint_pinned(const Fingerprint& fp, const std::vector<Fingerprint>& pins) {
  bool found = false;
  for (const auto& pin : pins) found |= constant_time_equal(fp, pin);
  return found;
}

Result<std::shared_ptr<TlsContext>> TlsContext::create(const TlsConfig& config, TlsCarrier carrier) {
  if (config.pinned_peers.empty() && config.role == TlsRole::client)
    return make_error(Errc::invalid_argument, "no peer fingerprint to pin");
  std::shared_ptr<TlsContext> tc(new TlsContext());
  tc->role_ = config.role;
  tc->carrier_ = carrier;
  tc->pins_ = config.pinned_peers;
  bool server = config.role == TlsRole::server;
  WOLFSSL_CTX* ctx = wolfSSL_CTX_new(server ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method());
  if (ctx == nullptr) return tls_error("wolfSSL_CTX_new");
  tc->ctx_ = ctx;
  if (carrier == TlsCarrier::quic) {
    int rc = server ? ngtcp2_crypto_wolfssl_configure_server_context(ctx)
                    : ngtcp2_crypto_wolfssl_configure_client_context(ctx);
    if (rc != 0) return make_error(Errc::tls, "ngtcp2 could not configure the wolfSSL context");
  }
  if (wolfSSL_CTX_use_certificate_buffer(ctx, config.identity.der.data(), static_cast<long>(config.identity.der.size()),
                                         WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS)
    return tls_error("loading our certificate");
  if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, config.identity.key_der.data(),
                                        static_cast<long>(config.identity.key_der.size()),
                                        WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS)
    return tls_error("loading our private key");
  // Both directions: the peer must present a certificate, and the callback pins it.
  wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_callback);
  if (server) {
    wolfSSL_CTX_set_alpn_select_cb(ctx, alpn_select, tc.get());
    wolfSSL_CTX_no_ticket_TLSv13(ctx);  // no resumption, so no 0-RTT either
  }
  if (!config.keylog_file.empty()) {
    // The file holds every session's secrets: created owner-only (not umask-wide).
    // Never through a symlink, and never into a file another user made or can
    // read (another local user could have planted /tmp/keys.log mode 0666).
    const int fd = ::open(config.keylog_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return errno_error("opening SSLKEYLOGFILE " + config.keylog_file, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
      ::close(fd);
      return make_error(Errc::tls, "SSLKEYLOGFILE " + config.keylog_file +
                                       " is not a private file of this user (mode 0600, owned by you): "
                                       "refusing to write TLS secrets to it");
    }
    tc->keylog_ = ::fdopen(fd, "a");
    if (tc->keylog_ == nullptr) {
      const int err = errno;
      ::close(fd);
      return errno_error("opening SSLKEYLOGFILE " + config.keylog_file, err);
    }
    wolfSSL_CTX_set_keylog_callback(ctx, keylog_callback);
  }
  return tc;
}

void TlsContext::add_pin(const Fingerprint& fp) {
  std::lock_guard<std::mutex> lk(pins_mu_);
  pins_.push_back(fp);
}

bool TlsContext::is_pinned(const Fingerprint& fp) const {
  std::lock_guard<std::mutex> lk(pins_mu_);
  return fingerprint_pinned(fp, pins_);
}

TlsContext::~TlsContext() {
  if (ctx_) wolfSSL_CTX_free(static_cast<WOLFSSL_CTX*>(ctx_));
  if (keylog_) std::fclose(keylog_);
}

void TlsContext::write_keylog(const char* line) {
  std::lock_guard<std::mutex> lk(keylog_mu_);
  if (keylog_ == nullptr) return;
  std::fprintf(keylog_, "%s\n", line);
  std::fflush(keylog_);
}

Result<std::unique_ptr<TlsSession>> TlsSession::create(std::shared_ptr<TlsContext> ctx,
                                                       ngtcp2_crypto_conn_ref* conn_ref) {
  std::unique_ptr<TlsSession> s(new TlsSession());
  s->ctx_ = std::move(ctx);
  WOLFSSL* ssl = wolfSSL_new(static_cast<WOLFSSL_CTX*>(s->ctx_->native_handle()));
  if (ssl == nullptr) return tls_error("wolfSSL_new");
  s->ssl_ = ssl;
  auto* ad = new AppData{conn_ref ? *conn_ref : ngtcp2_crypto_conn_ref{}, s.get()};
  wolfSSL_set_app_data(ssl, ad);
  if (s->ctx_->role() == TlsRole::client) {
    wolfSSL_set_connect_state(ssl);
    const char* want = s->ctx_->alpn();
    unsigned char alpn[1 + sizeof kTcpAlpn];
    alpn[0] = static_cast<unsigned char>(std::strlen(want));
    std::memcpy(alpn + 1, want, alpn[0]);
    if (wolfSSL_set_alpn_protos(ssl, alpn, 1u + alpn[0]) != WOLFSSL_SUCCESS) return tls_error("setting ALPN");
  } else {
    wolfSSL_set_accept_state(ssl);
  }
  if (s->ctx_->carrier() == TlsCarrier::quic)
    wolfSSL_set_quic_transport_version(ssl, 0x39);  // QUIC v1 transport parameters codepoint
  return s;
}

TlsSession::~TlsSession() {
  if (ssl_) {
    auto* ssl = static_cast<WOLFSSL*>(ssl_);
    delete static_cast<AppData*>(wolfSSL_get_app_data(ssl));
    wolfSSL_free(ssl);
  }
}

bool TlsSession::check_leaf(const uint8_t* der, size_t len, int depth) {
  if (depth != 0) {
    // Our peers send exactly one self-signed certificate; extra ones are refused.
    pin_failure_ = "peer sent a certificate chain; only a single pinned certificate is accepted";
    return false;
  }
  Fingerprint fp = fingerprint_of({der, len});
  if (ctx_->is_pinned(fp)) return true;
  pin_failure_ = "peer certificate " + to_hex(fp) + " does not match the pinned fingerprint";
  return false;
}

Result<Fingerprint> TlsSession::verify_peer() const {
  auto* ssl = static_cast<WOLFSSL*>(ssl_);
  WOLFSSL_X509* peer = wolfSSL_get_peer_certificate(ssl);
  if (peer == nullptr) return make_error(Errc::pin_mismatch, "peer presented no certificate");
  int len = 0;
  const unsigned char* der = wolfSSL_X509_get_der(peer, &len);
  Result<Fingerprint> out = make_error(Errc::pin_mismatch, "peer certificate unreadable");
  if (der != nullptr && len > 0) {
    Fingerprint fp = fingerprint_of({der, static_cast<size_t>(len)});
    if (ctx_->is_pinned(fp))
      out = fp;
    else
      out = make_error(Errc::pin_mismatch, "peer certificate " + to_hex(fp) + " is not pinned");
  }
  wolfSSL_X509_free(peer);
  return out;
}

void TlsSession::set_fd(int fd) { wolfSSL_set_fd(static_cast<WOLFSSL*>(ssl_), fd); }

namespace {

// What a failed non-blocking call waits for, or the error it is.
Result<TlsSession::IoWait> io_outcome(WOLFSSL* ssl, int rc, const std::string& what, const std::string& pin_failure) {
  const int err = wolfSSL_get_error(ssl, rc);
  if (err == WOLFSSL_ERROR_WANT_READ) return TlsSession::IoWait::read;
  if (err == WOLFSSL_ERROR_WANT_WRITE) return TlsSession::IoWait::write;
  if (!pin_failure.empty()) return make_error(Errc::pin_mismatch, pin_failure);
  if (err == SOCKET_PEER_CLOSED_E || err == WOLFSSL_ERROR_ZERO_RETURN)
    return make_error(Errc::closed, what + ": the peer closed the connection");
  if (err == SOCKET_ERROR_E) return make_error(Errc::closed, what + ": connection reset");
  char buf[160];
  wolfSSL_ERR_error_string_n(static_cast<unsigned long>(err), buf, sizeof buf);
  return make_error(Errc::tls, what + ": " + buf);
}

}  // namespace

Result<TlsSession::IoWait> TlsSession::handshake_step() {
  auto* ssl = static_cast<WOLFSSL*>(ssl_);
  const bool client = ctx_->role() == TlsRole::client;
  const int rc = client ? wolfSSL_connect(ssl) : wolfSSL_accept(ssl);
  if (rc == WOLFSSL_SUCCESS) return IoWait::none;
  auto out = io_outcome(ssl, rc, "TLS handshake", pin_failure_);
  if (out && *out == IoWait::none) return make_error(Errc::tls, "TLS handshake failed");
  return out;
}

Result<TlsSession::Io> TlsSession::read(std::span<uint8_t> out) {
  auto* ssl = static_cast<WOLFSSL*>(ssl_);
  const int want = static_cast<int>(std::min<size_t>(out.size(), 1u << 30));
  const int rc = wolfSSL_read(ssl, out.data(), want);
  if (rc > 0) return Io{static_cast<size_t>(rc)};
  const int err = wolfSSL_get_error(ssl, rc);
  if (err == WOLFSSL_ERROR_ZERO_RETURN || err == SOCKET_PEER_CLOSED_E) return Io{0, IoWait::none, true};
  auto w = io_outcome(ssl, rc, "TLS read", "");
  if (!w) return w.error();
  return Io{0, *w};
}

Result<TlsSession::Io> TlsSession::write(std::span<const uint8_t> in) {
  auto* ssl = static_cast<WOLFSSL*>(ssl_);
  const int want = static_cast<int>(std::min<size_t>(in.size(), 1u << 30));
  const int rc = wolfSSL_write(ssl, in.data(), want);
  if (rc > 0) return Io{static_cast<size_t>(rc)};
  auto w = io_outcome(ssl, rc, "TLS write", "");
  if (!w) return w.error();
  return Io{0, *w};
}

}  // namespace rcp
