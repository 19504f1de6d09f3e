#include "bindings/bindings.h"

namespace rcp::py_bindings {

namespace {
// Set once at import; pybind11 keeps the classes alive with the module.
struct ErrorClasses {
  PyObject* base = nullptr;
  PyObject* pin = nullptr;
  PyObject* timeout = nullptr;
  PyObject* protocol = nullptr;
  PyObject* auth = nullptr;
  PyObject* closed = nullptr;
  PyObject* tls = nullptr;
  PyObject* connection_failure = nullptr;
  PyObject* ssh = nullptr;
  PyObject* host_key = nullptr;
  PyObject* ssh_auth = nullptr;
};
ErrorClasses& classes() {
  static ErrorClasses c;  // module state, not configuration
  return c;
}
}  // namespace

void translate(const CoreError& e);

void init_errors(py::module_& m) {
  auto& c = classes();
  c.base = py::exception<std::runtime_error>(m, "RcpError").ptr();
  auto sub = [&](const char* name, PyObject* extra = nullptr, PyObject* parent = nullptr) {
    PyObject* first = parent ? parent : c.base;
    py::tuple bases = extra ? py::make_tuple(py::handle(first), py::handle(extra)) : py::make_tuple(py::handle(first));
    py::object cls = py::reinterpret_steal<py::object>(
        PyErr_NewException((std::string("rcp._core.") + name).c_str(), bases.ptr(), nullptr));
    m.attr(name) = cls;
    return cls.release().ptr();
  };
  c.pin = sub("PinMismatchError");
  c.timeout = sub("TimeoutError", PyExc_TimeoutError);
  c.protocol = sub("ProtocolError");
  c.auth = sub("AuthenticationError");
  c.closed = sub("ConnectionClosedError", PyExc_ConnectionError);
  c.tls = sub("TlsError");
  // Every SSH failure is also a ConnectionFailure (exit 3), so a caller can
  // catch by what failed (HostKeyError) or by what it means (ConnectionFailure).
  c.connection_failure = sub("ConnectionFailure");
  c.ssh = sub("SshError", nullptr, c.connection_failure);
  c.host_key = sub("HostKeyError", nullptr, c.ssh);
  c.ssh_auth = sub("SshAuthError", nullptr, c.ssh);
  // pybind11 wants a plain function pointer taking the pointer by value.
  py::register_exception_translator([](std::exception_ptr p) {  // NOLINT(performance-unnecessary-value-param)
    try {
      if (p) std::rethrow_exception(p);
    } catch (const CoreError& e) {
      translate(e);
    }
  });
}

void translate(const CoreError& e) {
  const Error& err = e.error;
  auto& c = classes();
  PyObject* cls = c.base;
  switch (err.code) {
    case Errc::pin_mismatch: cls = c.pin; break;
    case Errc::timeout: cls = c.timeout; break;
    case Errc::protocol:
    case Errc::too_large: cls = c.protocol; break;
    case Errc::auth: cls = c.auth; break;
    case Errc::closed: cls = c.closed; break;
    case Errc::tls: cls = c.tls; break;
    case Errc::ssh_connect: cls = c.ssh; break;
    case Errc::ssh_host_key: cls = c.host_key; break;
    case Errc::ssh_auth: cls = c.ssh_auth; break;
    case Errc::invalid_argument: cls = PyExc_ValueError; break;
    default: break;
  }
  PyErr_SetString(cls, err.message.c_str());
}

}  // namespace rcp::py_bindings
