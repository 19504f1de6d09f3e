// Python objects <-> msgpack, for messages sent through the Python API.
#pragma once

#include <msgpack.hpp>

#include "bindings/bindings.h"

namespace rcp::py_bindings {

// None, bool, int (64-bit), float, str, bytes, list/tuple, dict; nested at most 16 deep.
void pack_pyobject(msgpack::packer<msgpack::sbuffer>& pk, py::handle obj, int depth = 0);
py::object to_pyobject(const msgpack::object& o);

}  // namespace rcp::py_bindings
