// ByteStream: a reliable, ordered byte stream both ways — what a
// StreamTransport runs a Link over. FdStream is a pair of file descriptors
// (rcpd's stdin/stdout, a local child's pipes, a socketpair in tests); the
// Python module adds one over an SSH channel.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <span>

#include "base/result.h"
#include "base/unique_fd.h"

namespace rcp {

// read_some() is called from one thread, write_all() from another.
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Blocks until bytes arrive: how many; 0 at the end of the stream.
  virtual Result<size_t> read_some(std::span<uint8_t> out) = 0;
  // Blocks until all of `data` is written.
  virtual Result<void> write_all(std::span<const uint8_t> data) = 0;
  // Any thread: a blocked or later read_some()/write_all() returns Errc::closed.
  virtual void shutdown() = 0;
};

class FdStream : public ByteStream {
 public:
  // Takes ownership of both descriptors (they may be the same socket).
  FdStream(UniqueFd in, UniqueFd out);
  static Result<std::unique_ptr<FdStream>> create(UniqueFd in, UniqueFd out);

  Result<size_t> read_some(std::span<uint8_t> out) override;
  Result<void> write_all(std::span<const uint8_t> data) override;
  void shutdown() override;

 private:
  // Waits until fd is ready for `events` or shutdown() was called.
  Result<void> wait(int fd, short events);
  UniqueFd in_, out_;
  UniqueFd wake_;  // eventfd: shutdown() makes it readable
  std::atomic<bool> shut_{false};
};

}  // namespace rcp
