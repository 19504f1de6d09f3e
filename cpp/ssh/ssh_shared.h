// Internal to the ssh layer: the libssh session and its lock, shared by an
// SshSession, its channels and its SFTP sessions (the connection lives while
// any of them does). Not for use outside cpp/ssh.
#pragma once

#include <libssh/libssh.h>

#include <mutex>

namespace rcp::detail {

struct SshShared {
  std::mutex mu;  // libssh sessions are not thread-safe: every call holds this
  ssh_session session = nullptr;
  int fd = -1;
  long timeout_seconds = 10;  // the default bound of each blocking libssh wait
  bool disconnected = false;  // ssh_disconnect ran, which also freed every ssh_channel and sftp_session

  SshShared() = default;
  SshShared(const SshShared&) = delete;
  SshShared& operator=(const SshShared&) = delete;
  ~SshShared() {
    if (session == nullptr) return;
    if (!disconnected) ssh_disconnect(session);
    ssh_free(session);
  }
};

}  // namespace rcp::detail
