#include "bindings/bindings.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "rcp core: pinned QUIC links, certificates and framing (C++)";
  m.attr("__version__") = RCP_VERSION;
  rcp::py_bindings::init_errors(m);
  rcp::py_bindings::init_certificate(m);
  rcp::py_bindings::init_quic(m);
  rcp::py_bindings::init_ssh(m);
  rcp::py_bindings::init_stream_link(m);
  rcp::py_bindings::init_hash(m);
  rcp::py_bindings::init_protocol(m);
}
