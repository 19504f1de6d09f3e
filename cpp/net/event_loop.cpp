#include "net/event_loop.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <future>

namespace rcp {

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
  std::unique_ptr<EventLoop> loop(new EventLoop());
  loop->epfd_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (loop->epfd_.get() < 0) return errno_error("epoll_create1", errno);
  loop->wakefd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (loop->wakefd_.get() < 0) return errno_error("eventfd", errno);
  EventLoop* raw = loop.get();
  auto r = loop->add(loop->wakefd_.get(), EPOLLIN, [raw](uint32_t) {
    uint64_t v;
    while (::read(raw->wakefd_.get(), &v, sizeof v) > 0) {
    }
    raw->drain_posted();
  });
  if (!r) return r.error();
  return loop;
}

EventLoop::~EventLoop() = default;

Result<void> EventLoop::add(int fd, uint32_t events, FdHandler handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return errno_error("epoll_ctl(ADD)", errno);
  handlers_[fd] = std::make_shared<FdHandler>(std::move(handler));
  return {};
}

Result<void> EventLoop::modify(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) return errno_error("epoll_ctl(MOD)", errno);
  return {};
}

void EventLoop::remove(int fd) {
  epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  handlers_.erase(fd);
}

void EventLoop::post(std::function<void()> fn) {
  bool wake;
  {
    std::lock_guard<std::mutex> lk(mu_);
    wake = posted_.empty();
    posted_.push_back(std::move(fn));
  }
  if (wake) {
    uint64_t one = 1;
    // A full eventfd counter still wakes the loop, so a failed write is harmless.
    [[maybe_unused]] auto n = ::write(wakefd_.get(), &one, sizeof one);
  }
}

void EventLoop::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wakefd_.get(), &one, sizeof one);
}

void EventLoop::drain_posted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lk(mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) fn();
}

void EventLoop::run() {
  owner_ = std::this_thread::get_id();
  epoll_event events[64];
  for (;;) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stopping_) break;
    }
    int n = epoll_wait(epfd_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; ++i) {
      auto it = handlers_.find(events[i].data.fd);
      if (it == handlers_.end()) continue;  // removed by an earlier handler
      auto handler = it->second;            // keep alive while it runs
      (*handler)(events[i].events);
    }
  }
  drain_posted();  // run what was posted before stop, so waiters are released
}

Result<std::unique_ptr<Timer>> Timer::create(EventLoop& loop, std::function<void()> on_fire) {
  UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (fd.get() < 0) return errno_error("timerfd_create", errno);
  std::unique_ptr<Timer> t(new Timer(loop, std::move(fd), std::move(on_fire)));
  Timer* raw = t.get();
  auto r = loop.add(raw->fd_.get(), EPOLLIN, [raw](uint32_t) {
    uint64_t expirations;
    if (::read(raw->fd_.get(), &expirations, sizeof expirations) <= 0) return;  // disarmed meanwhile
    raw->deadline_ = 0;
    raw->cb_();
  });
  if (!r) return r.error();
  return t;
}

Timer::~Timer() { loop_.remove(fd_.get()); }

void Timer::arm_at(Nanos deadline) {
  if (deadline == 0) deadline = 1;  // 0 would disarm
  if (deadline == deadline_) return;
  deadline_ = deadline;
  itimerspec its{};
  its.it_value.tv_sec = static_cast<time_t>(deadline / 1000000000ull);
  its.it_value.tv_nsec = static_cast<long>(deadline % 1000000000ull);
  timerfd_settime(fd_.get(), TFD_TIMER_ABSTIME, &its, nullptr);
}

void Timer::disarm() {
  deadline_ = 0;
  itimerspec its{};
  timerfd_settime(fd_.get(), 0, &its, nullptr);
}

Result<std::unique_ptr<LoopThread>> LoopThread::start(std::string name) {
  auto loop = EventLoop::create();
  if (!loop) return loop.error();
  std::unique_ptr<LoopThread> lt(new LoopThread());
  lt->loop_ = std::move(loop.value());
  EventLoop* raw = lt->loop_.get();
  lt->thread_ = std::thread([raw, name = std::move(name)] {
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    raw->run();
  });
  return lt;
}

LoopThread::~LoopThread() {
  loop_->stop();
  if (thread_.joinable()) thread_.join();
}

void LoopThread::run_sync(const std::function<void()>& fn) {
  if (loop_->in_loop_thread()) {
    fn();
    return;
  }
  std::promise<void> done;
  auto fut = done.get_future();
  loop_->post([&] {
    fn();
    done.set_value();
  });
  fut.wait();
}

void EventLoop::abort_not_in_loop_thread() {
  std::fputs("rcp: a loop-thread-only method was called from another thread\n", stderr);
  std::abort();
}

}  // namespace rcp
