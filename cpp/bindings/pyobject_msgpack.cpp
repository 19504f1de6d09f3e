#include "bindings/pyobject_msgpack.h"

namespace rcp::py_bindings {

void pack_pyobject(msgpack::packer<msgpack::sbuffer>& pk, py::handle obj, int depth) {
  if (depth > 16) throw py::value_error("message nested too deeply (max 16)");
  if (obj.is_none()) {
    pk.pack_nil();
  } else if (py::isinstance<py::bool_>(obj)) {
    obj.cast<bool>() ? pk.pack_true() : pk.pack_false();
  } else if (py::isinstance<py::int_>(obj)) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj.ptr(), &overflow);
    if (overflow == 0 && v < 0)
      pk.pack(static_cast<int64_t>(v));
    else if (overflow == 0)
      pk.pack(static_cast<uint64_t>(v));
    else if (overflow > 0)
      pk.pack(obj.cast<uint64_t>());  // raises if beyond 64 bits
    else
      throw py::value_error("integer below -2**63 cannot be sent");
  } else if (py::isinstance<py::float_>(obj)) {
    pk.pack(obj.cast<double>());
  } else if (py::isinstance<py::str>(obj)) {
    // A msgpack str carries the exact bytes: UTF-8, with lone surrogates
    // U+DC80..U+DCFF back to the raw bytes they stand for (surrogateescape,
    // how Python decodes argv and file names). So a non-UTF-8 file name
    // round-trips byte for byte; the C++ side reads str fields as raw bytes
    // (Message::get_str does not check UTF-8), and to_pyobject decodes them
    // the same way back.
    py::object raw =
        py::reinterpret_steal<py::object>(PyUnicode_AsEncodedString(obj.ptr(), "utf-8", "surrogateescape"));
    if (!raw) throw py::error_already_set();  // another lone surrogate: not a name any file system gave us
    char* data = nullptr;
    Py_ssize_t size = 0;
    if (PyBytes_AsStringAndSize(raw.ptr(), &data, &size) != 0) throw py::error_already_set();
    pk.pack_str(static_cast<uint32_t>(size));
    pk.pack_str_body(data, static_cast<uint32_t>(size));
  } else if (py::isinstance<py::bytes>(obj) || py::isinstance<py::bytearray>(obj)) {
    std::string s = py::isinstance<py::bytes>(obj) ? obj.cast<std::string>()
                                                   : std::string(py::bytes(py::reinterpret_borrow<py::object>(obj)));
    pk.pack_bin(static_cast<uint32_t>(s.size()));
    pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
  } else if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    auto seq = py::reinterpret_borrow<py::sequence>(obj);
    pk.pack_array(static_cast<uint32_t>(py::len(seq)));
    for (auto item : seq) pack_pyobject(pk, item, depth + 1);
  } else if (py::isinstance<py::dict>(obj)) {
    auto d = py::reinterpret_borrow<py::dict>(obj);
    pk.pack_map(static_cast<uint32_t>(py::len(d)));
    for (auto [k, v] : d) {
      pack_pyobject(pk, k, depth + 1);
      pack_pyobject(pk, v, depth + 1);
    }
  } else {
    throw py::type_error("cannot send a " + std::string(py::str(obj.get_type().attr("__name__"))) +
                         " in a message (use None, bool, int, float, str, bytes, list, dict)");
  }
}

py::object to_pyobject(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL: return py::none();
    case msgpack::type::BOOLEAN: return py::bool_(o.via.boolean);
    case msgpack::type::POSITIVE_INTEGER: return py::int_(o.via.u64);
    case msgpack::type::NEGATIVE_INTEGER: return py::int_(o.via.i64);
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return py::float_(o.via.f64);
    case msgpack::type::STR:
      return py::reinterpret_steal<py::object>(PyUnicode_DecodeUTF8(o.via.str.ptr, o.via.str.size, "surrogateescape"));
    case msgpack::type::BIN: return py::bytes(o.via.bin.ptr, o.via.bin.size);
    case msgpack::type::ARRAY: {
      py::list l;
      for (uint32_t i = 0; i < o.via.array.size; ++i) l.append(to_pyobject(o.via.array.ptr[i]));
      return l;
    }
    case msgpack::type::MAP: {
      py::dict d;
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        py::object key = to_pyobject(o.via.map.ptr[i].key);
        if (!py::isinstance<py::str>(key) && !py::isinstance<py::int_>(key) && !py::isinstance<py::bytes>(key))
          key = py::str(key);  // lists are unhashable; a peer's odd key must not crash us
        d[key] = to_pyobject(o.via.map.ptr[i].val);
      }
      return d;
    }
    default: return py::none();  // EXT: not used by rcp
  }
}

}  // namespace rcp::py_bindings
