// ConnectionHandler: what a QuicEndpoint knows of the application on one
// connection. The endpoint is given a factory; the link layer's creates the
// adapter that drives a Link, so quic/ never sees the session above it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "base/result.h"

namespace rcp {

class QuicConnection;
class QuicEndpoint;

// Loop thread only, except where noted.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  virtual void on_handshake_done() = 0;  // pins verified both ways
  virtual void on_stream_data(int64_t id, std::span<const uint8_t> data, bool fin) = 0;
  virtual void on_stream_acked(int64_t id, uint64_t freed) = 0;
  virtual void on_stream_closed(int64_t id, uint64_t app_error) = 0;
  virtual void on_streams_available() = 0;       // the peer raised our stream limit
  virtual void on_closed(const Error& err) = 0;  // terminal
  virtual void wake_readers() {}                 // end of a batch of datagrams
  // The application's error codes: the one the endpoint closes with
  // (shutdown, eviction), and what a code in a peer's CONNECTION_CLOSE means.
  virtual uint64_t close_code() const = 0;
  virtual Errc classify_app_error(uint64_t code) const = 0;
};

// A handler's way back to its connection, which the endpoint owns and may
// remove at any time: it is looked up by handle, never held.
class ConnectionPort {
 public:
  ConnectionPort(QuicEndpoint* endpoint, uint64_t handle) : endpoint_(endpoint), handle_(handle) {}
  // Any thread: runs fn on the loop thread with the connection, or nullptr
  // once it is gone; then flushes what fn queued.
  void post(std::function<void(QuicConnection*)> fn) const;
  // Loop thread: the connection, nullptr once removed.
  QuicConnection* connection() const;
  // Loop thread: the session above QUIC is established; a server endpoint
  // now hands this connection's handler to accept().
  void session_ready() const;

 private:
  QuicEndpoint* endpoint_;
  uint64_t handle_;
};

using ConnectionHandlerFactory = std::function<std::shared_ptr<ConnectionHandler>(ConnectionPort port)>;

}  // namespace rcp
