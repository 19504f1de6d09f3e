// TunDevice: an fd attached to an existing TUN interface (IFF_TUN, no packet
// info), possibly one living in another network namespace. The lab creates
// the interfaces (persistent, addressed, up); the emulator only attaches, so
// it can be restarted with other settings without touching the namespaces.
#pragma once

#include <string>

#include "base/result.h"
#include "net/event_loop.h"  // UniqueFd

namespace rcp::wanem {

class TunDevice {
 public:
  // `netns`: a name under /run/netns, an absolute path to a namespace file,
  // or empty for the caller's namespace. Must be called while the process is
  // single-threaded: it switches this thread's namespace and back.
  static Result<TunDevice> attach(const std::string& netns, const std::string& ifname);

  int fd() const { return fd_.get(); }
  const std::string& label() const { return label_; }

 private:
  UniqueFd fd_;
  std::string label_;  // "netns:ifname", for messages
};

}  // namespace rcp::wanem
