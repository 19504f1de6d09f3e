// rcp-wanem: a user-space WAN emulator between two TUN devices (see
// wan_options.h for the flags and wan_emulator.h for the control commands).
// The kernel here has no netem, so the test lab shapes its source<->destination
// link with this instead.
#include <cstdio>
#include <string>
#include <vector>

#include "wanem/wan_emulator.h"
#include "wanem/wan_options.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "-h" || args[0] == "--help")) {
    std::printf(
        "usage: rcp-wanem --a NETNS:TUN --b NETNS:TUN [--seed N] [--no-control] [--dir a2b|b2a|both]\n"
        "       [--delay MS] [--jitter MS] [--loss P] [--loss-burst N] [--loss-handshake-only]\n"
        "       [--rate MBIT] [--queue BYTES] [--corrupt P] [--corrupt-first N] [--blackhole START:LEN]\n");
    return 0;
  }
  auto options = rcp::wanem::parse_wan_options(args);
  if (!options) {
    std::fprintf(stderr, "rcp-wanem: %s (see --help)\n", options.error().message.c_str());
    return 2;
  }
  auto emulator = rcp::wanem::WanEmulator::create(*options);
  if (!emulator) {
    std::fprintf(stderr, "rcp-wanem: %s\n", emulator.error().message.c_str());
    return 1;
  }
  auto result = (*emulator)->run();
  std::fprintf(stderr, "rcp-wanem: %s\n", (*emulator)->stats_json().c_str());
  if (!result) {
    std::fprintf(stderr, "rcp-wanem: %s\n", result.error().message.c_str());
    return 1;
  }
  return 0;
}
