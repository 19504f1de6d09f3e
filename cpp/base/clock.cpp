#include "base/clock.h"

#include <ctime>

namespace rcp {

Nanos monotonic_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Nanos>(ts.tv_sec) * kSeconds + static_cast<Nanos>(ts.tv_nsec);
}

}  // namespace rcp
