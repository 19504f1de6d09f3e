#include "quic/quic_connection.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace rcp {

namespace {

constexpr size_t kCidLen = kQuicCidLen;
constexpr size_t kMaxSegments = 64;
constexpr int kPacketBudget = 1024;  // per flush, so incoming ACKs get read
constexpr size_t kPacingQuanta = 4;
constexpr size_t kMaxBurst = 256u << 10;
constexpr ngtcp2_duration kPacingMinRtt = 4 * NGTCP2_MILLISECONDS;

QuicConnection* self(void* user_data) { return static_cast<QuicConnection*>(user_data); }

ngtcp2_conn* get_conn(ngtcp2_crypto_conn_ref* ref) { return self(ref->user_data)->native(); }

void fill_random(uint8_t* dest, size_t len) {
  if (random_bytes({dest, len})) return;
  // ngtcp2's callback cannot fail, and connection IDs and tokens must not be
  // guessable: with neither getrandom(2) nor /dev/urandom there is no way on.
  std::fputs("rcp: no kernel randomness (getrandom, /dev/urandom)\n", stderr);
  std::abort();
}

void rand_cb(uint8_t* dest, size_t len, const ngtcp2_rand_ctx*) { fill_random(dest, len); }

int handshake_completed_cb(ngtcp2_conn*, void* ud) { return self(ud)->on_handshake_completed(); }

int recv_stream_data_cb(ngtcp2_conn*, uint32_t flags, int64_t id, uint64_t, const uint8_t* data, size_t len, void* ud,
                        void*) {
  return self(ud)->on_recv_stream_data(flags, id, data, len);
}

int acked_cb(ngtcp2_conn*, int64_t id, uint64_t offset, uint64_t len, void* ud, void*) {
  return self(ud)->on_acked(id, offset, len);
}

int stream_close_cb(ngtcp2_conn*, uint32_t flags, int64_t id, uint64_t code, void* ud, void*) {
  return self(ud)->on_stream_close(id, (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) ? code : 0);
}

int extend_max_stream_data_cb(ngtcp2_conn*, int64_t id, uint64_t, void* ud, void*) {
  return self(ud)->on_extend_max_stream_data(id);
}

int extend_max_streams_cb(ngtcp2_conn*, uint64_t, void* ud) { return self(ud)->on_extend_max_local_streams(); }

int new_cid_cb(ngtcp2_conn*, ngtcp2_cid* cid, uint8_t* token, size_t cidlen, void* ud) {
  return self(ud)->on_new_cid(cid, token, cidlen);
}

int remove_cid_cb(ngtcp2_conn*, const ngtcp2_cid* cid, void* ud) { return self(ud)->on_remove_cid(cid); }

ngtcp2_cid random_cid() {
  ngtcp2_cid cid{};
  cid.datalen = kCidLen;
  fill_random(cid.data, kCidLen);
  return cid;
}

ngtcp2_path make_path(const Address& local, const Address& remote) {
  ngtcp2_path p{};
  p.local.addr = const_cast<sockaddr*>(local.sa());
  p.local.addrlen = local.len;
  p.remote.addr = const_cast<sockaddr*>(remote.sa());
  p.remote.addrlen = remote.len;
  return p;
}

bool is_certificate_alert(uint64_t alert) {
  // bad_certificate, unsupported_certificate, certificate_unknown, unknown_ca, certificate_required
  return alert == 42 || alert == 43 || alert == 46 || alert == 48 || alert == 116;
}

}  // namespace

QuicConnection::QuicConnection(const QuicConfig& config, DatagramSink& sink, const Address& local,
                               const Address& remote, Events events, Nanos now)
    : config_(config), sink_(sink), now_(now), local_(local), remote_(remote), events_(std::move(events)) {}

QuicConnection::~QuicConnection() {
  tls_.reset();  // the TLS session refers to conn_ through conn_ref_
  if (conn_) ngtcp2_conn_del(conn_);
}

Result<std::unique_ptr<QuicConnection>> QuicConnection::connect(const QuicConfig& config,
                                                                std::shared_ptr<TlsContext> tls, DatagramSink& sink,
                                                                const Address& local, const Address& remote,
                                                                Events events, Nanos now) {
  std::unique_ptr<QuicConnection> c(new QuicConnection(config, sink, local, remote, std::move(events), now));
  auto r = c->init(false, std::move(tls), nullptr, nullptr);
  if (!r) return r.error();
  return c;
}

Result<std::unique_ptr<QuicConnection>> QuicConnection::accept(const QuicConfig& config,
                                                               std::shared_ptr<TlsContext> tls, DatagramSink& sink,
                                                               const Address& local, const Address& remote,
                                                               const ngtcp2_pkt_hd& hd, const ngtcp2_cid* odcid,
                                                               Events events, Nanos now) {
  std::unique_ptr<QuicConnection> c(new QuicConnection(config, sink, local, remote, std::move(events), now));
  auto r = c->init(true, std::move(tls), &hd, odcid);
  if (!r) return r.error();
  return c;
}

Result<void> QuicConnection::init(bool server, std::shared_ptr<TlsContext> tls, const ngtcp2_pkt_hd* hd,
                                  const ngtcp2_cid* odcid) {
  ngtcp2_callbacks cb{};
  if (server) {
    cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  } else {
    cb.client_initial = ngtcp2_crypto_client_initial_cb;
    cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
  }
  cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb.encrypt = ngtcp2_crypto_encrypt_cb;
  cb.decrypt = ngtcp2_crypto_decrypt_cb;
  cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb.update_key = ngtcp2_crypto_update_key_cb;
  cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb.rand = rand_cb;
  cb.get_new_connection_id = new_cid_cb;
  cb.remove_connection_id = remove_cid_cb;
  cb.handshake_completed = handshake_completed_cb;
  cb.recv_stream_data = recv_stream_data_cb;
  cb.acked_stream_data_offset = acked_cb;
  cb.stream_close = stream_close_cb;
  cb.extend_max_stream_data = extend_max_stream_data_cb;
  cb.extend_max_local_streams_bidi = extend_max_streams_cb;
  cb.extend_max_local_streams_uni = extend_max_streams_cb;

  ngtcp2_settings settings;
  ngtcp2_settings_default(&settings);
  settings.initial_ts = now_;
  settings.cc_algo = config_.cc == CongestionControl::bbr    ? NGTCP2_CC_ALGO_BBR
                     : config_.cc == CongestionControl::reno ? NGTCP2_CC_ALGO_RENO
                                                             : NGTCP2_CC_ALGO_CUBIC;
  settings.max_tx_udp_payload_size = config_.max_udp_payload;
  settings.handshake_timeout = config_.handshake_timeout;
  settings.max_window = config_.max_conn_window;
  settings.max_stream_window = config_.max_stream_window;
  // PMTUD probes, largest first, up to the configured payload size.
  pmtud_probes_.clear();
  for (size_t size : {config_.max_udp_payload, size_t{1452}, size_t{1392}, size_t{1280}})
    if (size > 1200 && size <= config_.max_udp_payload && size <= kMaxUdpPayload &&
        std::find(pmtud_probes_.begin(), pmtud_probes_.end(), size) == pmtud_probes_.end())
      pmtud_probes_.push_back(static_cast<uint16_t>(size));
  settings.pmtud_probes = pmtud_probes_.data();
  settings.pmtud_probeslen = pmtud_probes_.size();
  settings.no_pmtud = pmtud_probes_.empty();

  ngtcp2_transport_params params;
  ngtcp2_transport_params_default(&params);
  params.initial_max_stream_data_bidi_local = config_.stream_window;
  params.initial_max_stream_data_bidi_remote = config_.stream_window;
  params.initial_max_stream_data_uni = config_.stream_window;
  params.initial_max_data = config_.conn_window;
  params.initial_max_streams_bidi = config_.max_streams;
  params.initial_max_streams_uni = config_.max_uni_streams;
  params.max_udp_payload_size = kMaxUdpPayload;  // our receive slots take any datagram
  params.max_idle_timeout = config_.idle_timeout;
  params.active_connection_id_limit = 4;

  ngtcp2_cid scid = random_cid();
  ngtcp2_path path = make_path(local_, remote_);
  int rv;
  if (server) {
    if (odcid != nullptr) {
      // The client came back with our Retry token: its address is validated,
      // and both connection IDs go into the transport parameters, which the
      // client checks (RFC 9000 7.3).
      params.original_dcid = *odcid;
      params.retry_scid = hd->dcid;
      params.retry_scid_present = 1;
      settings.token = hd->token;
      settings.tokenlen = hd->tokenlen;
      settings.token_type = NGTCP2_TOKEN_TYPE_RETRY;
    } else {
      params.original_dcid = hd->dcid;  // not retried: the DCID the client chose
    }
    params.original_dcid_present = 1;
    rv = ngtcp2_conn_server_new(&conn_, &hd->scid, &scid, &path, hd->version, &cb, &settings, &params, nullptr, this);
  } else {
    ngtcp2_cid dcid = random_cid();
    rv = ngtcp2_conn_client_new(&conn_, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &settings, &params, nullptr,
                                this);
  }
  if (rv != 0) return make_error(Errc::quic, std::string("creating QUIC connection: ") + ngtcp2_strerror(rv));
  scids_.push_back(scid);

  conn_ref_.get_conn = get_conn;
  conn_ref_.user_data = this;
  auto session = TlsSession::create(std::move(tls), &conn_ref_);
  if (!session) return session.error();
  tls_ = std::move(session.value());
  ngtcp2_conn_set_tls_native_handle(conn_, tls_->native_handle());
  if (config_.keep_alive > 0) ngtcp2_conn_set_keep_alive_timeout(conn_, config_.keep_alive);

  txbuf_.resize(kMaxGsoBytes);
  return {};
}

std::vector<ngtcp2_cid> QuicConnection::cids() const { return scids_; }

void QuicConnection::on_datagram(std::span<const uint8_t> pkt, const Address& from, Nanos now) {
  if (closed_) return;
  now_ = now;
  ++stats_.packets_received;
  stats_.bytes_received += pkt.size();
  ngtcp2_path path = make_path(local_, from);
  ngtcp2_pkt_info pi{};
  int rv = ngtcp2_conn_read_pkt(conn_, &path, &pi, pkt.data(), pkt.size(), now);
  if (rv == 0) return;
  if (rv == NGTCP2_ERR_DRAINING || rv == NGTCP2_ERR_DROP_CONN) {
    finish(describe_close(rv));  // the peer closed; nothing to answer
    return;
  }
  if (rv == NGTCP2_ERR_DISCARD_PKT) return;  // undecryptable or stray; ignore
  fail(rv);
}

void QuicConnection::on_timer(Nanos now) {
  if (closed_) return;
  now_ = now;
  int rv = ngtcp2_conn_handle_expiry(conn_, now);
  if (rv == NGTCP2_ERR_IDLE_CLOSE || rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
    finish(describe_close(rv));  // silently, as RFC 9000 10.1 says for idle timeout
    return;
  }
  if (rv != 0) {
    fail(rv);
    return;
  }
  flush(now);
}

Nanos QuicConnection::expiry() const {
  if (closed_) return kNever;
  ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(conn_);
  return expiry == UINT64_MAX ? kNever : expiry;
}

bool QuicConnection::send_batch(const uint8_t* data, size_t len, size_t segment) {
  auto r = sink_.send_datagrams(remote_, {data, len}, segment);
  if (!r) {
    // Unreachable peer and the like: QUIC sees it as loss and its timers decide.
    config_.logger.debug("send to " + remote_.to_string() + ": " + r.error().message);
    return true;
  }
  if (*r == SendStatus::would_block) {
    pending_.assign(data, data + len);
    pending_segment_ = segment;
    return false;
  }
  ++stats_.send_calls;
  stats_.bytes_sent += len;
  stats_.packets_sent += (len + segment - 1) / segment;
  return true;
}

SendBuffer* QuicConnection::next_stream_with_data() {
  for (size_t tries = 0; tries < ready_.size();) {
    if (rr_ >= ready_.size()) rr_ = 0;
    int64_t id = ready_[rr_];
    auto it = streams_.find(id);
    if (it == streams_.end() || (!it->second.has_unsent() && !it->second.fin_pending())) {
      ready_.erase(ready_.begin() + static_cast<long>(rr_));  // nothing left; drop from the ring
      continue;
    }
    if (blocked_.count(id)) {
      ++rr_;
      ++tries;
      continue;
    }
    return &it->second;
  }
  return nullptr;
}

bool QuicConnection::flush(Nanos now) {
  if (closed_) return false;
  now_ = now;
  if (!pending_.empty()) {
    std::vector<uint8_t> again;
    again.swap(pending_);
    if (!send_batch(again.data(), again.size(), pending_segment_)) return false;
  }
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  const ngtcp2_tstamp ts = now;
  // Buffer room for the largest packet ngtcp2 may write (PMTU probes
  // included); batches are sized by the path's current payload size.
  const size_t max_pkt = ngtcp2_conn_get_max_tx_udp_payload_size(conn_);
  const size_t path_pkt = ngtcp2_conn_get_path_max_tx_udp_payload_size(conn_);
  const size_t max_segs = std::max<size_t>(1, std::min(kMaxSegments, kMaxGsoBytes / path_pkt));
  size_t off = 0, segs = 0, seg_size = 0;
  bool more = false;
  // Pacing: on a path with a real round trip, a few send quanta per flush
  // (at most 256 KiB), then ngtcp2 refuses to write until its pacing time,
  // which the caller waits for (expiry()). Bursts of a whole window would overflow the
  // shallow queues of real paths; a few quanta keep GSO batches full and
  // wakeups rare. Within a host or a LAN (RTT under 4 ms) the extra wakeups
  // only cost throughput, so there a flush writes its full budget.
  ngtcp2_conn_info info;
  ngtcp2_conn_get_conn_info(conn_, &info);
  const bool paced = info.smoothed_rtt >= kPacingMinRtt;
  const size_t quantum =
      std::max<size_t>(1, std::min<size_t>(kPacingQuanta * ngtcp2_conn_get_send_quantum(conn_), kMaxBurst) / path_pkt);
  int budget = paced ? static_cast<int>(std::min<size_t>(kPacketBudget, quantum)) : kPacketBudget;

  for (;;) {
    SendBuffer* sb = next_stream_with_data();
    int64_t sid = -1;
    ngtcp2_vec vec[16];
    size_t nvec = 0;
    uint32_t flags = 0;
    if (sb) {
      sid = ready_[rr_];
      nvec = sb->unsent(vec, 16);
      flags |= NGTCP2_WRITE_STREAM_FLAG_MORE;
      size_t total = 0;
      for (size_t i = 0; i < nvec; ++i) total += vec[i].len;
      // FIN rides with the last bytes once all of them are offered in this call.
      if (sb->fin_pending() && total == sb->unsent_bytes()) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
    }
    ngtcp2_ssize ndatalen = -1;
    ngtcp2_ssize n = ngtcp2_conn_writev_stream(conn_, &ps.path, &pi, txbuf_.data() + off, max_pkt, &ndatalen, flags,
                                               sid, vec, nvec, ts);
    if (sb && ndatalen >= 0) {
      sb->mark_sent(static_cast<size_t>(ndatalen));
      if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && !sb->has_unsent())
        sb->mark_fin_sent();  // ngtcp2 sends FIN only with the last byte
      ++rr_;
    }
    if (n < 0) {
      if (n == NGTCP2_ERR_WRITE_MORE) continue;  // packet has room; keep filling it
      if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
        blocked_.insert(sid);
        continue;
      }
      if (n == NGTCP2_ERR_STREAM_SHUT_WR || n == NGTCP2_ERR_STREAM_NOT_FOUND) {
        streams_.erase(sid);
        continue;
      }
      fail(static_cast<int>(n));
      return false;
    }
    if (n == 0) break;  // congestion, pacing or nothing to send
    const size_t len = static_cast<size_t>(n);
    if (segs > 0 && len > seg_size) {
      // A larger packet (a PMTU probe) cannot join this batch: send the batch,
      // then start a new one with this packet.
      if (!send_batch(txbuf_.data(), off, seg_size)) {
        return false;  // the probe itself is dropped; ngtcp2 sees it as lost
      }
      std::memmove(txbuf_.data(), txbuf_.data() + off, len);
      off = segs = 0;
    }
    if (segs == 0) seg_size = len;
    off += len;
    ++segs;
    // A GSO batch holds equal-size packets; a shorter one must be its last.
    if (static_cast<size_t>(n) < seg_size || segs == max_segs || off + max_pkt > txbuf_.size()) {
      if (!send_batch(txbuf_.data(), off, seg_size)) return false;
      off = segs = 0;
    }
    if (--budget == 0) {
      more = !paced;  // paced: the timer resumes at the pacing time
      break;
    }
  }
  if (off > 0 && !send_batch(txbuf_.data(), off, seg_size)) return false;
  ngtcp2_conn_update_pkt_tx_time(conn_, ts);
  if (config_.logger.enabled(LogLevel::debug) && now >= last_trace_ + kSeconds) trace_state(now);
  return more;
}

void QuicConnection::trace_state(Nanos now) {
  ngtcp2_conn_info ci;
  ngtcp2_conn_get_conn_info(conn_, &ci);
  uint64_t unsent = 0, unacked = 0;
  for (auto& [id, sb] : streams_) {
    unsent += sb.unsent_bytes();
    unacked += sb.unacked();
  }
  const double secs = last_trace_ ? static_cast<double>(now - last_trace_) / 1e9 : 1.0;
  char line[400];
  std::snprintf(line, sizeof line,
                "quic: %.1f Mbit/s out; cwnd %llu, in flight %llu, srtt %.1f ms, min rtt %.1f ms; unsent %llu, "
                "unacked %llu in %zu streams (%zu blocked); conn credit left %llu; pmtu %zu",
                static_cast<double>(stats_.bytes_sent - traced_bytes_) * 8 / secs / 1e6,
                static_cast<unsigned long long>(ci.cwnd), static_cast<unsigned long long>(ci.bytes_in_flight),
                static_cast<double>(ci.smoothed_rtt) / 1e6, static_cast<double>(ci.min_rtt) / 1e6,
                static_cast<unsigned long long>(unsent), static_cast<unsigned long long>(unacked), streams_.size(),
                blocked_.size(), static_cast<unsigned long long>(ngtcp2_conn_get_max_data_left(conn_)),
                ngtcp2_conn_get_path_max_tx_udp_payload_size(conn_));
  config_.logger.debug(line);
  last_trace_ = now;
  traced_bytes_ = stats_.bytes_sent;
}

Result<int64_t> QuicConnection::open_stream(bool bidi) {
  if (closed_) return error_.code == Errc::ok ? make_error(Errc::closed, "connection closed") : error_;
  int64_t id = -1;
  int rv = bidi ? ngtcp2_conn_open_bidi_stream(conn_, &id, nullptr) : ngtcp2_conn_open_uni_stream(conn_, &id, nullptr);
  if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
    return make_error(Errc::too_large, "the peer allows no more concurrent streams yet");
  if (rv != 0) return make_error(Errc::quic, std::string("opening stream: ") + ngtcp2_strerror(rv));
  streams_[id];
  return id;
}

void QuicConnection::send(int64_t id, std::vector<uint8_t> data, bool fin) {
  if (closed_) return;
  auto& sb = streams_[id];
  sb.append(std::move(data));
  if (fin) sb.finish();
  if (std::find(ready_.begin(), ready_.end(), id) == ready_.end()) ready_.push_back(id);
}

void QuicConnection::consume(int64_t id, uint64_t n) {
  if (closed_ || n == 0) return;
  ngtcp2_conn_extend_max_stream_offset(conn_, id, n);  // fails harmlessly once the stream is gone
  ngtcp2_conn_extend_max_offset(conn_, n);
}

void QuicConnection::grant_peer_uni_stream() {
  if (!closed_) ngtcp2_conn_extend_max_streams_uni(conn_, 1);
}

void QuicConnection::reset_stream(int64_t id, uint64_t app_error) {
  if (closed_) return;
  ngtcp2_conn_shutdown_stream(conn_, 0, id, app_error);
  streams_.erase(id);
}

void QuicConnection::close(uint64_t app_error, const std::string& reason) {
  if (closed_) return;
  ngtcp2_ccerr ccerr;
  ngtcp2_ccerr_default(&ccerr);
  ngtcp2_ccerr_set_application_error(&ccerr, app_error, reinterpret_cast<const uint8_t*>(reason.data()), reason.size());
  send_close_packet(ccerr);
  const bool normal = events_.classify_app_error && events_.classify_app_error(app_error) == Errc::closed;
  finish(make_error(normal ? Errc::closed : Errc::protocol, "closed locally: " + reason));
}

void QuicConnection::fail(int liberr) {
  if (closed_) return;
  ngtcp2_ccerr ccerr;
  ngtcp2_ccerr_default(&ccerr);
  if (liberr == NGTCP2_ERR_CRYPTO)
    ngtcp2_ccerr_set_tls_alert(&ccerr, ngtcp2_conn_get_tls_alert(conn_), nullptr, 0);
  else
    ngtcp2_ccerr_set_liberr(&ccerr, liberr, nullptr, 0);
  send_close_packet(ccerr);
  finish(describe_close(liberr));
}

void QuicConnection::send_close_packet(const ngtcp2_ccerr& ccerr) {
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  uint8_t buf[1500];
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(conn_, &ps.path, &pi, buf, sizeof buf, &ccerr, now_);
  if (n > 0) send_batch(buf, static_cast<size_t>(n), static_cast<size_t>(n));
}

void QuicConnection::finish(Error err) {
  if (closed_) return;
  closed_ = true;
  error_ = std::move(err);
  config_.logger.debug("connection to " + remote_.to_string() + " closed: " + error_.message);
  if (events_.closed) events_.closed();
}

Error QuicConnection::describe_close(int liberr) const {
  if (pending_error_.code != Errc::ok) return pending_error_;
  const double secs_idle = static_cast<double>(config_.idle_timeout) / 1e9;
  switch (liberr) {
    case NGTCP2_ERR_IDLE_CLOSE:
      return make_error(Errc::timeout, "no packet from " + remote_.to_string() + " for " +
                                           std::to_string(static_cast<int>(secs_idle)) +
                                           " s (idle timeout): the peer is gone or unreachable");
    case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
      return make_error(Errc::timeout, "QUIC handshake with " + remote_.to_string() + " did not complete in " +
                                           std::to_string(config_.handshake_timeout / kSeconds) + " s");
    case NGTCP2_ERR_CRYPTO:
      if (!tls_->pin_failure().empty()) return make_error(Errc::pin_mismatch, tls_->pin_failure());
      return make_error(Errc::tls, "TLS handshake with " + remote_.to_string() + " failed (alert " +
                                       std::to_string(ngtcp2_conn_get_tls_alert(conn_)) + ")");
    case NGTCP2_ERR_DRAINING:
    case NGTCP2_ERR_DROP_CONN: {
      const ngtcp2_ccerr* ce = ngtcp2_conn_get_ccerr(conn_);
      std::string reason(reinterpret_cast<const char*>(ce->reason), ce->reasonlen);
      if ((ce->type == NGTCP2_CCERR_TYPE_TRANSPORT && ce->error_code >= 0x100 && ce->error_code < 0x200)) {
        uint64_t alert = ce->error_code & 0xff;
        if (is_certificate_alert(alert))
          return make_error(Errc::pin_mismatch, "peer " + remote_.to_string() + " refused our certificate (TLS alert " +
                                                    std::to_string(alert) + "): it pins a different fingerprint");
        return make_error(Errc::tls, "peer " + remote_.to_string() + " aborted the TLS handshake (alert " +
                                         std::to_string(alert) + ")");
      }
      if (ce->type == NGTCP2_CCERR_TYPE_APPLICATION) {
        Errc code = events_.classify_app_error ? events_.classify_app_error(ce->error_code) : Errc::protocol;
        return make_error(code, "peer closed the connection: " + (reason.empty() ? "no reason given" : reason));
      }
      if (ce->error_code == 0) return make_error(Errc::closed, "peer closed the connection");
      return make_error(Errc::quic, "peer closed the connection with QUIC error " + std::to_string(ce->error_code) +
                                        (reason.empty() ? "" : ": " + reason));
    }
    default: return make_error(Errc::quic, std::string("QUIC error: ") + ngtcp2_strerror(liberr));
  }
}

int QuicConnection::on_handshake_completed() {
  auto fp = tls_->verify_peer();
  if (!fp) {
    pending_error_ = fp.error();
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  if (events_.admit && !events_.admit()) {
    pending_error_ =
        make_error(Errc::closed, "refused " + remote_.to_string() + ": no room for another authenticated peer");
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  peer_fp_ = *fp;
  handshake_done_ = true;
  if (events_.handshake_done) events_.handshake_done();
  return 0;
}

int QuicConnection::on_recv_stream_data(uint32_t flags, int64_t id, const uint8_t* data, size_t len) {
  if (events_.stream_data) events_.stream_data(id, {data, len}, (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0);
  return 0;
}

int QuicConnection::on_acked(int64_t id, uint64_t offset, uint64_t len) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return 0;
  uint64_t freed = it->second.ack_to(offset + len);
  if (freed && events_.stream_acked) events_.stream_acked(id, freed);
  return 0;
}

int QuicConnection::on_stream_close(int64_t id, uint64_t app_error) {
  // ngtcp2 leaves stream credit to the application: a closed peer bidi
  // stream lets the peer open one more; unidirectional credit is the Link's
  // (grant_peer_uni_stream), given when the stream has been read.
  if (!ngtcp2_conn_is_local_stream(conn_, id) && !(id & 0x2)) ngtcp2_conn_extend_max_streams_bidi(conn_, 1);
  auto it = streams_.find(id);
  if (it != streams_.end()) {
    uint64_t unacked = it->second.unacked();
    streams_.erase(it);
    if (unacked && events_.stream_acked) events_.stream_acked(id, unacked);  // release the writer's credit
  }
  blocked_.erase(id);
  if (events_.stream_closed) events_.stream_closed(id, app_error);
  return 0;
}

int QuicConnection::on_extend_max_stream_data(int64_t id) {
  blocked_.erase(id);
  return 0;
}

int QuicConnection::on_extend_max_local_streams() {
  if (events_.streams_available) events_.streams_available();
  return 0;
}

int QuicConnection::on_new_cid(ngtcp2_cid* cid, uint8_t* token, size_t cidlen) {
  cid->datalen = cidlen;
  fill_random(cid->data, cidlen);
  fill_random(token, NGTCP2_STATELESS_RESET_TOKENLEN);
  scids_.push_back(*cid);
  if (events_.cid_changed) events_.cid_changed(*cid, true);
  return 0;
}

int QuicConnection::on_remove_cid(const ngtcp2_cid* cid) {
  scids_.erase(
      std::remove_if(scids_.begin(), scids_.end(), [&](const ngtcp2_cid& c) { return ngtcp2_cid_eq(&c, cid); }),
      scids_.end());
  if (events_.cid_changed) events_.cid_changed(*cid, false);
  return 0;
}

QuicStats QuicConnection::stats() const {
  QuicStats s = stats_;
  s.gso = sink_.gso_enabled();
  if (conn_) {
    s.max_udp_payload = ngtcp2_conn_get_path_max_tx_udp_payload_size(conn_);
    ngtcp2_conn_info ci;
    ngtcp2_conn_get_conn_info(conn_, &ci);
    s.smoothed_rtt = ci.smoothed_rtt;
    s.cwnd = ci.cwnd;
  }
  return s;
}

}  // namespace rcp
