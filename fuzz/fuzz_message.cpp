// libFuzzer target: msgpack message decoding and every typed accessor, plus
// the Hello, ChunkHeader and every typed message decoder, on hostile bodies.
#include <cstddef>
#include <cstdint>
#include <span>

#include "wire/chunk_header.h"
#include "wire/message.h"
#include "wire/messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> body(data, size);
  (void)rcp::ChunkHeader::decode(body);
  auto m = rcp::decode_message(body);
  if (!m) return 0;
  (void)rcp::Hello::decode(*m);
  // Each decoder refuses the other types first; run them all regardless.
  (void)rcp::ExpectPeerMsg::decode(*m);
  (void)rcp::ListeningMsg::decode(*m);
  (void)rcp::ConnectPeerMsg::decode(*m);
  (void)rcp::PeerConnectedMsg::decode(*m);
  (void)rcp::SendMsg::decode(*m);
  (void)rcp::ReceiveMsg::decode(*m);
  (void)rcp::AbortMsg::decode(*m);
  (void)rcp::ProgressMsg::decode(*m);
  (void)rcp::LogMsg::decode(*m);
  (void)rcp::ErrorMsg::decode(*m);
  (void)rcp::ResultMsg::decode(*m);
  (void)rcp::RootMsg::decode(*m);
  (void)rcp::DirMsg::decode(*m);
  (void)rcp::SymlinkMsg::decode(*m);
  (void)rcp::SourceErrorMsg::decode(*m);
  (void)rcp::DoneMsg::decode(*m);
  (void)rcp::FinishedMsg::decode(*m);
  (void)rcp::FilesMsg::decode(*m);
  (void)rcp::VerdictsMsg::decode(*m);
  (void)rcp::PlanMsg::decode(*m);
  for (size_t i = 0; i < m->fields.size() + 1; ++i) {  // one past the end too
    (void)m->get_uint(i, "field");
    (void)m->get_str(i, "field", 64);
    (void)m->get_bin(i, "field", 64);
    (void)m->get_int(i, "field");
    (void)m->get_bool(i, "field");
    (void)m->get_str_list(i, "field", 64);
  }
  return 0;
}
