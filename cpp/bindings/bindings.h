// Shared by the binding translation units: the only place pybind11 is used.
#pragma once

#include <pybind11/pybind11.h>

#include "base/result.h"

namespace rcp::py_bindings {

namespace py = pybind11;

void init_errors(py::module_& m);
void init_certificate(py::module_& m);
void init_quic(py::module_& m);
void init_ssh(py::module_& m);
void init_stream_link(py::module_& m);
void init_hash(py::module_& m);
void init_protocol(py::module_& m);

// Thrown by unwrap(); a registered translator turns it into the Python
// exception class matching err.code once the GIL is held again, so it may be
// thrown from code running with the GIL released.
struct CoreError {
  Error error;
};

[[noreturn]] inline void throw_error(const Error& err) { throw CoreError{err}; }

template <typename T>
T unwrap(Result<T> r) {
  if (!r) throw_error(r.error());
  return std::move(r.value());
}
inline void unwrap(const Result<void>& r) {
  if (!r) throw_error(r.error());
}

}  // namespace rcp::py_bindings
