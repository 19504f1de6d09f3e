// The relay (`rcp --relay`, scp's -3): the source↔destination link carried
// through the master when no direct path exists. Each rcpd opens one data
// stream to the master on its control link (its outgoing half) and accepts
// one from it (its incoming half): TunnelStream makes that pair a
// ByteStream, and a StreamTransport over it carries the whole
// source↔destination Link (control, data streams, sealed hello) as it would
// over any byte stream. The master runs a TunnelSplice: two pumps copying
// each side's outgoing stream onto a stream it opens toward the other side,
// without parsing it. Every hop is flow-controlled by the control links'
// stream credit, so nothing along the way holds more than a few windows.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "link/byte_stream.h"
#include "link/link.h"

namespace rcp {

// A byte stream over two data streams of `link`: writes go to one this side
// opens, reads come from the first one the peer (the master) opens. Its end
// is always an error (Errc::closed, saying the relay ended), never a clean 0:
// the link over it ends with its own close frame, so a tunnel that ends
// before that means the other rcpd or its link to the master is gone.
class TunnelStream : public ByteStream {
 public:
  // Opens the outgoing stream now (the master waits for it); the incoming
  // one is accepted on the first read, waiting at most `accept_timeout`.
  static Result<std::unique_ptr<TunnelStream>> open(std::shared_ptr<Link> link, Nanos accept_timeout);
  TunnelStream(std::shared_ptr<Link> link, int64_t out, Nanos accept_timeout);
  // Ends the outgoing stream: the far side reads the end of the stream.
  ~TunnelStream() override;
  TunnelStream(const TunnelStream&) = delete;
  TunnelStream& operator=(const TunnelStream&) = delete;

  Result<size_t> read_some(std::span<uint8_t> out) override;
  Result<void> write_all(std::span<const uint8_t> data) override;
  void shutdown() override;

 private:
  std::shared_ptr<Link> link_;
  const int64_t out_;
  int64_t in_ = -1;     // reader thread only
  bool ended_ = false;  // reader thread only: the incoming stream ended
  const Nanos accept_timeout_;
  std::atomic<bool> shut_{false};
};

// The master's half: copies a's outgoing tunnel stream to b and b's to a.
// Each direction ends when its stream ends or either link fails; the stream
// it feeds is then ended too, so the rcpd behind it sees the end of its link.
class TunnelSplice {
 public:
  // `accept_timeout`: how long each side may take to open its stream.
  static std::unique_ptr<TunnelSplice> start(std::shared_ptr<Link> a, std::shared_ptr<Link> b, Nanos accept_timeout);
  TunnelSplice(std::shared_ptr<Link> a, std::shared_ptr<Link> b, Nanos accept_timeout);
  ~TunnelSplice();  // stop(), then joins the pumps
  TunnelSplice(const TunnelSplice&) = delete;
  TunnelSplice& operator=(const TunnelSplice&) = delete;

  // Any thread: both pumps stop within a slice (~0.1 s) and end their streams.
  void stop();
  // Waits until both directions ended; false on timeout.
  bool wait(Nanos timeout);
  // Bytes copied a→b (0) and b→a (1).
  uint64_t bytes(int direction) const { return bytes_[direction & 1].load(); }
  // The first failure of either direction (Errc::ok when both ended cleanly).
  Error error() const;

 private:
  void pump(Link& from, Link& to, int direction);
  void fail(const Error& e);

  std::shared_ptr<Link> a_, b_;
  const Nanos accept_timeout_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> bytes_[2] = {0, 0};
  mutable std::mutex mu_;
  std::condition_variable done_cv_;
  int running_ = 2;
  Error error_;
  std::thread pumps_[2];
};

}  // namespace rcp
