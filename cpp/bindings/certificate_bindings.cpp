#include "bindings/bindings.h"

#include "quic/certificate.h"

namespace rcp::py_bindings {

void init_certificate(py::module_& m) {
  py::class_<Certificate>(m, "Certificate", "Ephemeral ECDSA P-256 key and self-signed certificate")
      .def_static(
          "generate", [](const std::string& cn) { return unwrap(Certificate::generate(cn)); },
          py::arg("common_name") = "rcp", py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("fingerprint", &Certificate::fingerprint_hex, "SHA-256 of the DER certificate, hex")
      .def_property_readonly(
          "der",
          [](const Certificate& c) { return py::bytes(reinterpret_cast<const char*>(c.der.data()), c.der.size()); })
      // Tests only: this certificate (same DER, same fingerprint) with a fresh
      // private key, as a peer that replays a pinned certificate would hold.
      .def("_test_only_without_its_key", [](const Certificate& c) {
        Certificate rogue = c;
        rogue.key_der = unwrap(Certificate::generate()).key_der;
        return rogue;
      });
  m.def("fingerprint_of_der", [](const py::bytes& der) {
    std::string s = der;
    return to_hex(fingerprint_of({reinterpret_cast<const uint8_t*>(s.data()), s.size()}));
  });
}

}  // namespace rcp::py_bindings
