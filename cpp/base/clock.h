// Time in the core: CLOCK_MONOTONIC nanoseconds, and the units to write it.
#pragma once

#include <cstdint>

namespace rcp {

using Nanos = uint64_t;
constexpr Nanos kMillis = 1000000ull;
constexpr Nanos kSeconds = 1000000000ull;

Nanos monotonic_now();

}  // namespace rcp
