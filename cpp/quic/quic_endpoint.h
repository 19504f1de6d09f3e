// QuicEndpoint: a UDP socket and the QUIC connections on it, driven by one
// loop thread: it owns the socket, each connection's timer and the clock
// reads. A server endpoint accepts handshakes from pinned peers only; a
// client endpoint carries one connection. Each connection gets a
// ConnectionHandler from the factory it is given (the link layer's makes
// Links); applications hold handles to those handlers.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/crypto.h"
#include "base/result.h"
#include "net/event_loop.h"
#include "net/udp_socket.h"
#include "quic/address_validation.h"
#include "quic/connection_handler.h"
#include "quic/quic_config.h"
#include "quic/quic_connection.h"
#include "quic/tls_session.h"

namespace rcp {

struct EndpointConfig {
  QuicConfig quic;
  TlsConfig tls;  // role decides server or client
  // Server slots. Only authenticated connections (pinned both ways,
  // handshake complete) count against max_connections; handshakes in
  // progress have their own bound, and a new address-validated handshake
  // evicts the oldest unfinished one, so strangers that start handshakes and
  // go silent can never lock the pinned peer out.
  size_t max_connections = 16;
  size_t max_handshakes = 8;
  // Stateless Retries: each answers a token-less Initial of at least 1200
  // bytes with ~200, but a flood must not make us reflect them at one
  // address (token bucket per client IP) nor cost much CPU (in total).
  double retries_per_second = 100;  // per client IP
  double retry_burst = 20;
  double retries_total_per_second = 10000;
};

// What a server endpoint did with strangers' Initials (for tests and logs).
struct ServerCounters {
  uint64_t retries_sent = 0;
  uint64_t retries_suppressed = 0;      // over the rate limit: dropped without an answer
  uint64_t invalid_tokens = 0;          // forged, expired, or from another address
  uint64_t handshakes_started = 0;      // connection state created
  uint64_t handshakes_unvalidated = 0;  // of those, taken without a Retry (server idle)
  uint64_t handshakes_evicted = 0;
  uint64_t refused_no_slot = 0;  // authenticated, but max_connections were in use
};

class QuicEndpoint : public std::enable_shared_from_this<QuicEndpoint> {
 public:
  using Handle = std::shared_ptr<ConnectionHandler>;
  static Result<std::shared_ptr<QuicEndpoint>> listen(const EndpointConfig& config, const Address& bind_addr,
                                                      ConnectionHandlerFactory factory);
  // A client endpoint and its connection, handshake started: the handler
  // learns how it goes. The handle keeps the endpoint alive.
  static Result<Handle> connect(const EndpointConfig& config, const Address& remote, ConnectionHandlerFactory factory);
  ~QuicEndpoint();

  // Next peer whose session is established (ConnectionPort::session_ready).
  Result<Handle> accept(Nanos timeout);
  const Address& local_address() const { return socket_.local_address(); }
  // Handshakes refused so far (pin mismatch, no session...), and the last reason.
  uint64_t rejected() const;
  std::string last_rejection() const;
  ServerCounters counters() const;
  // Accept one more peer fingerprint (thread-safe).
  void add_pin(const Fingerprint& fp) { tls_->add_pin(fp); }
  // Stop accepting new handshakes (a source serves exactly one peer).
  void stop_accepting();

  // Used by ConnectionPort.
  EventLoop& loop() { return *loop_; }
  QuicConnection* connection(uint64_t handle);  // loop thread
  void schedule_flush(uint64_t handle);         // loop thread
  void session_ready(uint64_t handle);          // loop thread

 private:
  // The socket as the connections' DatagramSink.
  class SocketSink : public DatagramSink {
   public:
    explicit SocketSink(UdpSocket& socket) : socket_(socket) {}
    Result<SendStatus> send_datagrams(const Address& to, std::span<const uint8_t> data, size_t segment) override {
      return socket_.send(to, data, segment);
    }
    bool gso_enabled() const override { return socket_.gso_enabled(); }

   private:
    UdpSocket& socket_;
  };

  QuicEndpoint(const EndpointConfig& config, ConnectionHandlerFactory factory)
      : config_(config), factory_(std::move(factory)) {}
  Result<void> start(const Address& bind_addr);
  void on_readable();
  void on_writable();
  void dispatch(std::span<const uint8_t> pkt, const Address& from);
  void accept_initial(std::span<const uint8_t> pkt, const Address& from);
  void send_retry(const ngtcp2_pkt_hd& hd, const Address& from);
  bool make_room_for_handshake(const Address& from);
  size_t handshakes_in_progress() const;
  bool admit_authenticated(uint64_t handle);
  Result<uint64_t> add_connection(const Address& remote, const ngtcp2_pkt_hd* hd, const ngtcp2_cid* odcid);
  // An application handle: shares the handler and keeps this endpoint (and
  // so its loop thread) alive; released on the application's thread.
  Handle handle_for(std::shared_ptr<ConnectionHandler> handler);
  void remove_connection(uint64_t handle);
  void rejected_peer(const std::string& why);
  void on_timer(uint64_t handle);
  void rearm_timer(uint64_t handle);
  void flush_scheduled();
  void update_write_interest();
  void shutdown_on_loop();

  struct Entry {
    std::shared_ptr<ConnectionHandler> handler;  // declared first: outlives the connection
    std::unique_ptr<QuicConnection> conn;
    std::unique_ptr<Timer> timer;  // at conn->expiry()
    bool session_ready = false;
    bool address_validated = false;  // came back with our Retry token
  };
  void evict(Entry& victim);

  EndpointConfig config_;
  ConnectionHandlerFactory factory_;
  std::unique_ptr<LoopThread> thread_;
  EventLoop* loop_ = nullptr;  // thread_'s, still valid while thread_ is joined
  UdpSocket socket_;
  SocketSink sink_{socket_};
  std::shared_ptr<TlsContext> tls_;
  bool server_ = false;
  std::optional<AddressValidator> validator_;  // servers only
  // loop-thread state
  RetryLimiter retry_limiter_{0, 0, 0};
  std::map<uint64_t, Entry> conns_;
  std::map<std::string, uint64_t> by_cid_;  // every CID we issued -> handle
  uint64_t next_handle_ = 1;
  std::vector<uint64_t> to_flush_;
  bool flush_posted_ = false;
  bool want_write_ = false;
  std::vector<uint8_t> rxbuf_;
  // shared with application threads
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<ConnectionHandler>> ready_;
  bool accepting_ = true;
  uint64_t rejected_ = 0;
  ServerCounters counters_;
  std::string last_rejection_;
};

}  // namespace rcp
