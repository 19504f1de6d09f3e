#include "wanem/link_shaper.h"

#include <algorithm>

#include "wanem/ip_packet.h"

namespace rcp::wanem {

LinkShaper::LinkShaper(ShaperConfig config, uint64_t seed, Nanos origin)
    : config_(std::move(config)), rng_(seed), origin_(origin) {}

bool LinkShaper::chance(double p) {
  if (p <= 0.0) return false;
  if (p >= 1.0) return true;
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p;
}

bool LinkShaper::in_blackhole(Nanos now) const {
  const Nanos t = now >= origin_ ? now - origin_ : 0;
  return std::any_of(config_.blackholes.begin(), config_.blackholes.end(),
                     [t](const Window& w) { return t >= w.start && t - w.start < w.length; });
}

void LinkShaper::blackhole_now(Nanos now, Nanos length) {
  config_.blackholes.push_back(Window{now >= origin_ ? now - origin_ : 0, length});
}

size_t LinkShaper::backlog_bytes(Nanos now) {
  while (!serializing_.empty() && serializing_.front().done <= now) {
    serializing_bytes_ -= serializing_.front().size;
    serializing_.pop_front();
  }
  return serializing_bytes_;
}

void LinkShaper::maybe_corrupt(std::vector<uint8_t>& packet) {
  if (!chance(config_.corrupt)) return;
  auto udp = find_udp(packet);
  if (!udp || udp->payload_len == 0 || config_.corrupt_first == 0) return;
  const size_t span = std::min(udp->payload_len, config_.corrupt_first);
  const size_t at = udp->payload_offset + std::uniform_int_distribution<size_t>(0, span - 1)(rng_);
  // XOR with a non-zero mask: the byte always changes.
  const auto mask = static_cast<uint8_t>(std::uniform_int_distribution<int>(1, 255)(rng_));
  rewrite_udp_byte(packet, *udp, at, static_cast<uint8_t>(packet[at] ^ mask));
  ++stats_.corrupted;
}

void LinkShaper::submit(std::vector<uint8_t> packet, Nanos now) {
  ++stats_.packets_in;
  stats_.bytes_in += packet.size();
  if (in_blackhole(now)) {
    ++stats_.blackholed;
    return;
  }
  bool candidate = true;
  if (config_.loss_handshake_only) {
    auto udp = find_udp(packet);
    candidate = udp && is_quic_long_header(packet, *udp);
  }
  if (candidate && config_.loss > 0.0) {
    const bool capped = config_.max_loss_burst > 0 && loss_run_ >= config_.max_loss_burst;
    if (!capped && chance(config_.loss)) {
      ++loss_run_;
      ++stats_.lost;
      return;
    }
    loss_run_ = 0;
  }
  Nanos leaves = now;
  if (config_.rate_bps > 0) {
    if (backlog_bytes(now) + packet.size() > config_.queue_bytes) {
      ++stats_.queue_drops;
      return;
    }
    const Nanos start = std::max(now, link_free_at_);
    // Serialization time at the bottleneck, in ns; 128-bit to avoid overflow.
    const auto tx =
        static_cast<Nanos>((static_cast<unsigned __int128>(packet.size()) * 8 * 1000000000ull) / config_.rate_bps);
    link_free_at_ = start + tx;
    leaves = link_free_at_;
    serializing_.push_back(InService{leaves, packet.size()});
    serializing_bytes_ += packet.size();
  }
  Nanos due = leaves + config_.delay;
  if (config_.jitter > 0) {
    const auto j = std::uniform_int_distribution<int64_t>(-static_cast<int64_t>(config_.jitter),
                                                          static_cast<int64_t>(config_.jitter))(rng_);
    due = j < 0 && static_cast<Nanos>(-j) > due - leaves ? leaves : due + j;
  }
  due = std::max(due, last_due_);
  last_due_ = due;
  maybe_corrupt(packet);
  queue_.push_back(Queued{due, std::move(packet)});
}

std::optional<Nanos> LinkShaper::next_due() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.front().due;
}

std::vector<std::vector<uint8_t>> LinkShaper::take_due(Nanos now) {
  std::vector<std::vector<uint8_t>> out;
  while (!queue_.empty() && queue_.front().due <= now) {
    ++stats_.packets_out;
    stats_.bytes_out += queue_.front().bytes.size();
    out.push_back(std::move(queue_.front().bytes));
    queue_.pop_front();
  }
  return out;
}

}  // namespace rcp::wanem
