// LinkShaper: one direction of an emulated WAN path. It decides, for each IP
// packet handed to submit(), whether it is lost, corrupted or queued, and
// when it leaves the far end. Pure logic: time is passed in and randomness
// comes from a seeded generator, so unit tests are exact and repeatable.
//
// Model, in the order a packet meets it:
//   1. a blackhole window (scheduled, or started at run time) drops everything;
//   2. random loss with probability `loss`, but never more than
//      `max_loss_burst` packets in a row (0 = no cap); with `loss_handshake_only`
//      only QUIC long-header packets (handshakes) are candidates;
//   3. the bottleneck: a FIFO drained at `rate_bps`; a packet that would
//      take the backlog over `queue_bytes` is tail-dropped;
//   4. one-way `delay` plus uniform jitter in [-jitter, +jitter]; delivery
//      stays FIFO (jitter never reorders, as on a single real path);
//   5. corruption: with probability `corrupt`, one byte among the first
//      `corrupt_first` bytes of the UDP payload is changed and the UDP
//      checksum patched, so the damage reaches the receiving application.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "net/event_loop.h"  // Nanos

namespace rcp::wanem {

struct Window {
  Nanos start = 0;  // relative to the shaper's origin
  Nanos length = 0;
};

struct ShaperConfig {
  Nanos delay = 0;
  Nanos jitter = 0;
  double loss = 0.0;
  uint32_t max_loss_burst = 0;
  bool loss_handshake_only = false;
  uint64_t rate_bps = 0;          // 0 = unlimited
  size_t queue_bytes = 1u << 20;  // bottleneck buffer
  double corrupt = 0.0;
  size_t corrupt_first = 50;
  std::vector<Window> blackholes = {};
};

struct ShaperStats {
  uint64_t packets_in = 0, bytes_in = 0;
  uint64_t packets_out = 0, bytes_out = 0;
  uint64_t lost = 0, queue_drops = 0, blackholed = 0, corrupted = 0;
};

class LinkShaper {
 public:
  LinkShaper(ShaperConfig config, uint64_t seed, Nanos origin);

  // Takes a packet arriving at `now`; it may be dropped.
  void submit(std::vector<uint8_t> packet, Nanos now);
  // Earliest time a queued packet is due; nullopt when none is queued.
  std::optional<Nanos> next_due() const;
  // Packets due at or before `now`, in order.
  std::vector<std::vector<uint8_t>> take_due(Nanos now);

  // Replaces the configuration; queued packets keep their schedule.
  void reconfigure(ShaperConfig config) { config_ = std::move(config); }
  // Drops everything submitted during [now, now + length).
  void blackhole_now(Nanos now, Nanos length);

  const ShaperConfig& config() const { return config_; }
  const ShaperStats& stats() const { return stats_; }
  size_t backlog_bytes(Nanos now);

 private:
  struct Queued {
    Nanos due = 0;
    std::vector<uint8_t> bytes;
  };
  struct InService {
    Nanos done = 0;  // when its last bit leaves the bottleneck
    size_t size = 0;
  };

  bool in_blackhole(Nanos now) const;
  bool chance(double p);
  void maybe_corrupt(std::vector<uint8_t>& packet);

  ShaperConfig config_;
  std::mt19937_64 rng_;
  Nanos origin_;
  uint32_t loss_run_ = 0;   // consecutive packets lost so far
  Nanos link_free_at_ = 0;  // when the bottleneck finishes its backlog
  Nanos last_due_ = 0;      // keeps delivery FIFO under jitter
  std::deque<InService> serializing_;
  size_t serializing_bytes_ = 0;
  std::deque<Queued> queue_;
  ShaperStats stats_;
};

}  // namespace rcp::wanem
