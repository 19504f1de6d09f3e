#include "wire/message.h"

#include <algorithm>
#include <limits>
#include <new>

namespace rcp {

namespace {

constexpr size_t kMaxContainer = 4096;
constexpr size_t kMaxDepth = 8;
constexpr size_t kMaxHelloString = 128;

Error field_error(const char* what, const std::string& problem) {
  return make_error(Errc::protocol, std::string("message field '") + what + "' " + problem);
}

Error malformed(const std::string& why) { return make_error(Errc::protocol, "malformed message: " + why); }

// Limits for one body. Every element takes at least one byte (a map entry
// two), and every str/bin/ext payload lies inside the body, so capping the
// declared sizes by the body size bounds what the unpacker allocates by the
// bytes actually received, whatever the headers claim.
msgpack::unpack_limit limits_for(size_t body_size) {
  const size_t array = std::min(kMaxContainer, body_size);
  const size_t map = std::min(kMaxContainer, body_size / 2);
  return msgpack::unpack_limit(array, map, body_size, body_size, body_size, kMaxDepth);
}

// Runs msgpack::unpack with no exception escaping; `offset` ends after the object.
Result<msgpack::object_handle> unpack_bounded(std::span<const uint8_t> body, size_t& offset) {
  try {
    return msgpack::unpack(reinterpret_cast<const char*>(body.data()), body.size(), offset, nullptr, nullptr,
                           limits_for(body.size()));
  } catch (const msgpack::size_overflow& e) {
    return malformed(std::string("a size or nesting limit is exceeded (") + e.what() + ")");
  } catch (const msgpack::insufficient_bytes&) {
    return malformed("truncated msgpack");
  } catch (const msgpack::unpack_error& e) {
    return malformed(std::string("invalid msgpack (") + e.what() + ")");
  } catch (const msgpack::type_error&) {
    return malformed("msgpack type error");
  } catch (const std::bad_alloc&) {
    return malformed("out of memory while decoding");
  } catch (const std::exception& e) {
    return malformed(e.what());
  } catch (...) {
    return malformed("unknown msgpack failure");
  }
}

}  // namespace

Result<Message> decode_message(std::span<const uint8_t> body) {
  if (body.empty()) return malformed("empty body");
  size_t offset = 0;
  auto handle = unpack_bounded(body, offset);
  if (!handle) return handle.error();
  if (offset != body.size())
    return malformed(std::to_string(body.size() - offset) + " trailing bytes after the msgpack object");

  const msgpack::object& root = handle->get();
  if (root.type != msgpack::type::ARRAY) return malformed("not a msgpack array");
  if (root.via.array.size == 0) return malformed("empty array (no message type)");
  const msgpack::object& type = root.via.array.ptr[0];
  if (type.type != msgpack::type::POSITIVE_INTEGER || type.via.u64 == 0 ||
      type.via.u64 > std::numeric_limits<uint32_t>::max())
    return malformed("the message type must be a positive 32-bit integer");

  Message m;
  m.type = static_cast<uint32_t>(type.via.u64);
  // The elements live in the handle's zone, which does not move with the handle.
  m.fields = std::span<const msgpack::object>(root.via.array.ptr + 1, root.via.array.size - 1);
  m.handle = std::move(*handle);
  return m;
}

Result<void> Message::expect_type(MsgType t, const char* name) const {
  if (type != static_cast<uint32_t>(t))
    return make_error(Errc::protocol,
                      std::string("expected a ") + name + " message, got message type " + std::to_string(type));
  return {};
}

Result<uint64_t> Message::get_uint(size_t i, const char* what, uint64_t max) const {
  if (i >= fields.size()) return field_error(what, "is missing");
  if (fields[i].type != msgpack::type::POSITIVE_INTEGER) return field_error(what, "must be an unsigned integer");
  if (fields[i].via.u64 > max) return field_error(what, "is out of range (at most " + std::to_string(max) + ")");
  return fields[i].via.u64;
}

Result<int64_t> Message::get_int(size_t i, const char* what) const {
  if (i >= fields.size()) return field_error(what, "is missing");
  const auto& f = fields[i];
  if (f.type == msgpack::type::POSITIVE_INTEGER && f.via.u64 <= static_cast<uint64_t>(INT64_MAX))
    return static_cast<int64_t>(f.via.u64);
  if (f.type == msgpack::type::NEGATIVE_INTEGER) return f.via.i64;
  return field_error(what, "must be an integer within 64 bits");
}

Result<bool> Message::get_bool(size_t i, const char* what) const {
  if (i >= fields.size()) return field_error(what, "is missing");
  if (fields[i].type != msgpack::type::BOOLEAN) return field_error(what, "must be a boolean");
  return fields[i].via.boolean;
}

// The bytes as sent, not checked for UTF-8: paths are raw bytes (the master
// sends a non-UTF-8 file name as a str of its exact bytes, see
// bindings/pyobject_msgpack.cpp), and every consumer treats text as bytes.
Result<std::string> Message::get_str(size_t i, const char* what, size_t max_len) const {
  if (i >= fields.size()) return field_error(what, "is missing");
  if (fields[i].type != msgpack::type::STR) return field_error(what, "must be a string");
  const auto& s = fields[i].via.str;
  if (s.size > max_len) return field_error(what, "is longer than " + std::to_string(max_len) + " bytes");
  return std::string(s.ptr, s.size);
}

Result<std::vector<uint8_t>> Message::get_bin(size_t i, const char* what, size_t max_len) const {
  if (i >= fields.size()) return field_error(what, "is missing");
  if (fields[i].type != msgpack::type::BIN) return field_error(what, "must be binary");
  const auto& b = fields[i].via.bin;
  if (b.size > max_len) return field_error(what, "is longer than " + std::to_string(max_len) + " bytes");
  const auto* p = reinterpret_cast<const uint8_t*>(b.ptr);
  return std::vector<uint8_t>(p, p + b.size);
}

Result<std::vector<std::string>> Message::get_str_list(size_t i, const char* what, size_t max_len) const {
  if (i >= fields.size()) return field_error(what, "is missing");
  if (fields[i].type != msgpack::type::ARRAY) return field_error(what, "must be a list");
  const auto& arr = fields[i].via.array;
  std::vector<std::string> out;
  out.reserve(arr.size);
  for (uint32_t k = 0; k < arr.size; ++k) {
    const auto& o = arr.ptr[k];
    if (o.type != msgpack::type::STR && o.type != msgpack::type::BIN) return field_error(what, "must hold strings");
    const size_t n = o.type == msgpack::type::STR ? o.via.str.size : o.via.bin.size;
    if (n > max_len) return field_error(what, "holds a string longer than " + std::to_string(max_len) + " bytes");
    out.emplace_back(o.type == msgpack::type::STR ? o.via.str.ptr : o.via.bin.ptr, n);
  }
  return out;
}

Result<std::vector<uint64_t>> Message::get_uint_list(size_t i, const char* what, size_t max_count) const {
  if (i >= fields.size()) return field_error(what, "is missing");
  if (fields[i].type != msgpack::type::ARRAY) return field_error(what, "must be a list");
  const auto& arr = fields[i].via.array;
  if (arr.size > max_count) return field_error(what, "holds more than " + std::to_string(max_count) + " numbers");
  std::vector<uint64_t> out;
  out.reserve(arr.size);
  for (uint32_t k = 0; k < arr.size; ++k) {
    if (arr.ptr[k].type != msgpack::type::POSITIVE_INTEGER) return field_error(what, "must hold unsigned integers");
    out.push_back(arr.ptr[k].via.u64);
  }
  return out;
}

Hello Hello::ours(std::string role, std::string fingerprint) {
  return Hello{kProtocolVersion, std::move(role), std::move(fingerprint), RCP_VERSION};
}

std::string Hello::banner() const {
  return "RCPD " + std::to_string(protocol_version) + " " + fingerprint + " " + software;
}

std::vector<uint8_t> Hello::encode() const {
  return encode_message(MsgType::hello, protocol_version, role, fingerprint, software);
}

Result<Hello> Hello::decode(const Message& m) {
  if (m.type != static_cast<uint32_t>(MsgType::hello))
    return make_error(Errc::protocol, "expected a hello, got message type " + std::to_string(m.type));
  auto version = m.get_uint(0, "protocol_version", std::numeric_limits<uint32_t>::max());
  if (!version) return version.error();
  auto role = m.get_str(1, "role", kMaxHelloString);
  if (!role) return role.error();
  auto fingerprint = m.get_str(2, "fingerprint", kMaxHelloString);
  if (!fingerprint) return fingerprint.error();
  auto software = m.get_str(3, "software");
  if (!software) return software.error();
  // Fields after these are from a newer peer: ignored, as the protocol allows.
  Hello h;
  h.protocol_version = static_cast<uint32_t>(*version);
  h.role = std::move(*role);
  h.fingerprint = std::move(*fingerprint);
  h.software = std::move(*software);
  return h;
}

}  // namespace rcp
