#include "message.h"

namespace rcp {

namespace {

constexpr size_t kMaxContainer = 4096;
constexpr size_t kMaxDepth = 8;

Error field_error(const char* what, const std::string& problem) {
  return make_error(Errc::protocol, std::string("message field '") + what + "' " + problem);
}

}  // namespace

Result<Message> decode_message(std::span<const uint8_t> body) {
  if (body.empty()) return make_error(Errc::protocol, "empty message");
  Message m;
  size_t offset = 0;
  try {
    // Every declared size is capped by the body size, so a hostile length
    // cannot make the unpacker allocate more than the frame already holds.
    msgpack::unpack_limit limit(kMaxContainer, kMaxContainer, body.size(), body.size(), body.size(), kMaxDepth);
    m.handle = msgpack::unpack(reinterpret_cast<const char*>(body.data()), body.size(), offset, nullptr, nullptr,
                               limit);
  } catch (const msgpack::unpack_error& e) {
    return make_error(Errc::protocol, std::string("malformed msgpack: ") + e.what());
  } catch (const std::bad_alloc&) {
    return make_error(Errc::protocol, "msgpack message too large to decode");
  } catch (const std::exception& e) {
    return make_error(Errc::protocol, std::string("malformed msgpack: ") + e.what());
  }
  if (offset != body.size()) return make_error(Errc::protocol, "trailing bytes after the message");
  const msgpack::object& root = m.handle.get();
  if (root.type != msgpack::type::ARRAY || root.via.array.size == 0)
    return make_error(Errc::protocol, "a message must be a non-empty array");
  const msgpack::object& type = root.via.array.ptr[0];
  if (type.type != msgpack::type::POSITIVE_INTEGER || type.via.u64 == 0 || type.via.u64 > UINT32_MAX)
    return make_error(Errc::protocol, "message type must be a positive 32-bit integer");
  m.type = static_cast<uint32_t>(type.via.u64);
  m.fields = std::span<const msgpack::object>(root.via.array.ptr + 1, root.via.array.size - 1);
  return m;
}

Result<uint64_t> Message::get_uint(size_t i, const char* what) const {
  if (i >= fields.size()) return field_error(what, "is missing");
  if (fields[i].type != msgpack::type::POSITIVE_INTEGER) return field_error(what, "must be an unsigned integer");
  return fields[i].via.u64;
}

Result<std::string> Message::get_str(size_t i, const char* what, size_t max_len) const {
  if (i >= fields.size()) return field_error(what, "is missing");
  if (fields[i].type != msgpack::type::STR) return field_error(what, "must be a string");
  if (fields[i].via.str.size > max_len) return field_error(what, "is longer than " + std::to_string(max_len));
  return std::string(fields[i].via.str.ptr, fields[i].via.str.size);
}

Result<std::vector<uint8_t>> Message::get_bin(size_t i, const char* what, size_t max_len) const {
  if (i >= fields.size()) return field_error(what, "is missing");
  if (fields[i].type != msgpack::type::BIN) return field_error(what, "must be binary");
  if (fields[i].via.bin.size > max_len) return field_error(what, "is longer than " + std::to_string(max_len));
  const auto* p = reinterpret_cast<const uint8_t*>(fields[i].via.bin.ptr);
  return std::vector<uint8_t>(p, p + fields[i].via.bin.size);
}

std::vector<uint8_t> Hello::encode() const {
  return encode_message(MsgType::hello, protocol_version, role, fingerprint, software);
}

Result<Hello> Hello::decode(const Message& m) {
  if (m.type != static_cast<uint32_t>(MsgType::hello))
    return make_error(Errc::protocol, "expected a hello, got message type " + std::to_string(m.type));
  Hello h;
  auto version = m.get_uint(0, "protocol_version");
  if (!version) return version.error();
  if (*version > UINT32_MAX) return field_error("protocol_version", "is out of range");
  h.protocol_version = static_cast<uint32_t>(*version);
  auto role = m.get_str(1, "role", 128);
  if (!role) return role.error();
  auto fp = m.get_str(2, "fingerprint", 128);
  if (!fp) return fp.error();
  auto sw = m.get_str(3, "software", 128);
  if (!sw) return sw.error();
  h.role = std::move(*role);
  h.fingerprint = std::move(*fp);
  h.software = std::move(*sw);
  return h;
}

}  // namespace rcp
