#include "wanem/tun_device.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rcp::wanem {
namespace {

Result<UniqueFd> open_tun(const std::string& ifname) {
  if (ifname.size() >= IFNAMSIZ) return make_error(Errc::invalid_argument, "interface name too long: " + ifname);
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) return errno_error("open /dev/net/tun", errno);
  ifreq req{};
  req.ifr_flags = IFF_TUN | IFF_NO_PI;
  std::memcpy(req.ifr_name, ifname.c_str(), ifname.size());
  if (::ioctl(fd.get(), TUNSETIFF, &req) < 0) return errno_error("TUNSETIFF " + ifname, errno);
  return fd;
}

}  // namespace

Result<TunDevice> TunDevice::attach(const std::string& netns, const std::string& ifname) {
  TunDevice dev;
  dev.label_ = (netns.empty() ? std::string("-") : netns) + ":" + ifname;
  if (netns.empty()) {
    auto fd = open_tun(ifname);
    if (!fd) return fd.error();
    dev.fd_ = std::move(*fd);
    return dev;
  }
  const std::string path = netns.front() == '/' ? netns : "/run/netns/" + netns;
  UniqueFd home(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  if (home.get() < 0) return errno_error("open /proc/self/ns/net", errno);
  UniqueFd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (target.get() < 0) return errno_error("open " + path, errno);
  if (::setns(target.get(), CLONE_NEWNET) < 0) return errno_error("setns " + path, errno);
  // The TUN fd stays bound to the device in `netns` after we switch back.
  auto fd = open_tun(ifname);
  if (::setns(home.get(), CLONE_NEWNET) < 0) return errno_error("setns back to our namespace", errno);
  if (!fd) return make_error(fd.error().code, fd.error().message + " in " + path);
  dev.fd_ = std::move(*fd);
  return dev;
}

}  // namespace rcp::wanem
