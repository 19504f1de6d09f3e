// LinkConfig: an endpoint's configuration plus the session above it (the
// key sealing control frames, the role announced in the hello), and the
// application error codes a Link closes connections and resets streams with.
#pragma once

#include <cstdint>
#include <string>

#include "base/crypto.h"
#include "quic/quic_endpoint.h"

namespace rcp {

struct LinkConfig : EndpointConfig {
  SessionKey session_key{};
  std::string role;  // announced in the hello: "master", "source", ...
};

// Application error codes carried in CONNECTION_CLOSE / RESET_STREAM.
enum class AppError : uint64_t {
  none = 0,
  protocol = 1,        // malformed frame or message
  auth = 2,            // bad HMAC
  unknown_stream = 3,  // unknown stream kind
  internal = 4,
  closed_by_app = 5,
  version = 6,  // protocol version mismatch
};

// What a peer's application error code means to the caller.
inline Errc classify_app_error(uint64_t code) {
  if (code == static_cast<uint64_t>(AppError::closed_by_app)) return Errc::closed;
  if (code == static_cast<uint64_t>(AppError::auth)) return Errc::auth;
  return Errc::protocol;
}

}  // namespace rcp
