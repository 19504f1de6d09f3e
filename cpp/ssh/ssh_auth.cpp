#include "ssh/ssh_auth.h"

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>  // also explicit_bzero (glibc)
#include <memory>
#include <optional>
#include <vector>

#include "ssh/ssh_shared.h"

namespace rcp {

namespace {

constexpr int kPassphraseTries = 3;   // as ssh: a mistyped passphrase is asked again
constexpr int kPasswordTries = 3;     // NumberOfPasswordPrompts' default
constexpr int kMaxKbdintRounds = 16;  // a server that never stops asking is refused

struct KeyFree {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
using UniqueKey = std::unique_ptr<ssh_key_struct, KeyFree>;

// A secret in a std::string, wiped when it goes.
class Secret {
 public:
  explicit Secret(std::optional<std::string> s) : s_(std::move(s)) {}
  ~Secret() {
    if (s_) explicit_bzero(s_->data(), s_->size());
  }
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  bool given() const { return s_.has_value(); }
  const char* c_str() const { return s_->c_str(); }
  size_t size() const { return s_->size(); }

 private:
  std::optional<std::string> s_;
};

// libssh asks for a key's passphrase through this callback.
struct PassphraseAsk {
  const SshOptions::Prompt* prompt;  // empty: nobody to ask
  std::string what;                  // "key '/path'"
  bool asked = false;
  bool declined = false;
};

int ask_passphrase(const char* /*libssh's prompt*/, char* buf, size_t len, int /*echo*/, int /*verify*/,
                   void* userdata) {
  auto* ask = static_cast<PassphraseAsk*>(userdata);
  if (ask == nullptr) return -1;
  ask->asked = true;
  if (!*ask->prompt || ask->declined) return -1;
  Secret answer((*ask->prompt)("Enter passphrase for " + ask->what + ": ", false));
  if (!answer.given()) {
    ask->declined = true;
    return -1;
  }
  if (answer.size() + 1 > len) return -1;
  std::memcpy(buf, answer.c_str(), answer.size() + 1);
  return 0;
}

std::string auth_methods(int mask) {
  std::string out;
  auto add = [&](int bit, const char* name) {
    if (mask & bit) out += (out.empty() ? "" : ", ") + std::string(name);
  };
  add(SSH_AUTH_METHOD_PUBLICKEY, "publickey");
  add(SSH_AUTH_METHOD_PASSWORD, "password");
  add(SSH_AUTH_METHOD_INTERACTIVE, "keyboard-interactive");
  add(SSH_AUTH_METHOD_HOSTBASED, "hostbased");
  add(SSH_AUTH_METHOD_GSSAPI_MIC, "gssapi-with-mic");
  return out.empty() ? "none" : out;
}

bool done(int rc) { return rc == SSH_AUTH_SUCCESS || rc == SSH_AUTH_PARTIAL || rc == SSH_AUTH_ERROR; }

constexpr const char* kNoTerminal = "no terminal to ask on";

// One explicit key file, its passphrase asked for when it has one.
int try_identity_file(ssh_session s, const std::string& path, const SshOptions::Prompt& prompt,
                      std::vector<std::string>& tried) {
  PassphraseAsk ask{&prompt, "key '" + path + "'"};
  ssh_key raw = nullptr;
  int rc = SSH_ERROR;
  for (int attempt = 0; attempt < kPassphraseTries; ++attempt) {
    ask.asked = false;
    rc = ssh_pki_import_privkey_file(path.c_str(), nullptr, ask_passphrase, &ask, &raw);
    if (rc == SSH_OK || !ask.asked || !prompt || ask.declined) break;
  }
  if (rc != SSH_OK) {
    const int err = ::access(path.c_str(), R_OK) == 0 ? 0 : errno;
    if (err != 0)
      tried.push_back(path + " (" + std::strerror(err) + ")");
    else if (ask.asked && !prompt)
      tried.push_back(path + " (passphrase-protected, and " + kNoTerminal +
                      " for its passphrase: add it to ssh-agent, or give the API a prompt callback)");
    else if (ask.declined)
      tried.push_back(path + " (no passphrase given)");
    else if (ask.asked)
      tried.push_back(path + " (wrong passphrase)");
    else
      tried.push_back(path + " (not loadable: unsupported key format)");
    return SSH_AUTH_DENIED;
  }
  UniqueKey key(raw);
  tried.push_back(path);
  return ssh_userauth_publickey(s, nullptr, key.get());
}

int try_password(ssh_session s, const SshOptions::Prompt& prompt, const std::string& who,
                 std::vector<std::string>& tried) {
  if (!prompt) {
    tried.push_back(std::string("password (") + kNoTerminal + ")");
    return SSH_AUTH_DENIED;
  }
  tried.emplace_back("password");
  int rc = SSH_AUTH_DENIED;
  for (int i = 0; i < kPasswordTries && !done(rc); ++i) {
    Secret password(prompt(who + "'s password: ", false));
    if (!password.given()) break;
    rc = ssh_userauth_password(s, nullptr, password.c_str());
  }
  return rc;
}

int try_kbd_interactive(ssh_session s, const SshOptions::Prompt& prompt, std::vector<std::string>& tried) {
  if (!prompt) {
    tried.push_back(std::string("keyboard-interactive (") + kNoTerminal + ")");
    return SSH_AUTH_DENIED;
  }
  tried.emplace_back("keyboard-interactive");
  int rc = ssh_userauth_kbdint(s, nullptr, nullptr);
  for (int round = 0; rc == SSH_AUTH_INFO && round < kMaxKbdintRounds; ++round) {
    const std::string instruction = ssh_userauth_kbdint_getinstruction(s);
    const int n = ssh_userauth_kbdint_getnprompts(s);
    for (int i = 0; i < n; ++i) {
      char echo = 0;
      const char* question = ssh_userauth_kbdint_getprompt(s, static_cast<unsigned>(i), &echo);
      std::string text;
      if (i == 0 && !instruction.empty()) {
        text = instruction;
        text += '\n';
      }
      text += question != nullptr ? question : "";
      Secret answer(prompt(text, echo != 0));
      if (!answer.given()) return SSH_AUTH_DENIED;
      if (ssh_userauth_kbdint_setanswer(s, static_cast<unsigned>(i), answer.c_str()) < 0) return SSH_AUTH_ERROR;
    }
    rc = ssh_userauth_kbdint(s, nullptr, nullptr);
  }
  return rc == SSH_AUTH_INFO ? SSH_AUTH_DENIED : rc;
}

}  // namespace

Result<void> authenticate(detail::SshShared& shared, const SshOptions& o, const AuthSettings& settings,
                          const std::string& who) {
  ssh_session s = shared.session;
  const SshOptions::Prompt no_prompt;
  const SshOptions::Prompt& prompt = settings.batch ? no_prompt : o.prompt;
  int rc = ssh_userauth_none(s, nullptr);  // also learns which methods the server accepts
  if (rc == SSH_AUTH_SUCCESS) return {};
  if (rc == SSH_AUTH_ERROR)
    return make_error(Errc::ssh_auth, "ssh: authentication of " + who + " failed: " + ssh_get_error(s));
  const int methods = ssh_userauth_list(s, nullptr);
  std::vector<std::string> tried;

  const char* agent = std::getenv("SSH_AUTH_SOCK");
  if (agent != nullptr && *agent != '\0') {
    tried.emplace_back("ssh-agent");
    rc = ssh_userauth_agent(s, nullptr);
  }
  // Explicit keys before libssh's defaults: servers cap the attempts (MaxAuthTries).
  for (const auto& path : o.identity_files) {
    if (done(rc)) break;
    rc = try_identity_file(s, path, prompt, tried);
  }
  if (!done(rc)) {
    tried.emplace_back("default keys (~/.ssh/id_*, IdentityFile)");
    // libssh asks for their passphrases through the session's callbacks,
    // which live as long as the session; the question only during this call.
    PassphraseAsk ask{&prompt, "a default key (~/.ssh/id_*, IdentityFile)"};
    shared.callbacks.userdata = &ask;
    shared.callbacks.auth_function = ask_passphrase;
    ssh_set_callbacks(s, &shared.callbacks);
    rc = ssh_userauth_publickey_auto(s, nullptr, nullptr);
    shared.callbacks.userdata = nullptr;
    if (ask.asked && !prompt) tried.back() += std::string(" (passphrase-protected, and ") + kNoTerminal + ")";
  }
  if (!done(rc) && settings.password && (methods & SSH_AUTH_METHOD_PASSWORD) != 0)
    rc = try_password(s, prompt, who, tried);
  if (!done(rc) && settings.kbd_interactive && (methods & SSH_AUTH_METHOD_INTERACTIVE) != 0)
    rc = try_kbd_interactive(s, prompt, tried);

  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  if (o.debug)
    o.debug("ssh: authentication of " + who + ": tried " + (list.empty() ? "none" : list) + ": " +
            (rc == SSH_AUTH_SUCCESS ? "accepted" : "refused"));
  switch (rc) {
    case SSH_AUTH_SUCCESS: return {};
    case SSH_AUTH_PARTIAL:
      return make_error(Errc::ssh_auth, "ssh: " + who + " requires a further authentication step (server accepts: " +
                                            auth_methods(ssh_userauth_list(s, nullptr)) +
                                            "), which rcp does not support");
    case SSH_AUTH_ERROR:
      return make_error(Errc::ssh_auth,
                        "ssh: authentication of " + who + " failed (tried " + list + "): " + ssh_get_error(s));
    default:
      return make_error(Errc::ssh_auth, "ssh: permission denied for " + who + " (tried " + list +
                                            "; server accepts: " + auth_methods(methods) + ")");
  }
}

}  // namespace rcp
