// Internal to the ssh layer: the libssh session and its lock, shared by an
// SshSession, its channels and its SFTP sessions (the connection lives while
// any of them does). Not for use outside cpp/ssh.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <memory>
#include <mutex>

#include "ssh/ssh_proxy.h"

namespace rcp::detail {

struct SshShared {
  std::mutex mu;  // libssh sessions are not thread-safe: every call holds this
  ssh_session session = nullptr;
  int fd = -1;
  long timeout_seconds = 10;  // the default bound of each blocking libssh wait
  bool disconnected = false;  // ssh_disconnect ran, which also freed every ssh_channel and sftp_session
  // The jump relay or ProxyCommand the session's socket leads to; ended
  // after the session (members go after the destructor's body).
  std::unique_ptr<ProxyTransport> proxy;
  // The session's libssh callbacks (key passphrases, ssh_auth.cpp): libssh
  // keeps a pointer to them for the session's life.
  ssh_callbacks_struct callbacks{};

  SshShared() { ssh_callbacks_init(&callbacks); }

  SshShared(const SshShared&) = delete;
  SshShared& operator=(const SshShared&) = delete;
  ~SshShared() {
    if (session == nullptr) return;
    if (!disconnected) ssh_disconnect(session);
    ssh_free(session);
  }
};

}  // namespace rcp::detail
