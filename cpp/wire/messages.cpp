#include "wire/messages.h"

#include <algorithm>

namespace rcp {

namespace {

// Keeps the first failure and yields a default value, so a decoder reads
// its fields in order and checks once at the end.
template <typename T>
T take(Result<T> r, Error& first) {
  if (r) return std::move(*r);
  if (first.code == Errc::ok) first = r.error();
  return T{};
}

bool is_error(const Error& e) { return e.code != Errc::ok; }

Error refuse(const char* message, const std::string& why) {
  return make_error(Errc::protocol, std::string("malformed ") + message + " message: " + why);
}

uint16_t take_port(const Message& m, size_t i, Error& err) {
  auto port = take(m.get_uint(i, "port", 65535), err);
  if (!is_error(err) && port == 0) err = make_error(Errc::protocol, "message field 'port' must not be 0");
  return static_cast<uint16_t>(port);
}

uint32_t take_u32(const Message& m, size_t i, const char* what, Error& err, uint32_t max = UINT32_MAX) {
  return static_cast<uint32_t>(take(m.get_uint(i, what, max), err));
}

std::vector<std::vector<std::string>> pairs_of(const std::vector<std::pair<std::string, std::string>>& v) {
  std::vector<std::vector<std::string>> out;
  out.reserve(v.size());
  for (const auto& [a, b] : v) out.push_back({a, b});
  return out;
}

}  // namespace

std::string bound_error_text(const std::string& text) {
  if (text.size() <= kMaxErrorText) return text;
  return text.substr(0, kMaxErrorText / 2 - 2) + "..." + text.substr(text.size() - kMaxErrorText / 2 + 2);
}

std::vector<uint8_t> ExpectPeerMsg::encode() const {
  return encode_message(MsgType::expect_peer, fingerprint, transport);
}

Result<ExpectPeerMsg> ExpectPeerMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::expect_peer, "expect_peer"); !r) return r.error();
  Error err;
  ExpectPeerMsg x{take(m.get_str(0, "fingerprint", kMaxFingerprintText), err)};
  if (m.fields.size() > 1) x.transport = take(m.get_str(1, "transport", kMaxTransportText), err);  // appended
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> ListeningMsg::encode() const { return encode_message(MsgType::listening, port, addresses); }

Result<ListeningMsg> ListeningMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::listening, "listening"); !r) return r.error();
  Error err;
  ListeningMsg x;
  x.port = take_port(m, 0, err);
  x.addresses = take(m.get_str_list(1, "addresses", kMaxHostText), err);
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> ConnectPeerMsg::encode() const {
  return encode_message(MsgType::connect_peer, addresses, port, fingerprint, transport, fallback_timeout_ms);
}

Result<ConnectPeerMsg> ConnectPeerMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::connect_peer, "connect_peer"); !r) return r.error();
  Error err;
  ConnectPeerMsg x;
  x.addresses = take(m.get_str_list(0, "addresses", kMaxHostText), err);
  if (m.fields.size() > 3) x.transport = take(m.get_str(3, "transport", kMaxTransportText), err);  // appended
  // Relayed, the destination reaches the source through the master: port 0
  // and no address, as docs/protocol.md says (nothing to mistake for a route).
  if (x.transport == kTransportRelay) {
    x.port = static_cast<uint16_t>(take(m.get_uint(1, "port", 0), err));
    if (!is_error(err) && !x.addresses.empty())
      err = make_error(Errc::protocol, "message field 'addresses' must be empty when relayed");
  } else {
    x.port = take_port(m, 1, err);
  }
  x.fingerprint = take(m.get_str(2, "fingerprint", kMaxFingerprintText), err);
  if (m.fields.size() > 4) x.fallback_timeout_ms = take_u32(m, 4, "fallback_timeout_ms", err, kMaxFallbackTimeoutMs);
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> PeerConnectedMsg::encode() const { return encode_message(MsgType::peer_connected, transport); }

Result<PeerConnectedMsg> PeerConnectedMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::peer_connected, "peer_connected"); !r) return r.error();
  Error err;
  PeerConnectedMsg x;
  if (!m.fields.empty()) x.transport = take(m.get_str(0, "transport", kMaxTransportText), err);  // appended
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> SendMsg::encode() const {
  if (!checksum) return encode_message(MsgType::send, paths, resolve);
  return encode_message(MsgType::send, paths, resolve, checksum);
}

Result<SendMsg> SendMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::send, "send"); !r) return r.error();
  Error err;
  SendMsg x{take(m.get_str_list(0, "paths", kMaxPathBytes), err)};
  if (m.fields.size() > 1) x.resolve = take(m.get_bool(1, "resolve"), err);    // appended
  if (m.fields.size() > 2) x.checksum = take(m.get_bool(2, "checksum"), err);  // appended in protocol 4
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> ReceiveMsg::encode() const {
  std::vector<std::string> flat;
  for (const auto& r : root_rules) {
    flat.push_back(r.kind);
    flat.push_back(r.text);
  }
  if (wildcards.empty() && !update && !ignore_existing && !checksum)  // left to the rules, as an older master does
    return encode_message(MsgType::receive, path, sources, trailing_slash, overwrite, flat, fsync, resolve);
  std::vector<uint8_t> w = wildcards;
  if (w.empty())
    for (const auto& r : root_rules) w.push_back(r.kind == "glob" ? 1 : 0);
  return encode_message(MsgType::receive, path, sources, trailing_slash, overwrite, flat, fsync, resolve, w, update,
                        ignore_existing, checksum);
}

Result<ReceiveMsg> ReceiveMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::receive, "receive"); !r) return r.error();
  Error err;
  ReceiveMsg x;
  x.path = take(m.get_str(0, "path", kMaxPathBytes), err);
  x.sources = take_u32(m, 1, "sources", err, kMaxSources);
  x.trailing_slash = take(m.get_bool(2, "trailing_slash"), err);
  x.overwrite = take(m.get_bool(3, "overwrite"), err);
  auto flat = take(m.get_str_list(4, "root_rules", kMaxPathBytes), err);
  if (m.fields.size() > 5) x.fsync = take(m.get_bool(5, "fsync"), err);      // appended in protocol 2
  if (m.fields.size() > 6) x.resolve = take(m.get_bool(6, "resolve"), err);  // appended
  const bool has_wildcards = m.fields.size() > 7;                            // appended
  if (has_wildcards) x.wildcards = take(m.get_bin(7, "wildcards", kMaxSources), err);
  if (m.fields.size() > 8) x.update = take(m.get_bool(8, "update"), err);  // appended in protocol 4
  if (m.fields.size() > 9) x.ignore_existing = take(m.get_bool(9, "ignore_existing"), err);
  if (m.fields.size() > 10) x.checksum = take(m.get_bool(10, "checksum"), err);
  if (is_error(err)) return err;
  if (static_cast<int>(x.overwrite) + static_cast<int>(x.update) + static_cast<int>(x.ignore_existing) > 1)
    return refuse("receive", "at most one of overwrite, update and ignore_existing");
  if (x.sources == 0) return refuse("receive", "no sources");
  if (flat.size() != 2 * static_cast<size_t>(x.sources)) return refuse("receive", "one root rule per source");
  for (size_t i = 0; i < flat.size(); i += 2) x.root_rules.push_back({std::move(flat[i]), std::move(flat[i + 1])});
  if (!has_wildcards) {
    for (const auto& r : x.root_rules) x.wildcards.push_back(r.kind == "glob" ? 1 : 0);
  } else if (x.wildcards.size() != x.sources) {
    return refuse("receive", "one wildcards byte per source");
  } else if (std::any_of(x.wildcards.begin(), x.wildcards.end(), [](uint8_t b) { return b > 1; })) {
    return refuse("receive", "a wildcards byte other than 0 or 1");
  }
  return x;
}

std::vector<uint8_t> AbortMsg::encode() const { return encode_message(MsgType::abort, bound_error_text(reason)); }

Result<AbortMsg> AbortMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::abort, "abort"); !r) return r.error();
  Error err;
  AbortMsg x{take(m.get_str(0, "reason", kMaxErrorText), err)};
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> ProgressMsg::encode() const {
  return encode_message(MsgType::progress, bytes_done, files_done, bytes_total, files_total, current);
}

Result<ProgressMsg> ProgressMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::progress, "progress"); !r) return r.error();
  Error err;
  ProgressMsg x{take(m.get_uint(0, "bytes_done"), err), take(m.get_uint(1, "files_done"), err),
                take(m.get_uint(2, "bytes_total"), err), take(m.get_uint(3, "files_total"), err)};
  if (m.fields.size() > 4) x.current = take(m.get_str(4, "current", kMaxPathBytes), err);  // appended in 5
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> LogMsg::encode() const { return encode_message(MsgType::log, level, text); }

Result<LogMsg> LogMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::log, "log"); !r) return r.error();
  Error err;
  LogMsg x{take(m.get_str(0, "level", kMaxLogLevelText), err), take(m.get_str(1, "text", kMaxLogText), err)};
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> ErrorMsg::encode() const { return encode_message(MsgType::error, bound_error_text(text)); }

Result<ErrorMsg> ErrorMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::error, "error"); !r) return r.error();
  Error err;
  ErrorMsg x{take(m.get_str(0, "text", kMaxErrorText), err)};
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> ResultMsg::encode() const {
  std::vector<std::string> paths(
      kept_paths.begin(), kept_paths.begin() + static_cast<ptrdiff_t>(std::min(kept_paths.size(), kMaxKeptPaths)));
  return encode_message(MsgType::result, files, bytes, dirs, symlinks, kept, failed, pairs_of(errors), unchanged,
                        ignored, paths);
}

Result<ResultMsg> ResultMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::result, "result"); !r) return r.error();
  Error err;
  ResultMsg x{take(m.get_uint(0, "files"), err),
              take(m.get_uint(1, "bytes"), err),
              take(m.get_uint(2, "dirs"), err),
              take(m.get_uint(3, "symlinks"), err),
              take(m.get_uint(4, "kept"), err),
              take(m.get_uint(5, "failed"), err),
              {},
              0,
              0,
              {}};
  if (is_error(err)) return err;
  if (m.fields.size() <= 6 || m.fields[6].type != msgpack::type::ARRAY)
    return refuse("result", "errors must be a list");
  const auto& list = m.fields[6].via.array;
  for (uint32_t i = 0; i < list.size; ++i) {
    const auto& e = list.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size < 2) return refuse("result", "an error is not [path, text]");
    // One entry is a message of its own: its two fields decode the usual way.
    Message entry;
    entry.fields = std::span<const msgpack::object>(e.via.array.ptr, e.via.array.size);
    auto path = take(entry.get_str(0, "error path", kMaxPathBytes), err);
    auto text = take(entry.get_str(1, "error text", kMaxLogText), err);
    if (is_error(err)) return err;
    x.errors.emplace_back(std::move(path), std::move(text));
  }
  if (m.fields.size() > 7) x.unchanged = take(m.get_uint(7, "unchanged"), err);  // appended in protocol 4
  if (m.fields.size() > 8) x.ignored = take(m.get_uint(8, "ignored"), err);
  if (m.fields.size() > 9) x.kept_paths = take(m.get_str_list(9, "kept_paths", kMaxPathBytes), err);
  if (is_error(err)) return err;
  if (x.kept_paths.size() > kMaxKeptPaths) return refuse("result", "too many kept paths");
  return x;
}

std::vector<uint8_t> RootMsg::encode() const {
  return encode_message(MsgType::root, index, name, std::string(1, kind), bound_error_text(error), operand_index(),
                        roots);
}

Result<RootMsg> RootMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::root, "root"); !r) return r.error();
  Error err;
  RootMsg x;
  x.index = take_u32(m, 0, "index", err);
  x.name = take(m.get_str(1, "name", kMaxNameBytes), err);
  auto kind = take(m.get_str(2, "kind", 1), err);
  x.error = take(m.get_str(3, "error", kMaxErrorText), err);
  x.operand = m.fields.size() > 4 ? take_u32(m, 4, "operand", err) : x.index;  // appended: absent = index
  if (m.fields.size() > 5) x.roots = take_u32(m, 5, "roots", err, kMaxRoots);
  if (is_error(err)) return err;
  x.kind = kind.empty() ? '?' : kind[0];
  if (x.kind != 'f' && x.kind != 'd' && x.kind != 'l' && x.kind != '?')
    return refuse("root", "kind must be f, d, l or ?");
  return x;
}

std::vector<uint8_t> DirMsg::encode() const {
  return encode_message(MsgType::dir, index, relpath, mode, mtime_s, mtime_ns);
}

Result<DirMsg> DirMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::dir, "dir"); !r) return r.error();
  Error err;
  DirMsg x;
  x.index = take_u32(m, 0, "index", err);
  x.relpath = take(m.get_str(1, "relpath", kMaxPathBytes), err);
  x.mode = take_u32(m, 2, "mode", err, 07777);
  x.mtime_s = take(m.get_int(3, "mtime_s"), err);
  x.mtime_ns = take_u32(m, 4, "mtime_ns", err, 999999999);
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> SymlinkMsg::encode() const {
  return encode_message(MsgType::symlink, index, relpath, target, mtime_s, mtime_ns);
}

Result<SymlinkMsg> SymlinkMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::symlink, "symlink"); !r) return r.error();
  Error err;
  SymlinkMsg x;
  x.index = take_u32(m, 0, "index", err);
  x.relpath = take(m.get_str(1, "relpath", kMaxPathBytes), err);
  x.target = take(m.get_str(2, "target", kMaxLinkTarget), err);
  x.mtime_s = take(m.get_int(3, "mtime_s"), err);
  x.mtime_ns = take_u32(m, 4, "mtime_ns", err, 999999999);
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> FilesMsg::encode() const {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(3);
  pk.pack(static_cast<uint32_t>(MsgType::files));
  pk.pack(first);
  pk.pack_array(static_cast<uint32_t>(files.size()));
  for (const auto& f : files) {
    pk.pack_array(7);
    pk.pack(f.index);
    pk.pack(f.relpath);
    pk.pack(f.size);
    pk.pack(f.mtime_s);
    pk.pack(f.mtime_ns);
    pk.pack(f.mode);
    pk.pack_bin(static_cast<uint32_t>(f.digest.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(f.digest.data()), static_cast<uint32_t>(f.digest.size()));
  }
  const auto* p = reinterpret_cast<const uint8_t*>(buf.data());
  return std::vector<uint8_t>(p, p + buf.size());
}

Result<FilesMsg> FilesMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::files, "files"); !r) return r.error();
  Error err;
  FilesMsg x;
  x.first = take(m.get_uint(0, "first"), err);
  if (is_error(err)) return err;
  if (m.fields.size() <= 1 || m.fields[1].type != msgpack::type::ARRAY) return refuse("files", "files must be a list");
  const auto& list = m.fields[1].via.array;
  if (list.size == 0 || list.size > kMaxFilesPerMsg) return refuse("files", "1 to 1024 files");
  x.files.reserve(list.size);
  for (uint32_t i = 0; i < list.size; ++i) {
    const auto& e = list.ptr[i];
    if (e.type != msgpack::type::ARRAY) return refuse("files", "a file is not a list");
    // One entry is a message of its own: its fields decode the usual way.
    Message entry;
    entry.fields = std::span<const msgpack::object>(e.via.array.ptr, e.via.array.size);
    FileEntry f;
    f.index = take_u32(entry, 0, "index", err);
    f.relpath = take(entry.get_str(1, "relpath", kMaxPathBytes), err);
    f.size = take(entry.get_uint(2, "size"), err);
    f.mtime_s = take(entry.get_int(3, "mtime_s"), err);
    f.mtime_ns = take_u32(entry, 4, "mtime_ns", err, 999999999);
    f.mode = take_u32(entry, 5, "mode", err, 07777);
    f.digest = take(entry.get_bin(6, "digest", 16), err);
    if (is_error(err)) return err;
    if (!f.digest.empty() && f.digest.size() != 16) return refuse("files", "a digest is 16 bytes or none");
    x.files.push_back(std::move(f));
  }
  if (x.first > UINT64_MAX - x.files.size()) return refuse("files", "numbers past 2^64");
  return x;
}

std::vector<uint8_t> VerdictsMsg::encode() const {
  std::vector<uint8_t> bytes(verdicts.size());
  for (size_t i = 0; i < verdicts.size(); ++i) bytes[i] = static_cast<uint8_t>(verdicts[i]);
  return encode_message(MsgType::verdicts, first, bytes);
}

Result<VerdictsMsg> VerdictsMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::verdicts, "verdicts"); !r) return r.error();
  Error err;
  VerdictsMsg x;
  x.first = take(m.get_uint(0, "first"), err);
  auto bytes = take(m.get_bin(1, "verdicts", FilesMsg::kMaxFilesPerMsg), err);
  if (is_error(err)) return err;
  if (bytes.empty()) return refuse("verdicts", "no verdicts");
  for (uint8_t b : bytes) {
    if (b > static_cast<uint8_t>(FileVerdict::failed))
      return refuse("verdicts", "unknown verdict " + std::to_string(b));
    x.verdicts.push_back(static_cast<FileVerdict>(b));
  }
  return x;
}

std::vector<uint8_t> SourceErrorMsg::encode() const {
  return encode_message(MsgType::source_error, index, relpath, bound_error_text(text));
}

Result<SourceErrorMsg> SourceErrorMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::source_error, "source_error"); !r) return r.error();
  Error err;
  SourceErrorMsg x;
  x.index = take_u32(m, 0, "index", err);
  x.relpath = take(m.get_str(1, "relpath", kMaxPathBytes), err);
  x.text = take(m.get_str(2, "text", kMaxErrorText), err);
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> DoneMsg::encode() const { return encode_message(MsgType::done, files, bytes); }

Result<DoneMsg> DoneMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::done, "done"); !r) return r.error();
  Error err;
  DoneMsg x{take(m.get_uint(0, "files"), err), take(m.get_uint(1, "bytes"), err)};
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> FinishedMsg::encode() const { return encode_message(MsgType::finished); }

Result<FinishedMsg> FinishedMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::finished, "finished"); !r) return r.error();
  return FinishedMsg{};
}

}  // namespace rcp
