#include "base/result.h"

#include <cstring>

namespace rcp {

const char* errc_name(Errc c) {
  switch (c) {
    case Errc::ok: return "ok";
    case Errc::invalid_argument: return "invalid argument";
    case Errc::io: return "I/O error";
    case Errc::tls: return "TLS error";
    case Errc::quic: return "QUIC error";
    case Errc::pin_mismatch: return "certificate pin mismatch";
    case Errc::timeout: return "timeout";
    case Errc::closed: return "closed";
    case Errc::protocol: return "protocol error";
    case Errc::auth: return "authentication failure";
    case Errc::too_large: return "too large";
    case Errc::ssh_connect: return "SSH connection failure";
    case Errc::ssh_host_key: return "SSH host key verification failed";
    case Errc::ssh_auth: return "SSH authentication failure";
  }
  return "unknown";
}

Error errno_error(const std::string& what, int err) { return Error{Errc::io, what + ": " + std::strerror(err)}; }

}  // namespace rcp
