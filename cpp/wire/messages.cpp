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

// [device, inode], or [] for none; any other length is refused.
std::optional<std::array<uint64_t, 2>> take_inode(const Message& m, size_t i, const char* what, Error& err) {
  auto list = take(m.get_uint_list(i, what, 2), err);
  if (list.empty()) return std::nullopt;
  if (list.size() != 2 && !is_error(err))
    err = make_error(Errc::protocol, std::string("message field '") + what + "' must be [] or [device, inode]");
  if (list.size() != 2) return std::nullopt;
  return std::array<uint64_t, 2>{list[0], list[1]};
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
  const bool v5 = !filters.empty() || !sparse || hard_links || owners || xattrs || acls || keep_capabilities ||
                  dereference || bandwidth_limit != 0 || partial || inodes;
  if (inodes)
    return encode_message(MsgType::send, paths, resolve, checksum, filters, sparse, hard_links, owners, xattrs, acls,
                          keep_capabilities, dereference, bandwidth_limit, partial, inodes);
  if (v5)
    return encode_message(MsgType::send, paths, resolve, checksum, filters, sparse, hard_links, owners, xattrs, acls,
                          keep_capabilities, dereference, bandwidth_limit, partial);
  if (!checksum) return encode_message(MsgType::send, paths, resolve);
  return encode_message(MsgType::send, paths, resolve, checksum);
}

namespace {

// A filter list bounded in count and length (its rules are parsed later).
std::vector<std::string> take_filters(const Message& m, size_t i, Error& err) {
  auto list = take(m.get_str_list(i, "filters", kMaxFilterRuleBytes), err);
  if (list.size() > kMaxFilterRules && !is_error(err))
    err = make_error(Errc::protocol, "more than " + std::to_string(kMaxFilterRules) + " filter rules");
  return list;
}

}  // namespace

Result<SendMsg> SendMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::send, "send"); !r) return r.error();
  Error err;
  SendMsg x{take(m.get_str_list(0, "paths", kMaxPathBytes), err)};
  if (m.fields.size() > 1) x.resolve = take(m.get_bool(1, "resolve"), err);    // appended
  if (m.fields.size() > 2) x.checksum = take(m.get_bool(2, "checksum"), err);  // appended in protocol 4
  if (m.fields.size() > 3) x.filters = take_filters(m, 3, err);                // appended in protocol 5
  if (m.fields.size() > 4) x.sparse = take(m.get_bool(4, "sparse"), err);
  if (m.fields.size() > 5) x.hard_links = take(m.get_bool(5, "hard_links"), err);
  if (m.fields.size() > 6) x.owners = take(m.get_bool(6, "owners"), err);
  if (m.fields.size() > 7) x.xattrs = take(m.get_bool(7, "xattrs"), err);
  if (m.fields.size() > 8) x.acls = take(m.get_bool(8, "acls"), err);
  if (m.fields.size() > 9) x.keep_capabilities = take(m.get_bool(9, "keep_capabilities"), err);
  if (m.fields.size() > 10) x.dereference = take(m.get_bool(10, "dereference"), err);
  if (m.fields.size() > 11) x.bandwidth_limit = take(m.get_uint(11, "bandwidth_limit"), err);
  if (m.fields.size() > 12) x.partial = take(m.get_bool(12, "partial"), err);
  if (m.fields.size() > 13) x.inodes = take(m.get_bool(13, "inodes"), err);
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> ReceiveMsg::encode() const {
  std::vector<std::string> flat;
  for (const auto& r : root_rules) {
    flat.push_back(r.kind);
    flat.push_back(r.text);
  }
  const bool v5 = !filters.empty() || delete_extraneous || delete_excluded || dry_run || owner != kOff ||
                  group != kOff || numeric_ids || xattrs || acls || keep_capabilities || partial || hard_links;
  if (wildcards.empty() && !update && !ignore_existing && !checksum &&
      !v5)  // left to the rules, as an older master does
    return encode_message(MsgType::receive, path, sources, trailing_slash, overwrite, flat, fsync, resolve);
  std::vector<uint8_t> w = wildcards;
  if (w.empty())
    for (const auto& r : root_rules) w.push_back(r.kind == "glob" ? 1 : 0);
  if (v5)
    return encode_message(MsgType::receive, path, sources, trailing_slash, overwrite, flat, fsync, resolve, w, update,
                          ignore_existing, checksum, filters, delete_extraneous, delete_excluded, dry_run, owner, group,
                          numeric_ids, xattrs, acls, keep_capabilities, partial, hard_links);
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
  if (m.fields.size() > 11) x.filters = take_filters(m, 11, err);  // appended in protocol 5
  if (m.fields.size() > 12) x.delete_extraneous = take(m.get_bool(12, "delete"), err);
  if (m.fields.size() > 13) x.delete_excluded = take(m.get_bool(13, "delete_excluded"), err);
  if (m.fields.size() > 14) x.dry_run = take(m.get_bool(14, "dry_run"), err);
  if (m.fields.size() > 15) x.owner = static_cast<uint8_t>(take_u32(m, 15, "owner", err, kAuto));
  if (m.fields.size() > 16) x.group = static_cast<uint8_t>(take_u32(m, 16, "group", err, kAuto));
  if (m.fields.size() > 17) x.numeric_ids = take(m.get_bool(17, "numeric_ids"), err);
  if (m.fields.size() > 18) x.xattrs = take(m.get_bool(18, "xattrs"), err);
  if (m.fields.size() > 19) x.acls = take(m.get_bool(19, "acls"), err);
  if (m.fields.size() > 20) x.keep_capabilities = take(m.get_bool(20, "keep_capabilities"), err);
  if (m.fields.size() > 21) x.partial = take(m.get_bool(21, "partial"), err);
  if (m.fields.size() > 22) x.hard_links = take(m.get_bool(22, "hard_links"), err);
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
                        ignored, paths, deleted, plan_omitted, sparse_bytes, hard_links, resumed_bytes);
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
  if (m.fields.size() > 10) x.deleted = take(m.get_uint(10, "deleted"), err);  // appended in protocol 5
  if (m.fields.size() > 11) x.plan_omitted = take(m.get_uint(11, "plan_omitted"), err);
  if (m.fields.size() > 12) x.sparse_bytes = take(m.get_uint(12, "sparse_bytes"), err);
  if (m.fields.size() > 13) x.hard_links = take(m.get_uint(13, "hard_links"), err);
  if (m.fields.size() > 14) x.resumed_bytes = take(m.get_uint(14, "resumed_bytes"), err);
  if (is_error(err)) return err;
  if (x.kept_paths.size() > kMaxKeptPaths) return refuse("result", "too many kept paths");
  return x;
}

const char* plan_action_name(PlanAction a) {
  switch (a) {
    case PlanAction::create: return "create";
    case PlanAction::update: return "update";
    case PlanAction::unchanged: return "unchanged";
    case PlanAction::kept: return "kept";
    case PlanAction::ignored: return "ignored";
    case PlanAction::remove: return "delete";
  }
  return "?";
}

std::vector<uint8_t> PlanMsg::encode() const {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(2);
  pk.pack(static_cast<uint32_t>(MsgType::plan));
  pk.pack_array(static_cast<uint32_t>(entries.size()));
  for (const auto& e : entries) {
    pk.pack_array(e.inode ? 4 : 3);
    pk.pack(std::string(plan_action_name(e.action)));
    pk.pack(e.path);
    pk.pack(e.size);
    if (e.inode) pk.pack(std::vector<uint64_t>{(*e.inode)[0], (*e.inode)[1]});
  }
  return {reinterpret_cast<const uint8_t*>(buf.data()), reinterpret_cast<const uint8_t*>(buf.data()) + buf.size()};
}

Result<PlanMsg> PlanMsg::decode(const Message& m) {
  if (auto r = m.expect_type(MsgType::plan, "plan"); !r) return r.error();
  if (m.fields.empty() || m.fields[0].type != msgpack::type::ARRAY) return refuse("plan", "entries must be a list");
  const auto& list = m.fields[0].via.array;
  if (list.size == 0 || list.size > kMaxPlanPerMsg)
    return refuse("plan", "1.." + std::to_string(kMaxPlanPerMsg) + " entries");
  PlanMsg x;
  Error err;
  for (uint32_t i = 0; i < list.size; ++i) {
    const auto& e = list.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size < 3)
      return refuse("plan", "an entry is not [action, path, size]");
    Message entry;
    entry.fields = std::span<const msgpack::object>(e.via.array.ptr, e.via.array.size);
    auto action = take(entry.get_str(0, "plan action", 16), err);
    PlanEntry pe;
    pe.path = take(entry.get_str(1, "plan path", kMaxPathBytes), err);
    pe.size = take(entry.get_uint(2, "plan size"), err);
    if (entry.fields.size() > 3) pe.inode = take_inode(entry, 3, "plan inode", err);  // appended in protocol 5
    if (is_error(err)) return err;
    bool known = false;
    for (auto a : {PlanAction::create, PlanAction::update, PlanAction::unchanged, PlanAction::kept, PlanAction::ignored,
                   PlanAction::remove})
      if (action == plan_action_name(a)) {
        pe.action = a;
        known = true;
      }
    if (!known) return refuse("plan", "unknown action");
    x.entries.push_back(std::move(pe));
  }
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

namespace {

// An optional Ownership as [] or [uid, gid, user, group]; extended attributes
// as a flat [name, value, ...]: msgpack adaptors for encode_message.
struct OwnerField {
  const std::optional<Ownership>& owner;
};
struct XattrsField {
  const Xattrs& xattrs;
};

// An appended Ownership at field `at`, when there.
std::optional<Ownership> take_owner(const Message& m, size_t at, Error& err) {
  if (m.fields.size() <= at || is_error(err)) return std::nullopt;
  if (m.fields[at].type != msgpack::type::ARRAY) {
    err = make_error(Errc::protocol, "message field 'owner' must be a list");
    return std::nullopt;
  }
  const auto& arr = m.fields[at].via.array;
  if (arr.size == 0) return std::nullopt;
  if (arr.size != 4) {
    err = make_error(Errc::protocol, "message field 'owner' must be [uid, gid, user, group]");
    return std::nullopt;
  }
  Message owner;
  owner.fields = std::span<const msgpack::object>(arr.ptr, arr.size);
  Ownership o;
  // -1 is "leave as is" to the kernel, never an owner.
  o.uid = take_u32(owner, 0, "uid", err, UINT32_MAX - 1);
  o.gid = take_u32(owner, 1, "gid", err, UINT32_MAX - 1);
  o.user = take(owner.get_str(2, "user", kMaxOwnerName), err);
  o.group = take(owner.get_str(3, "group", kMaxOwnerName), err);
  return o;
}

Xattrs take_xattrs(const Message& m, size_t at, Error& err) {
  Xattrs out;
  if (m.fields.size() <= at || is_error(err)) return out;
  if (m.fields[at].type != msgpack::type::ARRAY) {
    err = make_error(Errc::protocol, "message field 'xattrs' must be a list");
    return out;
  }
  const auto& arr = m.fields[at].via.array;
  if (arr.size % 2 != 0 || arr.size > 2 * kMaxXattrs) {
    err = make_error(Errc::protocol, "message field 'xattrs' must hold at most 256 name, value pairs");
    return out;
  }
  Message list;
  list.fields = std::span<const msgpack::object>(arr.ptr, arr.size);
  size_t bytes = 0;
  for (size_t i = 0; i < arr.size; i += 2) {
    std::string name = take(list.get_str(i, "xattr name", kMaxXattrName), err);
    auto value = take(list.get_bin(i + 1, "xattr value", kMaxXattrValue), err);
    if (is_error(err)) return {};
    bytes += name.size() + value.size();
    if (name.empty() || name.find('\0') != std::string::npos || bytes > kMaxXattrBytes) {
      err = make_error(Errc::protocol, "extended attributes: an empty or bad name, or more than 256 KiB");
      return {};
    }
    out.emplace_back(std::move(name), std::string(value.begin(), value.end()));
  }
  return out;
}

}  // namespace
}  // namespace rcp

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {
  template <>
  struct pack<rcp::OwnerField> {
    template <typename Stream>
    packer<Stream>& operator()(packer<Stream>& pk, const rcp::OwnerField& v) const {
      if (!v.owner) return pk.pack_array(0);
      pk.pack_array(4);
      pk.pack(v.owner->uid);
      pk.pack(v.owner->gid);
      pk.pack(v.owner->user);
      return pk.pack(v.owner->group);
    }
  };
  template <>
  struct pack<rcp::XattrsField> {
    template <typename Stream>
    packer<Stream>& operator()(packer<Stream>& pk, const rcp::XattrsField& v) const {
      pk.pack_array(static_cast<uint32_t>(2 * v.xattrs.size()));
      for (const auto& [name, value] : v.xattrs) {
        pk.pack(name);
        pk.pack_bin(static_cast<uint32_t>(value.size()));
        pk.pack_bin_body(value.data(), static_cast<uint32_t>(value.size()));
      }
      return pk;
    }
  };
  }  // namespace adaptor
}
}  // namespace msgpack

namespace rcp {

std::vector<uint8_t> DirMsg::encode() const {
  if (owner || !xattrs.empty())
    return encode_message(MsgType::dir, index, relpath, mode, mtime_s, mtime_ns, OwnerField{owner},
                          XattrsField{xattrs});
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
  x.owner = take_owner(m, 5, err);  // appended in protocol 5
  x.xattrs = take_xattrs(m, 6, err);
  if (is_error(err)) return err;
  return x;
}

std::vector<uint8_t> SymlinkMsg::encode() const {
  if (owner || !xattrs.empty())
    return encode_message(MsgType::symlink, index, relpath, target, mtime_s, mtime_ns, OwnerField{owner},
                          XattrsField{xattrs});
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
  x.owner = take_owner(m, 5, err);  // appended in protocol 5
  x.xattrs = take_xattrs(m, 6, err);
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
    const bool more = f.owner || !f.xattrs.empty() || f.inode;
    pk.pack_array(f.inode ? 12 : more ? 11 : f.link_to || f.link_first ? 9 : 7);
    pk.pack(f.index);
    pk.pack(f.relpath);
    pk.pack(f.size);
    pk.pack(f.mtime_s);
    pk.pack(f.mtime_ns);
    pk.pack(f.mode);
    pk.pack_bin(static_cast<uint32_t>(f.digest.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(f.digest.data()), static_cast<uint32_t>(f.digest.size()));
    if (more || f.link_to || f.link_first) {
      pk.pack(f.link_first);
      pk.pack_array(f.link_to ? 1 : 0);
      if (f.link_to) pk.pack(*f.link_to);
    }
    if (more) {
      pk.pack(OwnerField{f.owner});
      pk.pack(XattrsField{f.xattrs});
    }
    if (f.inode) pk.pack(std::vector<uint64_t>{(*f.inode)[0], (*f.inode)[1]});
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
    if (entry.fields.size() > 7) f.link_first = take(entry.get_bool(7, "link_first"), err);  // appended in protocol 5
    if (entry.fields.size() > 8) {
      auto to = take(entry.get_uint_list(8, "link_to", 1), err);
      if (!to.empty()) f.link_to = to[0];
    }
    f.owner = take_owner(entry, 9, err);
    f.xattrs = take_xattrs(entry, 10, err);
    if (entry.fields.size() > 11) f.inode = take_inode(entry, 11, "inode", err);  // appended in protocol 5
    if (is_error(err)) return err;
    if (f.link_to && (f.link_first || *f.link_to >= x.first + i))
      return refuse("files", "a hard link to a file not announced before it");
    if (!f.digest.empty() && f.digest.size() != 16) return refuse("files", "a digest is 16 bytes or none");
    x.files.push_back(std::move(f));
  }
  if (x.first > UINT64_MAX - x.files.size()) return refuse("files", "numbers past 2^64");
  return x;
}

std::vector<uint8_t> VerdictsMsg::encode() const {
  std::vector<uint8_t> bytes(verdicts.size());
  for (size_t i = 0; i < verdicts.size(); ++i) bytes[i] = static_cast<uint8_t>(verdicts[i]);
  if (resume.empty()) return encode_message(MsgType::verdicts, first, bytes);
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(4);
  pk.pack(static_cast<uint32_t>(MsgType::verdicts));
  pk.pack(first);
  pk.pack_bin(static_cast<uint32_t>(bytes.size()));
  pk.pack_bin_body(reinterpret_cast<const char*>(bytes.data()), static_cast<uint32_t>(bytes.size()));
  pk.pack_array(static_cast<uint32_t>(resume.size()));
  for (const auto& r : resume) {
    pk.pack_array(3);
    pk.pack(r.pos);
    pk.pack_bin(static_cast<uint32_t>(r.blocks.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(r.blocks.data()), static_cast<uint32_t>(r.blocks.size()));
    pk.pack_bin(static_cast<uint32_t>(r.hashes.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(r.hashes.data()), static_cast<uint32_t>(r.hashes.size()));
  }
  const auto* p = reinterpret_cast<const uint8_t*>(buf.data());
  return std::vector<uint8_t>(p, p + buf.size());
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
    if (b > static_cast<uint8_t>(FileVerdict::linked))
      return refuse("verdicts", "unknown verdict " + std::to_string(b));
    x.verdicts.push_back(static_cast<FileVerdict>(b));
  }
  if (m.fields.size() <= 2) return x;
  // Appended in protocol 5: what the destination kept of files it wants.
  if (m.fields[2].type != msgpack::type::ARRAY) return refuse("verdicts", "resume must be a list");
  const auto& list = m.fields[2].via.array;
  if (list.size > x.verdicts.size()) return refuse("verdicts", "more resume offers than files");
  uint64_t blocks = 0;
  for (uint32_t i = 0; i < list.size; ++i) {
    const auto& e = list.ptr[i];
    if (e.type != msgpack::type::ARRAY) return refuse("verdicts", "a resume offer is not a list");
    Message entry;
    entry.fields = std::span<const msgpack::object>(e.via.array.ptr, e.via.array.size);
    ResumeOffer r;
    r.pos = take_u32(entry, 0, "pos", err);
    r.blocks = take(entry.get_bin(1, "blocks", kMaxBlockBitmap), err);
    r.hashes = take(entry.get_bin(2, "hashes", kMaxResumeBlocks * kBlockHashSize), err);
    if (is_error(err)) return err;
    if (r.pos >= x.verdicts.size() || !wants_data(x.verdicts[r.pos]))
      return refuse("verdicts", "a resume offer for a file not asked for");
    if (!x.resume.empty() && r.pos <= x.resume.back().pos) return refuse("verdicts", "resume offers out of order");
    const uint32_t kept = bits_set(r.blocks);
    if (kept == 0 || r.hashes.size() != kept * kBlockHashSize)
      return refuse("verdicts", "a resume offer needs one 32-byte hash per kept block");
    blocks += kept;
    if (blocks > kMaxResumeBlocks) return refuse("verdicts", "too many resumed blocks in one message");
    x.resume.push_back(std::move(r));
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
