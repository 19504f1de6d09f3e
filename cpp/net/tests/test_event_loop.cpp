#include <gtest/gtest.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>

#include "net/event_loop.h"

namespace rcp {
namespace {

TEST(EventLoop, PostedWorkRunsOnLoopThread) {
  auto lt = LoopThread::start("test").value();
  std::atomic<int> n{0};
  std::thread::id loop_id;
  for (int i = 0; i < 100; ++i) lt->loop().post([&] { ++n; });
  lt->run_sync([&] { loop_id = std::this_thread::get_id(); });
  EXPECT_EQ(n.load(), 100);
  EXPECT_NE(loop_id, std::this_thread::get_id());
}

TEST(EventLoop, TimerFiresAtDeadlineAndRearms) {
  auto lt = LoopThread::start("timer").value();
  std::unique_ptr<Timer> timer;
  std::atomic<int> fired{0};
  Nanos start = monotonic_now(), at = 0;
  lt->run_sync([&] {
    timer = Timer::create(lt->loop(), [&] {
              at = monotonic_now();
              ++fired;
            }).value();
    timer->arm_at(start + 20 * 1000000ull);
  });
  for (int i = 0; i < 200 && fired.load() == 0; ++i) usleep(5000);
  ASSERT_EQ(fired.load(), 1);
  EXPECT_GE(at, start + 20 * 1000000ull);
  lt->run_sync([&] {
    timer->arm_at(monotonic_now() + 10 * 1000000000ull);
    timer->disarm();
  });
  usleep(30000);
  EXPECT_EQ(fired.load(), 1);  // disarmed timers stay silent
  lt->run_sync([&] { timer.reset(); });
}

TEST(EventLoop, FdHandlerSeesReadiness) {
  auto lt = LoopThread::start("fd").value();
  UniqueFd efd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  std::atomic<int> seen{0};
  lt->run_sync([&] {
    ASSERT_TRUE(lt->loop()
                    .add(efd.get(), EPOLLIN,
                         [&](uint32_t) {
                           uint64_t v;
                           if (read(efd.get(), &v, sizeof v) == sizeof v) seen += static_cast<int>(v);
                         })
                    .ok());
  });
  uint64_t three = 3;
  ASSERT_EQ(write(efd.get(), &three, sizeof three), 8);
  for (int i = 0; i < 200 && seen.load() == 0; ++i) usleep(5000);
  EXPECT_EQ(seen.load(), 3);
  lt->run_sync([&] { lt->loop().remove(efd.get()); });
}

TEST(EventLoop, LoopOnlyCallsFromAnotherThreadAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a loop thread is running
  auto lt = LoopThread::start("assert").value();
  bool ran = false;
  lt->run_sync([&] {
    lt->loop().assert_in_loop_thread();  // fine there
    ran = true;
  });
  EXPECT_TRUE(ran);
  EXPECT_DEATH(lt->loop().assert_in_loop_thread(), "loop-thread-only");
}

}  // namespace
}  // namespace rcp
