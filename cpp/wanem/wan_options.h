// Command-line and control-line options of rcp-wanem.
//
//   rcp-wanem --a NETNS:TUN --b NETNS:TUN [--seed N] [--no-control] [SHAPING...]
//
// SHAPING flags apply to the direction chosen by the last --dir (a2b, b2a or
// both; default both), so "--delay 25 --dir a2b --loss 2%" gives both
// directions 25 ms and only a→b the loss:
//   --delay MS  --jitter MS  --loss P  --loss-burst N  --loss-handshake-only
//   --loss-all  --rate MBIT  --queue BYTES  --corrupt P  --corrupt-first N
//   --blackhole START_MS:LENGTH_MS  --clear-blackholes
// P is a fraction (0.02) or a percentage (2%). --rate 0 is unlimited.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "wanem/link_shaper.h"

namespace rcp::wanem {

struct TunSpec {
  std::string netns;  // name under /run/netns, a path, or empty for our own
  std::string ifname;
};

struct WanOptions {
  TunSpec a, b;
  uint64_t seed = 1;
  bool control = true;  // read commands from stdin and exit when it closes
  ShaperConfig a2b, b2a;
};

Result<WanOptions> parse_wan_options(std::span<const std::string> args);

// Applies SHAPING flags on top of the given configurations (used for the
// command line and for the "set" control command).
Result<void> apply_shaping(std::span<const std::string> args, ShaperConfig& a2b, ShaperConfig& b2a);

// "12.5" ms -> ns; "2%" or "0.02" -> 0.02.
Result<Nanos> parse_millis(const std::string& text);
Result<double> parse_probability(const std::string& text);

}  // namespace rcp::wanem
