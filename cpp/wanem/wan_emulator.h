// WanEmulator: forwards IP packets between two TUN devices through one
// LinkShaper per direction, on one epoll loop with one timerfd (armed for the
// earliest packet due). SIGINT/SIGTERM arrive through a signalfd. With
// control on, stdin takes one command per line and each gets one answer line:
//   stats                    -> {"a2b": {...}, "b2a": {...}}
//   set SHAPING...           -> ok          (flags as on the command line)
//   blackhole [a2b|b2a|both] MS -> ok       (starts now)
//   quit                     -> ok, then exit
// and stdin closing ends the emulator, so it never outlives its controller.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "net/event_loop.h"
#include "wanem/link_shaper.h"
#include "wanem/tun_device.h"
#include "wanem/wan_options.h"

namespace rcp::wanem {

class WanEmulator {
 public:
  static Result<std::unique_ptr<WanEmulator>> create(const WanOptions& options);
  // Runs until quit, a signal, or stdin closing (with control on).
  Result<void> run();
  std::string stats_json() const;

 private:
  WanEmulator(const WanOptions& options, TunDevice a, TunDevice b, UniqueFd epoll, UniqueFd timer, UniqueFd signals);

  Result<void> pump(TunDevice& from, LinkShaper& shaper);
  void deliver(Nanos now);
  Result<void> arm_timer();
  // Returns false when the controller asked us to stop.
  bool control_input();
  std::string command(const std::string& line);

  bool control_;
  TunDevice a_, b_;
  UniqueFd epoll_, timer_, signals_;
  LinkShaper a2b_, b2a_;
  std::string pending_line_;
  uint64_t write_errors_ = 0;
};

}  // namespace rcp::wanem
