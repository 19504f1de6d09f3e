#include <pybind11/stl.h>

#include "bindings/bindings.h"

#include "copy/filter_rules.h"
#include "wire/limits.h"
#include "wire/message.h"

namespace rcp::py_bindings {

// The message types, so Python never keeps a copy of the table
// (rcp.protocol.Msg is built from this).
void init_protocol(py::module_& m) {
  m.attr("PROTOCOL_VERSION") = kProtocolVersion;
  m.attr("MAX_ERROR_TEXT") = kMaxErrorText;
  py::enum_<MsgType>(m, "MsgType", py::arithmetic(), "Message types: the first element of every message")
      .value("HELLO", MsgType::hello)
      .value("EXPECT_PEER", MsgType::expect_peer)
      .value("LISTENING", MsgType::listening)
      .value("CONNECT_PEER", MsgType::connect_peer)
      .value("PEER_CONNECTED", MsgType::peer_connected)
      .value("SEND", MsgType::send)
      .value("RECEIVE", MsgType::receive)
      .value("ABORT", MsgType::abort)
      .value("PROGRESS", MsgType::progress)
      .value("LOG", MsgType::log)
      .value("ERROR", MsgType::error)
      .value("RESULT", MsgType::result)
      .value("PLAN", MsgType::plan)
      .value("ROOT", MsgType::root)
      .value("DIR", MsgType::dir)
      .value("SYMLINK", MsgType::symlink)
      .value("FILES", MsgType::files)
      .value("SOURCE_ERROR", MsgType::source_error)
      .value("DONE", MsgType::done)
      .value("FINISHED", MsgType::finished)
      .value("VERDICTS", MsgType::verdicts)
      .value("CHUNK", MsgType::chunk)
      .value("USER", MsgType::user);
  m.attr("MAX_FILTER_RULES") = kMaxFilterRules;
  m.def(
      "check_filters", [](const std::vector<std::string>& rules) { (void)unwrap(FilterRules::parse(rules)); },
      py::arg("rules"),
      "Parses '+ PATTERN' / '- PATTERN' filter rules as the rcpds will; raises ValueError naming a bad one");
}

}  // namespace rcp::py_bindings
