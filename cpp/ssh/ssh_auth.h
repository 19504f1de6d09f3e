// Client authentication of an SshSession, after its host key was checked:
// ssh-agent, explicit keys, libssh's default keys, then password and
// keyboard-interactive. Whatever asks the user (a key's passphrase, a
// password, a server's questions) goes through SshOptions::prompt; without
// one (no terminal, BatchMode) those are skipped and the error says why.
#pragma once

#include <string>

#include "base/result.h"
#include "ssh/ssh_session.h"

namespace rcp {

namespace detail {
struct SshShared;
}

// What the ssh config allows for one host (OpenSSH's defaults: all yes, no batch).
struct AuthSettings {
  bool password = true;         // PasswordAuthentication
  bool kbd_interactive = true;  // KbdInteractiveAuthentication
  bool batch = false;           // BatchMode: never ask anything
};

// `who`: "user@host" for messages. Errc::ssh_auth on failure.
Result<void> authenticate(detail::SshShared& shared, const SshOptions& o, const AuthSettings& settings,
                          const std::string& who);

}  // namespace rcp
