// EventLoop: one per thread. epoll for fds, a timerfd per Timer, and an
// eventfd so other threads can post work. Only post() and stop() may be
// called from other threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace rcp {

class EventLoop {
 public:
  using FdHandler = std::function<void(uint32_t events)>;

  static Result<std::unique_ptr<EventLoop>> create();
  ~EventLoop();

  Result<void> add(int fd, uint32_t events, FdHandler handler);
  Result<void> modify(int fd, uint32_t events);
  void remove(int fd);

  // Thread-safe: queue `fn` to run on the loop thread.
  void post(std::function<void()> fn);
  // Thread-safe: make run() return after the current iteration.
  void stop();
  // Runs until stop(). Call from the owning thread only.
  void run();
  bool in_loop_thread() const { return std::this_thread::get_id() == owner_; }
  // Loop-thread-only methods state it (as muduo does): a call from another
  // thread aborts at once instead of racing (one thread-id compare).
  void assert_in_loop_thread() const {
    if (!in_loop_thread()) abort_not_in_loop_thread();
  }

 private:
  EventLoop() = default;
  void drain_posted();
  [[noreturn]] static void abort_not_in_loop_thread();

  UniqueFd epfd_;
  UniqueFd wakefd_;
  std::unordered_map<int, std::shared_ptr<FdHandler>> handlers_;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
  bool stopping_ = false;  // guarded by mu_
  std::atomic<std::thread::id> owner_;
};

// A one-shot timer on an EventLoop (timerfd, absolute CLOCK_MONOTONIC).
class Timer {
 public:
  static Result<std::unique_ptr<Timer>> create(EventLoop& loop, std::function<void()> on_fire);
  ~Timer();
  void arm_at(Nanos deadline);  // re-arming replaces the previous deadline
  void disarm();
  Nanos deadline() const { return deadline_; }

 private:
  Timer(EventLoop& loop, UniqueFd fd, std::function<void()> cb) : loop_(loop), fd_(std::move(fd)), cb_(std::move(cb)) {}
  EventLoop& loop_;
  UniqueFd fd_;
  std::function<void()> cb_;
  Nanos deadline_ = 0;
};

// An EventLoop running on its own thread; joined on destruction.
class LoopThread {
 public:
  static Result<std::unique_ptr<LoopThread>> start(std::string name);
  ~LoopThread();
  EventLoop& loop() { return *loop_; }
  // Runs fn on the loop thread and waits for it.
  void run_sync(const std::function<void()>& fn);

 private:
  LoopThread() = default;
  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
};

}  // namespace rcp
