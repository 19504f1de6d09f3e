#include <pybind11/stl.h>

#include <sys/socket.h>

#include <cmath>
#include <exception>

#include "bindings/bindings.h"
#include "ssh/sftp_session.h"
#include "ssh/shell_quote.h"
#include "ssh/ssh_session.h"

namespace rcp::py_bindings {

namespace {

Nanos to_nanos(double seconds) {
  if (!(seconds >= 0)) throw py::value_error("timeout must be >= 0 seconds");
  return static_cast<Nanos>(std::min(seconds, 1e9) * 1e9);
}

// Remote output is not guaranteed UTF-8; never fail on it.
py::str decode(const std::string& s) {
  return py::reinterpret_steal<py::str>(PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace"));
}

SshOptions make_options(const std::string& host, std::optional<int> port, const std::optional<std::string>& user,
                        const std::optional<std::string>& config_file, const std::vector<std::string>& identity_files,
                        const std::optional<std::string>& known_hosts_file, bool accept_new, double timeout) {
  SshOptions o;
  o.host = host;
  if (port && *port != 0) {  // None or 0: from the config, else 22
    if (*port < 1 || *port > 65535) throw py::value_error("port must be 1..65535");
    o.port = static_cast<uint16_t>(*port);
  }
  o.user = user.value_or("");
  o.config_file = config_file.value_or("");
  o.identity_files = identity_files;
  o.known_hosts_file = known_hosts_file.value_or("");
  o.accept_new_host_key = accept_new;
  if (!(timeout > 0)) throw py::value_error("connect_timeout must be > 0 seconds");
  o.connect_timeout_seconds = static_cast<int>(std::ceil(std::min(timeout, 86400.0)));
  return o;
}

// The Python callbacks of one connect. They run on the connecting thread with
// the GIL released, so each takes it; an exception they raise (say
// KeyboardInterrupt at the prompt) must not cross the C++ core: it is kept and
// raised once connect has returned.
struct Callbacks {
  std::optional<py::function> warn, confirm, prompt, debug;
  std::exception_ptr raised;

  void install(SshOptions& o) {
    if (debug)
      o.debug = [this](const std::string& text) {
        py::gil_scoped_acquire gil;
        try {
          (*debug)(decode(text));
        } catch (...) {
          if (!raised) raised = std::current_exception();
        }
      };
    if (warn)
      o.warn = [this](const std::string& text) {
        py::gil_scoped_acquire gil;
        try {
          (*warn)(decode(text));
        } catch (...) {
          if (!raised) raised = std::current_exception();
        }
      };
    if (confirm)
      o.confirm = [this](const std::string& question) {
        py::gil_scoped_acquire gil;
        try {
          return py::bool_((*confirm)(decode(question))).cast<bool>();
        } catch (...) {
          if (!raised) raised = std::current_exception();
          return false;
        }
      };
    if (prompt)
      o.prompt = [this](const std::string& question, bool echo) -> std::optional<std::string> {
        py::gil_scoped_acquire gil;
        try {
          py::object answer = (*prompt)(decode(question), echo);
          if (answer.is_none()) return std::nullopt;
          return answer.cast<std::string>();
        } catch (...) {
          if (!raised) raised = std::current_exception();
          return std::nullopt;
        }
      };
  }
};

const char* type_name(SftpType t) {
  switch (t) {
    case SftpType::regular: return "file";
    case SftpType::directory: return "directory";
    case SftpType::symlink: return "symlink";
    case SftpType::other: break;
  }
  return "other";
}

void init_sftp(py::module_& m) {
  py::class_<SftpAttributes>(m, "SftpAttributes", "What SFTP lstat tells of a path (a symlink is not followed)")
      .def_property_readonly(
          "type", [](const SftpAttributes& a) { return type_name(a.type); },
          "'file', 'directory', 'symlink' or 'other'")
      .def_readonly("uid", &SftpAttributes::uid)
      .def_readonly("gid", &SftpAttributes::gid)
      .def_readonly("mode", &SftpAttributes::mode, "permission bits (0o7777)")
      .def_readonly("size", &SftpAttributes::size);

  py::class_<SftpFile>(m, "SftpFile", "A remote file created by SftpSession.create, written in order")
      .def(
          "write",
          [](SftpFile& f, const py::buffer& data) {
            py::buffer_info info = data.request();
            std::span<const uint8_t> s(static_cast<const uint8_t*>(info.ptr),
                                       static_cast<size_t>(info.size * info.itemsize));
            py::gil_scoped_release nogil;  // `data` stays referenced by the caller during the call
            unwrap(f.write(s));
          },
          py::arg("data"), "Write all of `data` at the end of what was written")
      .def(
          "close", [](SftpFile& f) { unwrap(f.close()); }, py::call_guard<py::gil_scoped_release>(),
          "Close, reporting a failure to close; idempotent");

  py::class_<SftpSession>(m, "SftpSession", "SFTP over an SshSession: only what deploying rcpd needs")
      .def(
          "lstat", [](SftpSession& s, const std::string& path) { return unwrap(s.lstat(path)); }, py::arg("path"),
          py::call_guard<py::gil_scoped_release>(), "The path's own attributes, or None when it does not exist")
      .def(
          "mkdir", [](SftpSession& s, const std::string& path, uint32_t mode) { unwrap(s.mkdir(path, mode)); },
          py::arg("path"), py::arg("mode"), py::call_guard<py::gil_scoped_release>())
      .def(
          "create", [](SftpSession& s, const std::string& path, uint32_t mode) { return unwrap(s.create(path, mode)); },
          py::arg("path"), py::arg("mode"), py::call_guard<py::gil_scoped_release>(),
          "Create a file for writing with `mode`; fails if anything exists at `path` (O_EXCL)")
      .def(
          "unlink", [](SftpSession& s, const std::string& path) { unwrap(s.unlink(path)); }, py::arg("path"),
          py::call_guard<py::gil_scoped_release>());
}

}  // namespace

void init_ssh(py::module_& m) {
  init_sftp(m);
  // Shared: an rcpd's control link (link_over_ssh) reads and writes the channel too.
  py::class_<SshChannel, std::shared_ptr<SshChannel>>(
      m, "SshChannel", "A remote command started by SshSession.exec (stdin, stdout, stderr)")
      .def(
          "write",
          [](SshChannel& c, const py::buffer& data, double timeout) {
            py::buffer_info info = data.request();
            std::span<const uint8_t> s(static_cast<const uint8_t*>(info.ptr),
                                       static_cast<size_t>(info.size * info.itemsize));
            py::gil_scoped_release nogil;  // `data` stays referenced by the caller during the call
            unwrap(c.write_stdin(s, to_nanos(timeout)));
          },
          py::arg("data"), py::arg("timeout") = 30.0, "Write bytes to the command's stdin")
      .def(
          "close_stdin", [](SshChannel& c) { unwrap(c.close_stdin()); }, py::call_guard<py::gil_scoped_release>(),
          "Send EOF on the command's stdin")
      .def(
          "read_line",
          [](SshChannel& c, double timeout) {
            std::string line;
            {
              py::gil_scoped_release nogil;
              line = unwrap(c.read_line(to_nanos(timeout)));
            }
            return decode(line);
          },
          py::arg("timeout") = 10.0,
          "Next stdout line without '\\n'; ConnectionClosedError at the end, TimeoutError when none comes")
      .def(
          "read_stderr",
          [](SshChannel& c, double timeout) {
            std::string text;
            {
              py::gil_scoped_release nogil;
              text = unwrap(c.read_stderr(to_nanos(timeout)));
            }
            return decode(text);
          },
          py::arg("timeout") = 0.0, "Stderr received so far, waiting up to `timeout` for some; '' if none")
      .def("eof", &SshChannel::eof, py::call_guard<py::gil_scoped_release>(),
           "True once the command closed stdout and all of it was read")
      .def(
          "exit_status", [](SshChannel& c, double timeout) { return c.exit_status(to_nanos(timeout)); },
          py::arg("timeout") = 0.0, py::call_guard<py::gil_scoped_release>(),
          "The exit status, waiting up to `timeout` for it; None while unknown")
      .def("close", &SshChannel::close, py::call_guard<py::gil_scoped_release>());

  py::class_<SshSession>(m, "SshSession", "An authenticated SSH connection (libssh), host key checked strictly")
      .def_static(
          "connect",
          [](const std::string& host, std::optional<int> port, const std::optional<std::string>& user,
             const std::optional<std::string>& config_file, const std::vector<std::string>& identity_files,
             const std::optional<std::string>& known_hosts_file, bool accept_new_host_key, double connect_timeout,
             const std::optional<std::string>& strict_host_key_checking, std::optional<py::function> warn,
             std::optional<py::function> confirm, const std::optional<std::string>& proxy_jump,
             const std::optional<std::string>& proxy_command, std::optional<py::function> prompt,
             std::optional<bool> password_authentication, std::optional<bool> kbd_interactive_authentication,
             std::optional<bool> batch_mode, std::optional<py::function> debug, const std::string& address_family) {
            SshOptions o = make_options(host, port, user, config_file, identity_files, known_hosts_file,
                                        accept_new_host_key, connect_timeout);
            if (strict_host_key_checking) o.host_key_policy = unwrap(parse_host_key_policy(*strict_host_key_checking));
            o.proxy_jump = proxy_jump;
            o.proxy_command = proxy_command;
            o.password_authentication = password_authentication;
            o.kbd_interactive_authentication = kbd_interactive_authentication;
            o.batch_mode = batch_mode;
            if (address_family == "inet") {
              o.address_family = AF_INET;
            } else if (address_family == "inet6") {
              o.address_family = AF_INET6;
            } else if (address_family != "any") {
              throw py::value_error("address_family must be 'any', 'inet' or 'inet6', not '" + address_family + "'");
            }
            Callbacks callbacks{std::move(warn), std::move(confirm), std::move(prompt), std::move(debug), nullptr};
            callbacks.install(o);
            Result<std::unique_ptr<SshSession>> session = make_error(Errc::ssh_connect, "not connected");
            {
              py::gil_scoped_release nogil;
              session = SshSession::connect(o);
            }
            if (callbacks.raised) std::rethrow_exception(callbacks.raised);
            return unwrap(std::move(session));
          },
          py::arg("host"), py::kw_only(), py::arg("port") = py::none(), py::arg("user") = py::none(),
          py::arg("config_file") = py::none(), py::arg("identity_files") = std::vector<std::string>{},
          py::arg("known_hosts_file") = py::none(), py::arg("accept_new_host_key") = false,
          py::arg("connect_timeout") = 10.0, py::arg("strict_host_key_checking") = py::none(),
          py::arg("warn") = py::none(), py::arg("confirm") = py::none(), py::arg("proxy_jump") = py::none(),
          py::arg("proxy_command") = py::none(), py::arg("prompt") = py::none(),
          py::arg("password_authentication") = py::none(), py::arg("kbd_interactive_authentication") = py::none(),
          py::arg("batch_mode") = py::none(), py::arg("debug") = py::none(), py::arg("address_family") = "any",
          "Connect, verify the host key (HostKeyError) and authenticate with public keys (SshAuthError).\n"
          "strict_host_key_checking: 'yes', 'accept-new', 'no' or 'ask' (None: the config's, else 'yes'; a\n"
          "changed key is always refused). warn(text) is told when a new key is recorded; confirm(question)\n"
          "-> bool answers 'ask' (None: no terminal, the key is refused).\n"
          "proxy_jump ('[user@]host[:port],...' or 'none') and proxy_command (run by /bin/sh; %h %p %r %n\n"
          "expanded; or 'none'): None = from the config. Every jump host's key is checked like the host's.\n"
          "prompt(question, echo) -> str | None answers a key's passphrase, a password or a\n"
          "keyboard-interactive question (None: declined); without it those are skipped.\n"
          "password_authentication, kbd_interactive_authentication, batch_mode: None = from the config.\n"
          "address_family: 'inet' or 'inet6' (ssh -4 / -6) reaches the host over that family only.\n"
          "debug(text) is told what the connection does (host, port, user, known_hosts, authentications).")
      .def_property_readonly(
          "local_address", [](const SshSession& s) { return unwrap(s.local_address()).host_string(); },
          "This end's IP address of the SSH connection (where the remote host reached us)")
      .def_property_readonly("remote_address",
                             [](const SshSession& s) { return unwrap(s.remote_address()).host_string(); })
      .def_property_readonly("host", &SshSession::host)
      .def_property_readonly("port", &SshSession::port)
      .def_property_readonly("user", &SshSession::user)
      .def(
          "exec",
          [](SshSession& s, const std::string& command) {
            return std::shared_ptr<SshChannel>(unwrap(s.exec(command)));
          },
          py::arg("command"), py::call_guard<py::gil_scoped_release>(),
          "Run a shell command line (quote operands with shell_quote); returns an SshChannel")
      .def(
          "sftp", [](SshSession& s) { return unwrap(s.sftp()); }, py::call_guard<py::gil_scoped_release>(),
          "An SftpSession on this connection; SshError when the server offers no SFTP")
      .def("close", &SshSession::close, py::call_guard<py::gil_scoped_release>());

  m.def(
      "shell_quote", [](std::string_view s) { return shell_quote(s); }, py::arg("s"),
      "POSIX shell quoting for one word of a remote command line");
  m.def(
      "check_host_operand", [](std::string_view host) { unwrap(check_host_operand(host)); }, py::arg("host"),
      "ValueError for an empty host, one starting with '-', or one with whitespace/control characters");
}

}  // namespace rcp::py_bindings
