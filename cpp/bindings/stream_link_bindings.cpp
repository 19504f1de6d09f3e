// The master's end of an rcpd's control link over that rcpd's stdin/stdout
// (docs/protocol.md, "Link over a byte stream"): an SSH exec channel for a
// remote rcpd, the pipes of a local child. Here, not in cpp/link: the SSH
// layer exists only in the Python module. Also the master's half of
// --relay (link/link_tunnel.h), which joins two of those links.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>

#include "bindings/bindings.h"
#include "link/link_tunnel.h"
#include "link/stream_transport.h"
#include "quic/certificate.h"
#include "ssh/ssh_session.h"

namespace rcp::py_bindings {

namespace {

// Short: another thread on the session (a write, the daemon's liveness
// checks) may take in the bytes we wait for, and then the socket stays quiet
// though the channel's buffer filled; SshChannel waits on the socket only.
constexpr Nanos kReadSlice = 5'000'000;
// A remote rcpd whose channel takes nothing for this long is not reading.
constexpr Nanos kWriteTimeout = 120'000'000'000;

class SshChannelStream : public ByteStream {
 public:
  explicit SshChannelStream(std::shared_ptr<SshChannel> channel) : channel_(std::move(channel)) {}

  Result<size_t> read_some(std::span<uint8_t> out) override {
    for (;;) {
      if (shut_.load()) return make_error(Errc::closed, "link stream shut down");
      auto n = channel_->read_stdout(out, kReadSlice);
      if (n || n.error().code != Errc::timeout) return n;
    }
  }
  Result<void> write_all(std::span<const uint8_t> data) override {
    if (shut_.load()) return make_error(Errc::closed, "link stream shut down");
    return channel_->write_stdin(data, kWriteTimeout);
  }
  void shutdown() override { shut_ = true; }

 private:
  std::shared_ptr<SshChannel> channel_;
  std::atomic<bool> shut_{false};
};

Nanos to_nanos(double seconds) {
  if (!(seconds >= 0)) throw py::value_error("timeout must be >= 0 seconds");
  return static_cast<Nanos>(seconds * 1e9);
}

LinkConfig master_config(const Certificate& cert, const py::bytes& key, const std::string& peer,
                         const std::string& role) {
  std::string k = key;
  if (k.size() != SessionKey{}.size()) throw py::value_error("session_key must be 32 bytes");
  LinkConfig cfg{};
  cfg.tls = {TlsRole::server, cert, {unwrap(parse_fingerprint(peer))}, ""};
  std::copy(k.begin(), k.end(), cfg.session_key.begin());
  cfg.role = role;
  return cfg;
}

// Starts the link (the master is its server side) and waits for the hellos.
std::shared_ptr<Link> start_link(std::unique_ptr<ByteStream> stream, const LinkConfig& cfg, Nanos timeout) {
  auto link = StreamTransport::start(std::move(stream), cfg, false);
  if (auto r = link->wait_ready(timeout); !r) {
    link->close("no hello");
    throw_error(r.error());
  }
  return link;
}

}  // namespace

void init_stream_link(py::module_& m) {
  m.def(
      "link_over_ssh",
      [](std::shared_ptr<SshChannel> channel, const Certificate& cert, const py::bytes& key,
         const std::string& peer_fingerprint, const std::string& role, double timeout) {
        auto cfg = master_config(cert, key, peer_fingerprint, role);
        const Nanos t = to_nanos(timeout);
        py::gil_scoped_release nogil;
        return start_link(std::make_unique<SshChannelStream>(std::move(channel)), cfg, t);
      },
      py::arg("channel"), py::arg("certificate"), py::arg("session_key"), py::arg("peer_fingerprint"),
      py::arg("role") = "master", py::arg("timeout") = 30.0,
      "The master's end of a remote rcpd's control link over its exec channel (after the hello line and the\n"
      "session key); waits for the hellos. peer_fingerprint: the one the rcpd's hello line announced.");
  m.def(
      "link_over_fds",
      [](int read_fd, int write_fd, const Certificate& cert, const py::bytes& key, const std::string& peer_fingerprint,
         const std::string& role, double timeout) {
        auto cfg = master_config(cert, key, peer_fingerprint, role);
        const Nanos t = to_nanos(timeout);
        // Our own copies: the caller keeps (and closes) its descriptors.
        UniqueFd in(::fcntl(read_fd, F_DUPFD_CLOEXEC, 0)), out(::fcntl(write_fd, F_DUPFD_CLOEXEC, 0));
        if (in.get() < 0 || out.get() < 0) throw_error(make_error(Errc::io, "cannot duplicate the link's descriptors"));
        auto stream = unwrap(FdStream::create(std::move(in), std::move(out)));
        py::gil_scoped_release nogil;
        return start_link(std::move(stream), cfg, t);
      },
      py::arg("read_fd"), py::arg("write_fd"), py::arg("certificate"), py::arg("session_key"),
      py::arg("peer_fingerprint"), py::arg("role") = "master", py::arg("timeout") = 30.0,
      "The master's end of a local rcpd's control link over its pipes (its stdout, its stdin), after the hello\n"
      "line and the session key; waits for the hellos. The descriptors are duplicated, not taken.");

  py::class_<TunnelSplice>(m, "TunnelSplice",
                           "The master's half of --relay: copies each rcpd's tunnel stream to the other (C++ threads)")
      .def("stop", &TunnelSplice::stop, "Ends both directions within ~0.1 s (and the streams they feed).")
      .def(
          "wait",
          [](TunnelSplice& s, double timeout) {
            const Nanos t = to_nanos(timeout);
            py::gil_scoped_release nogil;
            return s.wait(t);
          },
          py::arg("timeout"), "Waits until both directions ended; False on timeout.")
      .def_property_readonly(
          "bytes", [](const TunnelSplice& s) { return py::make_tuple(s.bytes(0), s.bytes(1)); },
          "Bytes copied (a to b, b to a).")
      .def_property_readonly(
          "error", [](const TunnelSplice& s) { return s.error().message; },
          "Why a direction failed; '' when none did (a stop is not a failure).");
  m.def(
      "splice_tunnel",
      [](std::shared_ptr<Link> a, std::shared_ptr<Link> b, double accept_timeout) {
        const Nanos t = to_nanos(accept_timeout);
        return TunnelSplice::start(std::move(a), std::move(b), t);
      },
      py::arg("a"), py::arg("b"), py::arg("accept_timeout") = 30.0,
      "--relay: accepts the tunnel stream each rcpd opens on its control link (a, b) and copies it to a stream\n"
      "opened toward the other, unparsed, until either side ends or fails. Memory: a 64 KiB buffer per direction\n"
      "(flow control holds the rest at the rcpds).");
}

}  // namespace rcp::py_bindings
