// Result<T>: the core's error channel. No exceptions cross the core; the
// bindings turn an Error into a Python exception.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace rcp {

enum class Errc : int {
  ok = 0,
  invalid_argument,
  io,            // a syscall failed
  tls,           // TLS library failure
  quic,          // ngtcp2 failure or peer protocol violation
  pin_mismatch,  // peer certificate does not match the pinned fingerprint
  timeout,
  closed,        // connection or stream closed
  protocol,      // malformed frame or message from the peer
  auth,          // HMAC check failed
  too_large,     // a length over its limit
  ssh_connect,   // SSH connection or session failure
  ssh_host_key,  // SSH host key unknown or changed
  ssh_auth,      // SSH authentication failed
};

const char* errc_name(Errc c);

struct Error {
  Errc code = Errc::ok;
  std::string message;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error err) : v_(std::move(err)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  T& operator*() { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error err) : err_(std::move(err)) {}  // NOLINT
  bool ok() const { return err_.code == Errc::ok; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return err_; }

 private:
  Error err_;
};

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

// errno-based error with the syscall named: "bind: Address already in use".
Error errno_error(const std::string& what, int err);

}  // namespace rcp
