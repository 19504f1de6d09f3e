#include "wanem/wan_emulator.h"

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <csignal>

#include <cerrno>
#include <cstdio>
#include <sstream>
#include <vector>

namespace rcp::wanem {
namespace {

enum Tag : uint64_t { kTunA = 1, kTunB, kTimer, kSignal, kStdin };

constexpr size_t kMaxPacket = 65536;
// Packets read from one TUN per wake-up, so one busy direction can't starve
// the other or the timer.
constexpr int kReadBatch = 64;

Result<void> watch(int epoll, int fd, Tag tag) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag;
  if (::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev) < 0) return errno_error("epoll_ctl", errno);
  return {};
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string stats_of(const ShaperStats& s) {
  std::ostringstream o;
  o << "{\"packets_in\": " << s.packets_in << ", \"bytes_in\": " << s.bytes_in << ", \"packets_out\": " << s.packets_out
    << ", \"bytes_out\": " << s.bytes_out << ", \"lost\": " << s.lost << ", \"queue_drops\": " << s.queue_drops
    << ", \"blackholed\": " << s.blackholed << ", \"corrupted\": " << s.corrupted << "}";
  return o.str();
}

}  // namespace

WanEmulator::WanEmulator(const WanOptions& options, TunDevice a, TunDevice b, UniqueFd epoll, UniqueFd timer,
                         UniqueFd signals)
    : control_(options.control), a_(std::move(a)), b_(std::move(b)), epoll_(std::move(epoll)), timer_(std::move(timer)),
      signals_(std::move(signals)),
      // Distinct seeds: the two directions must not lose the same packets in lockstep.
      a2b_(options.a2b, options.seed * 2, monotonic_now()), b2a_(options.b2a, options.seed * 2 + 1, monotonic_now()) {}

Result<std::unique_ptr<WanEmulator>> WanEmulator::create(const WanOptions& options) {
  auto a = TunDevice::attach(options.a.netns, options.a.ifname);
  if (!a) return a.error();
  auto b = TunDevice::attach(options.b.netns, options.b.ifname);
  if (!b) return b.error();
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (epoll.get() < 0) return errno_error("epoll_create1", errno);
  UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (timer.get() < 0) return errno_error("timerfd_create", errno);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGPIPE);
  if (::sigprocmask(SIG_BLOCK, &mask, nullptr) < 0) return errno_error("sigprocmask", errno);
  UniqueFd signals(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (signals.get() < 0) return errno_error("signalfd", errno);
  for (auto [fd, tag] : {std::pair{a->fd(), kTunA}, {b->fd(), kTunB}, {timer.get(), kTimer}, {signals.get(), kSignal}})
    if (auto r = watch(epoll.get(), fd, tag); !r) return r.error();
  if (options.control)
    if (auto r = watch(epoll.get(), STDIN_FILENO, kStdin); !r) return r.error();
  return std::unique_ptr<WanEmulator>(
      new WanEmulator(options, std::move(*a), std::move(*b), std::move(epoll), std::move(timer), std::move(signals)));
}

Result<void> WanEmulator::pump(TunDevice& from, LinkShaper& shaper) {
  std::vector<uint8_t> buf(kMaxPacket);
  for (int i = 0; i < kReadBatch; ++i) {
    const ssize_t n = ::read(from.fd(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return {};
      return errno_error("read " + from.label(), errno);
    }
    shaper.submit(std::vector<uint8_t>(buf.begin(), buf.begin() + n), monotonic_now());
  }
  return {};
}

void WanEmulator::deliver(Nanos now) {
  for (auto [shaper, to] : {std::pair{&a2b_, &b_}, {&b2a_, &a_}})
    for (const auto& packet : shaper->take_due(now))
      // A full TUN queue or a device going down loses the packet, as a wire would.
      if (::write(to->fd(), packet.data(), packet.size()) < 0) ++write_errors_;
}

Result<void> WanEmulator::arm_timer() {
  std::optional<Nanos> due;
  for (const LinkShaper* s : {&a2b_, &b2a_})
    if (auto d = s->next_due(); d && (!due || *d < *due)) due = d;
  itimerspec spec{};
  if (due) {
    // 0 would disarm the timer; anything already due fires at once.
    const Nanos at = *due ? *due : 1;
    spec.it_value.tv_sec = static_cast<time_t>(at / 1000000000ull);
    spec.it_value.tv_nsec = static_cast<long>(at % 1000000000ull);
  }
  if (::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) < 0)
    return errno_error("timerfd_settime", errno);
  return {};
}

std::string WanEmulator::stats_json() const {
  return "{\"a2b\": " + stats_of(a2b_.stats()) + ", \"b2a\": " + stats_of(b2a_.stats()) +
         ", \"write_errors\": " + std::to_string(write_errors_) + "}";
}

std::string WanEmulator::command(const std::string& line) {
  auto w = words(line);
  if (w.empty()) return "error empty command";
  if (w[0] == "stats") return stats_json();
  if (w[0] == "set") {
    ShaperConfig a2b = a2b_.config(), b2a = b2a_.config();
    if (auto r = apply_shaping(std::span(w).subspan(1), a2b, b2a); !r) return "error " + r.error().message;
    a2b_.reconfigure(std::move(a2b));
    b2a_.reconfigure(std::move(b2a));
    return "ok";
  }
  if (w[0] == "blackhole" && (w.size() == 2 || w.size() == 3)) {
    const std::string dir = w.size() == 3 ? w[1] : "both";
    auto ms = parse_millis(w.back());
    if (!ms || (dir != "a2b" && dir != "b2a" && dir != "both")) return "error usage: blackhole [a2b|b2a|both] MS";
    const Nanos now = monotonic_now();
    if (dir != "b2a") a2b_.blackhole_now(now, *ms);
    if (dir != "a2b") b2a_.blackhole_now(now, *ms);
    return "ok";
  }
  if (w[0] == "quit") return "ok";
  return "error unknown command " + w[0];
}

bool WanEmulator::control_input() {
  char buf[4096];
  const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
  if (n == 0) return false;  // our controller is gone
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  pending_line_.append(buf, static_cast<size_t>(n));
  if (pending_line_.size() > 65536) pending_line_.clear();  // no command is that long
  for (size_t nl; (nl = pending_line_.find('\n')) != std::string::npos;) {
    const std::string line = pending_line_.substr(0, nl);
    pending_line_.erase(0, nl + 1);
    std::printf("%s\n", command(line).c_str());
    std::fflush(stdout);
    if (words(line) == std::vector<std::string>{"quit"}) return false;
  }
  return true;
}

Result<void> WanEmulator::run() {
  std::printf("ready\n");
  std::fflush(stdout);
  epoll_event events[8];
  for (;;) {
    const int n = ::epoll_wait(epoll_.get(), events, 8, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("epoll_wait", errno);
    }
    for (int i = 0; i < n; ++i) {
      switch (events[i].data.u64) {
        case kTunA:
          if (auto r = pump(a_, a2b_); !r) return r;
          break;
        case kTunB:
          if (auto r = pump(b_, b2a_); !r) return r;
          break;
        case kTimer: {
          uint64_t expirations;
          (void)!::read(timer_.get(), &expirations, sizeof expirations);
          break;
        }
        case kSignal: return {};
        case kStdin:
          if (!control_input()) return {};
          break;
      }
    }
    deliver(monotonic_now());
    if (auto r = arm_timer(); !r) return r;
  }
}

}  // namespace rcp::wanem
