#include <pybind11/stl.h>

#include "base/resolve.h"
#include "bindings/bindings.h"
#include "bindings/pyobject_msgpack.h"
#include "link/link.h"
#include "link/link_server.h"
#include "quic/certificate.h"

namespace rcp::py_bindings {

namespace {

Nanos to_nanos(double seconds) {
  if (!(seconds >= 0)) throw py::value_error("timeout must be >= 0 seconds");
  return static_cast<Nanos>(seconds * 1e9);
}

SessionKey to_key(const py::bytes& b) {
  std::string s = b;
  if (s.size() != SessionKey{}.size()) throw py::value_error("session_key must be 32 bytes");
  SessionKey k{};
  std::copy(s.begin(), s.end(), k.begin());
  return k;
}

std::vector<Fingerprint> to_pins(const std::vector<std::string>& hex) {
  std::vector<Fingerprint> pins;
  pins.reserve(hex.size());
  for (const auto& h : hex) pins.push_back(unwrap(parse_fingerprint(h)));
  return pins;
}

Address to_address(const std::string& host, uint16_t port) {
  auto all = unwrap(resolve_address(host, port));
  if (all.empty()) throw py::value_error("no address for " + host);
  return all.front();
}

LinkConfig make_config(const QuicConfig& quic, TlsRole role, const Certificate& cert,
                       const std::vector<std::string>& pins, const py::bytes& key, const std::string& name) {
  LinkConfig cfg;
  cfg.quic = quic;
  if (cfg.quic.keylog_file.empty())
    if (const char* env = std::getenv("SSLKEYLOGFILE")) cfg.quic.keylog_file = env;
  cfg.tls = TlsConfig{role, cert, to_pins(pins), cfg.quic.keylog_file};
  cfg.session_key = to_key(key);
  cfg.role = name;
  if (cfg.quic.logger.tag.empty()) cfg.quic.logger = Logger::from_env(name);
  return cfg;
}

py::bytes pack_user_message(py::handle obj) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(2);
  pk.pack(static_cast<uint32_t>(MsgType::user));
  pack_pyobject(pk, obj);
  return py::bytes(buf.data(), buf.size());
}

py::object unpack_user_message(const std::vector<uint8_t>& body) {
  auto m = unwrap(decode_message(body));
  if (m.type != static_cast<uint32_t>(MsgType::user) || m.fields.empty())
    throw_error(make_error(Errc::protocol, "unexpected message type " + std::to_string(m.type)));
  return to_pyobject(m.fields[0]);
}

std::string pack_typed(uint32_t type, const py::list& fields) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(static_cast<uint32_t>(1 + fields.size()));
  pk.pack(type);
  for (auto f : fields) pack_pyobject(pk, f);
  return std::string(buf.data(), buf.size());
}

py::tuple unpack_typed(const std::vector<uint8_t>& body) {
  auto m = unwrap(decode_message(body));
  py::list fields;
  for (const auto& f : m.fields) fields.append(to_pyobject(f));
  return py::make_tuple(m.type, fields);
}

py::dict stats_dict(const TransportStats& s) {
  py::dict d;
  d["bytes_sent"] = s.bytes_sent;
  d["bytes_received"] = s.bytes_received;
  d["packets_sent"] = s.packets_sent;
  d["packets_received"] = s.packets_received;
  d["send_calls"] = s.send_calls;
  d["max_udp_payload"] = s.max_udp_payload;
  d["gso"] = s.gso;
  d["smoothed_rtt_ms"] = static_cast<double>(s.smoothed_rtt) / 1e6;
  d["cwnd"] = s.cwnd;
  return d;
}

}  // namespace

void init_quic(py::module_& m) {
  py::class_<QuicConfig>(m, "QuicOptions", "Tunables of a QUIC link")
      .def(py::init<>())
      .def_property(
          "handshake_timeout", [](const QuicConfig& c) { return c.handshake_timeout / 1e9; },
          [](QuicConfig& c, double s) { c.handshake_timeout = to_nanos(s); })
      .def_property(
          "idle_timeout", [](const QuicConfig& c) { return c.idle_timeout / 1e9; },
          [](QuicConfig& c, double s) { c.idle_timeout = to_nanos(s); })
      .def_property(
          "keep_alive", [](const QuicConfig& c) { return c.keep_alive / 1e9; },
          [](QuicConfig& c, double s) { c.keep_alive = to_nanos(s); })
      .def_property(
          "congestion_control", [](const QuicConfig& c) { return congestion_control_name(c.cc); },
          [](QuicConfig& c, const std::string& n) { c.cc = unwrap(parse_congestion_control(n)); })
      .def_readwrite("max_udp_payload", &QuicConfig::max_udp_payload)
      .def_readwrite("port_range", &QuicConfig::port_range)
      .def_readwrite("keylog_file", &QuicConfig::keylog_file)
      .def_readwrite("max_frame_body", &QuicConfig::max_frame_body)
      .def_readwrite("stream_window", &QuicConfig::stream_window)
      .def_readwrite("conn_window", &QuicConfig::conn_window)
      .def_readwrite("max_stream_window", &QuicConfig::max_stream_window)
      .def_readwrite("max_conn_window", &QuicConfig::max_conn_window)
      .def_readwrite("max_uni_streams", &QuicConfig::max_uni_streams);

  py::class_<Link, std::shared_ptr<Link>>(m, "Link", "An authenticated link: QUIC, or a byte stream (thread-safe)")
      .def(
          "send_message",
          [](Link& l, py::handle obj) {
            std::string b = pack_user_message(obj);
            py::gil_scoped_release nogil;
            unwrap(l.send_message({reinterpret_cast<const uint8_t*>(b.data()), b.size()}));
          },
          "Send a msgpack-able object on the sealed control stream")
      .def(
          "recv_message",
          [](Link& l, double timeout) {
            std::vector<uint8_t> body;
            {
              py::gil_scoped_release nogil;
              body = unwrap(l.recv_message(to_nanos(timeout)));
            }
            return unpack_user_message(body);
          },
          py::arg("timeout") = 10.0)
      .def(
          "send",
          [](Link& l, uint32_t type, const py::list& fields) {
            std::string b = pack_typed(type, fields);
            py::gil_scoped_release nogil;
            unwrap(l.send_message({reinterpret_cast<const uint8_t*>(b.data()), b.size()}));
          },
          py::arg("type"), py::arg("fields"), "Send a typed protocol message [type, *fields] (sealed)")
      .def(
          "recv",
          [](Link& l, double timeout) {
            std::vector<uint8_t> body;
            {
              py::gil_scoped_release nogil;
              body = unwrap(l.recv_message(to_nanos(timeout)));
            }
            return unpack_typed(body);
          },
          py::arg("timeout") = 10.0, "Next control message as (type, [fields])")
      .def(
          "send_log",
          [](Link& l, uint32_t type, const py::list& fields) {
            std::string b = pack_typed(type, fields);
            py::gil_scoped_release nogil;
            unwrap(l.send_log({reinterpret_cast<const uint8_t*>(b.data()), b.size()}));
          },
          py::arg("type"), py::arg("fields"), "Send a typed message on this side's log stream (not sealed)")
      .def(
          "recv_log",
          [](Link& l, double timeout) {
            std::vector<uint8_t> body;
            {
              py::gil_scoped_release nogil;
              body = unwrap(l.recv_log(to_nanos(timeout)));
            }
            return unpack_typed(body);
          },
          py::arg("timeout") = 10.0, "Next log-stream message as (type, [fields])")
      .def(
          "open_data", [](Link& l) { return unwrap(l.open_data()); }, py::call_guard<py::gil_scoped_release>())
      .def(
          "write",
          [](Link& l, int64_t id, const py::buffer& data, double timeout) {
            py::buffer_info info = data.request();
            std::span<const uint8_t> s(static_cast<const uint8_t*>(info.ptr),
                                       static_cast<size_t>(info.size * info.itemsize));
            py::gil_scoped_release nogil;  // `data` stays referenced by the caller during the call
            unwrap(l.write(id, s, to_nanos(timeout)));
          },
          py::arg("stream"), py::arg("data"), py::arg("timeout") = 60.0)
      .def(
          "finish", [](Link& l, int64_t id) { unwrap(l.finish(id)); }, py::call_guard<py::gil_scoped_release>())
      .def(
          "accept_data", [](Link& l, double timeout) { return unwrap(l.accept_data(to_nanos(timeout))); },
          py::arg("timeout") = 10.0, py::call_guard<py::gil_scoped_release>())
      .def(
          "read",
          [](Link& l, int64_t id, size_t max, double timeout) {
            std::string buf(max, '\0');
            size_t n;
            {
              py::gil_scoped_release nogil;
              n = unwrap(l.read(id, {reinterpret_cast<uint8_t*>(buf.data()), buf.size()}, to_nanos(timeout)));
            }
            buf.resize(n);
            return py::bytes(buf);
          },
          py::arg("stream"), py::arg("max_bytes") = 1 << 20, py::arg("timeout") = 60.0)
      .def("close", &Link::close, py::arg("reason") = "done", py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("closed", &Link::closed)
      .def_property_readonly("peer_fingerprint", [](const Link& l) { return to_hex(l.peer_fingerprint()); })
      .def_property_readonly("peer_role", [](const Link& l) { return l.peer_hello().role; })
      .def("stats", [](Link& l) {
        TransportStats s;
        {
          py::gil_scoped_release nogil;
          s = l.stats();
        }
        return stats_dict(s);
      });

  py::class_<LinkServer, std::shared_ptr<LinkServer>>(m, "QuicServer", "A pinned QUIC listener")
      .def(py::init([](const Certificate& cert, const std::vector<std::string>& pinned, const py::bytes& key,
                       const std::string& host, const QuicConfig& options, const std::string& role) {
             auto cfg = make_config(options, TlsRole::server, cert, pinned, key, role);
             Address bind = to_address(host, 0);
             py::gil_scoped_release nogil;
             return unwrap(LinkServer::listen(cfg, bind));
           }),
           py::arg("certificate"), py::arg("pinned"), py::arg("session_key"), py::arg("host") = "127.0.0.1",
           py::arg("options") = QuicConfig{}, py::arg("role") = "server")
      .def_property_readonly("port", [](const LinkServer& e) { return e.local_address().port(); })
      .def_property_readonly("host", [](const LinkServer& e) { return e.local_address().host_string(); })
      .def(
          "accept", [](LinkServer& e, double timeout) { return unwrap(e.accept(to_nanos(timeout))); },
          py::arg("timeout") = 10.0, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("rejected", &LinkServer::rejected)
      .def_property_readonly("last_rejection", &LinkServer::last_rejection)
      .def("stop_accepting", &LinkServer::stop_accepting)
      .def(
          "counters",
          [](const LinkServer& e) {
            ServerCounters n = e.counters();
            py::dict d;
            d["retries_sent"] = n.retries_sent;
            d["retries_suppressed"] = n.retries_suppressed;
            d["invalid_tokens"] = n.invalid_tokens;
            d["handshakes_started"] = n.handshakes_started;
            d["handshakes_unvalidated"] = n.handshakes_unvalidated;
            d["handshakes_evicted"] = n.handshakes_evicted;
            d["refused_no_slot"] = n.refused_no_slot;
            return d;
          },
          "What the server did with Initials: Retries sent and suppressed, handshakes started...")
      .def("add_pin", [](LinkServer& e, const std::string& fp) { e.add_pin(unwrap(parse_fingerprint(fp))); });

  m.def(
      "connect",
      [](const std::string& host, uint16_t port, const Certificate& cert, const std::string& pinned,
         const py::bytes& key, const QuicConfig& options, const std::string& role) {
        auto cfg = make_config(options, TlsRole::client, cert, {pinned}, key, role);
        Address remote = to_address(host, port);
        py::gil_scoped_release nogil;
        return unwrap(Link::connect(cfg, remote));
      },
      py::arg("host"), py::arg("port"), py::arg("certificate"), py::arg("pinned"), py::arg("session_key"),
      py::arg("options") = QuicConfig{}, py::arg("role") = "client",
      "Connect, verify the server's certificate against `pinned`, exchange hellos; returns a Link");
}

}  // namespace rcp::py_bindings
