// Messages: msgpack arrays [type, field1, field2, ...]. Fields are only ever
// appended, so a decoder accepts extra trailing fields and the protocol
// version travels in the first hello. Decoding treats input as hostile:
// bounded depth and sizes, every field type-checked.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "base/result.h"

namespace rcp {

// 2: receive carries root rules; data records end in a verdict byte.
// 3: expect_peer and connect_peer carry a transport (relay), which a
// version-2 rcpd would silently ignore: the hello check refuses it instead.
// 4: the source announces files (`files`) and sends data only for those the
// destination answers "send" (`verdicts`).
// 5: this session's appended fields (docs/protocol.md), among them
// progress `current`.
constexpr uint32_t kProtocolVersion = 5;
// Error texts in messages (a path and why); senders cut longer ones.
constexpr size_t kMaxErrorText = 8192;

// Message types; wire/messages.h defines each one's fields (docs/protocol.md).
enum class MsgType : uint32_t {
  hello = 1,
  // master -> rcpd
  expect_peer = 10,   // to source: [destination fingerprint]
  listening = 11,     // source -> master: [port, [addresses]]
  connect_peer = 12,  // to destination: [[addresses], port, source fingerprint]
  peer_connected = 13,
  send = 14,     // to source: [[paths]]
  receive = 15,  // to destination: [path, n_sources, trailing_slash, overwrite, [rules], fsync]
  abort = 16,    // [reason]
  // rcpd -> master
  progress = 20,  // log stream: [bytes_done, files_done, bytes_total, files_total]
  log = 21,       // log stream: [level, text]
  error = 22,     // control: [text] fatal for this rcpd
  result = 23,  // control: [files, bytes, dirs, symlinks, kept, failed, [[path, error]...], unchanged, ignored, [kept]]
  plan = 24,    // control, destination: [[[action, path, size]...]] (--dry-run), before the result
  // source -> destination
  root = 30,          // [index, name, kind("f","d","l","?"), error]
  dir = 31,           // [index, relpath, mode, mtime_s, mtime_ns]
  symlink = 32,       // [index, relpath, target, mtime_s, mtime_ns]
  files = 33,         // [first, [[index, relpath, size, mtime_s, mtime_ns, mode, digest]...]]
  source_error = 35,  // [index, relpath, text]
  done = 36,          // [files, bytes]
  finished = 37,      // destination -> source: all written
  verdicts = 38,      // destination -> source: [first, bin: one FileVerdict per announced file]
  chunk = 40,         // data stream header, see ChunkHeader
  user = 100,         // application payloads exchanged through the Python API
};

// A decoded message; `fields` points into `handle`'s zone.
struct Message {
  uint32_t type = 0;
  msgpack::object_handle handle;
  std::span<const msgpack::object> fields;  // elements after the type

  // Errc::protocol unless the message is of type `t`.
  Result<void> expect_type(MsgType t, const char* name) const;
  Result<uint64_t> get_uint(size_t i, const char* what, uint64_t max = UINT64_MAX) const;
  // Either msgpack integer kind within int64 (mtimes before 1970 are negative).
  Result<int64_t> get_int(size_t i, const char* what) const;
  Result<bool> get_bool(size_t i, const char* what) const;
  Result<std::string> get_str(size_t i, const char* what, size_t max_len = 4096) const;
  Result<std::vector<uint8_t>> get_bin(size_t i, const char* what, size_t max_len) const;
  // An array of str (or bin) elements, each at most max_len bytes.
  Result<std::vector<std::string>> get_str_list(size_t i, const char* what, size_t max_len) const;
  // An array of at most max_count unsigned integers.
  Result<std::vector<uint64_t>> get_uint_list(size_t i, const char* what, size_t max_count) const;
};

// Limits: depth <= 8, each container <= 4096 elements, str/bin <= body size.
// Errc::protocol with a message naming the problem on any violation.
Result<Message> decode_message(std::span<const uint8_t> body);

// Packs [type, args...] with msgpack-cxx.
template <typename... Args>
std::vector<uint8_t> encode_message(MsgType type, const Args&... args) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(1 + sizeof...(Args));
  pk.pack(static_cast<uint32_t>(type));
  (pk.pack(args), ...);
  const auto* p = reinterpret_cast<const uint8_t*>(buf.data());
  return std::vector<uint8_t>(p, p + buf.size());
}

struct Hello {
  uint32_t protocol_version = kProtocolVersion;
  std::string role;         // "master", "source", "destination", "client", "server"
  std::string fingerprint;  // hex SHA-256 of the sender's certificate
  std::string software;     // rcp version string

  // This rcp's hello: the one place it is built (current version, this software).
  static Hello ours(std::string role, std::string fingerprint);
  // The line an rcpd prints on stdout before any link:
  // "RCPD <protocol_version> <fingerprint> <software>" (python/rcp/daemon.py reads it).
  std::string banner() const;

  std::vector<uint8_t> encode() const;
  static Result<Hello> decode(const Message& m);
};

}  // namespace rcp
