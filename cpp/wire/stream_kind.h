// The first byte of every QUIC stream names its kind; anything else is refused.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace rcp {

enum class StreamKind : uint8_t {
  control = 1,  // HMAC-sealed control frames
  data = 2,     // bulk bytes
  log = 3,      // log and progress frames
};

inline Result<StreamKind> parse_stream_kind(uint8_t b) {
  switch (b) {
    case 1: return StreamKind::control;
    case 2: return StreamKind::data;
    case 3: return StreamKind::log;
    default: return make_error(Errc::protocol, "unknown stream kind " + std::to_string(b));
  }
}

inline const char* stream_kind_name(StreamKind k) {
  switch (k) {
    case StreamKind::control: return "control";
    case StreamKind::data: return "data";
    case StreamKind::log: return "log";
  }
  return "?";
}

}  // namespace rcp
