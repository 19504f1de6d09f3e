#include "bindings/bindings.h"

#include "wire/chunk_header.h"

namespace rcp::py_bindings {

void init_hash(py::module_& m) {
  m.def(
      "xxh3_128",
      [](const py::bytes& data) {
        std::string_view s = data;
        Digest128 d = Xxh128::of({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
        return py::bytes(reinterpret_cast<const char*>(d.data()), d.size());
      },
      py::arg("data"), "xxh3-128 of data, canonical (big-endian) bytes: the per-chunk check on data streams");
}

}  // namespace rcp::py_bindings
