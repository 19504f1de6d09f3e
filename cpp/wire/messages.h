// One typed definition of every message on the control and log streams:
// a struct per MsgType with encode() and a decode() that type-checks and
// bounds every field, as Hello and ChunkHeader do. Fields are only ever
// appended, so decoders ignore extra trailing fields; docs/protocol.md gives
// each message's fields, types and limits.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "wire/limits.h"
#include "wire/message.h"
#include "wire/partial_blocks.h"

namespace rcp {

constexpr size_t kMaxFingerprintText = 128;  // hex SHA-256 is 64
constexpr size_t kMaxHostText = 256;         // an address or host name
constexpr size_t kMaxLogLevelText = 16;
constexpr size_t kMaxLogText = kMaxPathBytes + kMaxErrorText;  // a path and why
constexpr uint32_t kMaxSources = 100000;
constexpr size_t kMaxTransportText = 16;
constexpr uint32_t kMaxFallbackTimeoutMs = 600000;  // 10 minutes
// How the source↔destination link runs (ExpectPeerMsg/ConnectPeerMsg::transport).
inline constexpr const char* kTransportQuic = "quic";    // direct, the default (absent)
inline constexpr const char* kTransportRelay = "relay";  // through the master (--relay)
// Also direct: "tcp" (TLS over TCP) and "auto" (QUIC, then TCP when QUIC gets no answer).

// Cuts `text` to kMaxErrorText in the middle (the ends say what and where).
std::string bound_error_text(const std::string& text);

// ---- master -> rcpd, and the rcpds' answers during setup ----

struct ExpectPeerMsg {  // to the source: pin this destination
  std::string fingerprint;
  // Appended: what the source listens on — "quic" (UDP), "tcp", "auto"
  // (both, on one port number) or "relay". Absent: "quic".
  std::string transport = kTransportQuic;
  std::vector<uint8_t> encode() const;
  static Result<ExpectPeerMsg> decode(const Message& m);
};

struct ListeningMsg {  // source -> master
  uint16_t port = 0;   // 1..65535
  std::vector<std::string> addresses;
  std::vector<uint8_t> encode() const;
  static Result<ListeningMsg> decode(const Message& m);
};

struct ConnectPeerMsg {  // to the destination: where the source listens, and its pin
  std::vector<std::string> addresses;
  uint16_t port = 0;  // 1..65535; 0 (and no addresses) when relayed
  std::string fingerprint;
  // Appended: "quic", "tcp", "auto" (QUIC, then TCP when the QUIC
  // handshake gets no answer within fallback_timeout_ms) or "relay". Absent: "quic".
  std::string transport = kTransportQuic;
  uint32_t fallback_timeout_ms = 2000;  // appended; <= kMaxFallbackTimeoutMs
  std::vector<uint8_t> encode() const;
  static Result<ConnectPeerMsg> decode(const Message& m);
};

struct PeerConnectedMsg {          // destination -> master
  std::string transport = "quic";  // appended: what the link runs on, "quic" or "tcp"; absent: "quic"
  std::vector<uint8_t> encode() const;
  static Result<PeerConnectedMsg> decode(const Message& m);
};

struct SendMsg {  // to the source: the operands' paths
  std::vector<std::string> paths;
  // Appended: the paths are remote operands as written after "host:"; the
  // rcpd resolves them (home, ~, ~user, wildcards: base/remote_path.h).
  // Absent/false: paths taken as they are (a local rcpd, the shell expanded them).
  bool resolve = false;
  bool checksum = false;  // appended: announce each file with its xxh3-128 (--checksum)
  // Appended (protocol 5): "+ PATTERN" / "- PATTERN" rules, in order
  // (copy/filter_rules.h); the walk leaves out what they exclude. At most
  // kMaxFilterRules of kMaxFilterRuleBytes each; checked when parsed.
  std::vector<std::string> filters{};
  bool sparse = true;       // appended (protocol 5): holes do not travel; absent: true
  bool hard_links = false;  // appended (protocol 5): later names of an inode announced as links (-H)
  bool owners = false;      // appended (protocol 5): announce each entry's uid, gid and their names
  // Appended (protocol 5): which extended attributes to announce: user.*
  // (and trusted.* when root), system.posix_acl_* (acls), security.capability.
  bool xattrs = false;
  bool acls = false;
  bool keep_capabilities = false;
  bool dereference = false;  // appended (protocol 5): follow symlinks, copy what they point to (-L)
  // Appended (protocol 5): pace the file data sent to the destination at
  // this many bytes per second (rcp -l); 0 = no limit.
  uint64_t bandwidth_limit = 0;
  bool partial = false;  // appended (protocol 5): a large file's chunks are its blocks (wire/partial_blocks.h)
  // Appended (protocol 5): with hard_links, announce each name of a file with
  // several with its FileEntry::inode (a sharded copy's listing: docs/scale-out.md).
  bool inodes = false;
  std::vector<uint8_t> encode() const;
  static Result<SendMsg> decode(const Message& m);
};

// What an operand lets the source name its root (copy/path_validator.h
// parses it): on the wire a flat [kind, text, kind, text, ...] list.
struct RootRuleText {
  std::string kind;
  std::string text;
  bool operator==(const RootRuleText&) const = default;
};

struct ReceiveMsg {  // to the destination
  std::string path;
  uint32_t sources = 1;  // 1..kMaxSources
  bool trailing_slash = false;
  bool overwrite = false;
  std::vector<RootRuleText> root_rules;  // one per source
  bool fsync = false;                    // appended: absent means false
  bool resolve = false;                  // appended: as SendMsg::resolve (home, ~, ~user; no wildcards)
  // Appended: one byte per source, 1 when that operand holds a wildcard (it
  // may stand for several roots), 0 when it stands for one. Absent: 1 for a
  // "glob" rule, 0 otherwise. Always filled in by decode().
  std::vector<uint8_t> wildcards;
  // Appended (protocol 4), each absent = false: what to do with a file that
  // exists and differs (docs/protocol.md, "Deciding per file").
  bool update = false;           // replace only when the source is newer
  bool ignore_existing = false;  // never touch an existing file
  bool checksum = false;         // compare content, not size and mtime
  // Appended (protocol 5): the copy's filter rules (as SendMsg::filters),
  // which protect excluded entries from `delete`; remove what the source does
  // not have under each copied directory; excluded ones too; write nothing,
  // only report the plan.
  std::vector<std::string> filters{};
  bool delete_extraneous = false;
  bool delete_excluded = false;
  bool dry_run = false;
  // Appended (protocol 5): whose entries become, as the source's owner and
  // group say (by name unless numeric_ids): kOff, kOn, or kAuto (on when the
  // destination rcpd runs as root). Absent: off.
  static constexpr uint8_t kOff = 0, kOn = 1, kAuto = 2;
  uint8_t owner = kOff;
  uint8_t group = kOff;
  bool numeric_ids = false;
  // Appended (protocol 5): which extended attributes to set (as SendMsg's).
  bool xattrs = false;
  bool acls = false;
  bool keep_capabilities = false;
  // Appended (protocol 5): keep what verified of an interrupted large file,
  // and resume it ("Resuming a file"). Absent = false.
  bool partial = false;
  // Appended (protocol 5): the user asked for -H; without it an announced
  // link_first or link_to is a protocol violation. Absent = false.
  bool hard_links = false;
  std::vector<uint8_t> encode() const;
  static Result<ReceiveMsg> decode(const Message& m);
};

struct AbortMsg {
  std::string reason;
  std::vector<uint8_t> encode() const;
  static Result<AbortMsg> decode(const Message& m);
};

// ---- rcpd -> master ----

struct ProgressMsg {  // log stream
  uint64_t bytes_done = 0;
  uint64_t files_done = 0;
  uint64_t bytes_total = 0;
  uint64_t files_total = 0;
  std::string current;  // appended (protocol 5): the file in flight, "" = none
  std::vector<uint8_t> encode() const;
  static Result<ProgressMsg> decode(const Message& m);
};

struct LogMsg {       // log stream
  std::string level;  // "error", "warn", "info", "debug", "trace"
  std::string text;
  std::vector<uint8_t> encode() const;
  static Result<LogMsg> decode(const Message& m);
};

struct ErrorMsg {  // control: fatal for this rcpd
  std::string text;
  std::vector<uint8_t> encode() const;  // cuts text to kMaxErrorText
  static Result<ErrorMsg> decode(const Message& m);
};

struct ResultMsg {  // control: the rcpd's summary
  uint64_t files = 0;
  uint64_t bytes = 0;
  uint64_t dirs = 0;
  uint64_t symlinks = 0;
  uint64_t kept = 0;  // exist and differ, left alone unasked (was `skipped`)
  uint64_t failed = 0;
  std::vector<std::pair<std::string, std::string>> errors;  // [path, error]
  // Appended (protocol 4): files already the same, files left alone as
  // --update / --ignore-existing asked, the first kept paths.
  uint64_t unchanged = 0;
  uint64_t ignored = 0;
  std::vector<std::string> kept_paths;  // at most kMaxKeptPaths
  static constexpr size_t kMaxKeptPaths = 100;
  // Appended (protocol 5): entries removed by --delete (with --dry-run: to be
  // removed), and plan entries not sent in `plan` messages (past kMaxPlanEntries).
  uint64_t deleted = 0;
  uint64_t plan_omitted = 0;
  // Appended (protocol 5): bytes of holes that neither travelled nor were
  // written (sparse files), and files made as hard links (-H).
  uint64_t sparse_bytes = 0;
  uint64_t hard_links = 0;
  uint64_t resumed_bytes = 0;  // appended (protocol 5): bytes not sent, verified blocks of a partial file reused
  std::vector<uint8_t> encode() const;
  static Result<ResultMsg> decode(const Message& m);
};

// One line of a --dry-run plan: what the copy would do to one destination path.
enum class PlanAction : uint8_t { create, update, unchanged, kept, ignored, remove };
const char* plan_action_name(PlanAction a);  // "create", ..., "delete"
struct PlanEntry {
  PlanAction action = PlanAction::create;
  std::string path;  // as the destination displays it
  uint64_t size = 0;
  // Appended (protocol 5): the source's [device, inode] of a file with
  // several names, as its announcement said (FileEntry::inode); else none.
  std::optional<std::array<uint64_t, 2>> inode{};
  bool operator==(const PlanEntry&) const = default;
};
constexpr size_t kMaxPlanEntries = 100000;  // sent in all; the rest are counted (ResultMsg::plan_omitted)
// ...and at most this many bytes of them, each entry counted as its path plus
// kPlanEntryCost, about its size on the wire (long paths would otherwise make
// 100 000 entries ~6 GiB). The plan goes to the master in one burst, which
// must stay under what a control stream holds unread (16 MiB).
constexpr size_t kMaxPlanBytes = 12u << 20;
constexpr size_t kPlanEntryCost = 24;
constexpr size_t kPlanInodeCost = 20;  // added for an entry with an inode (two 64-bit numbers)

struct PlanMsg {                   // destination -> master, control, before the result (protocol 5)
  std::vector<PlanEntry> entries;  // 1..kMaxPlanPerMsg
  static constexpr size_t kMaxPlanPerMsg = 1024;
  std::vector<uint8_t> encode() const;
  static Result<PlanMsg> decode(const Message& m);
};

// ---- source -> destination (control stream, walk order) ----

// Appended (protocol 5) to dir, symlink and each announced file when the
// master asks for owners: who owns the entry at the source, by id and by
// name ("" when the source's /etc/passwd or /etc/group has none).
struct Ownership {
  uint32_t uid = 0;  // < 2^32-1 (-1 means "no id" to the kernel)
  uint32_t gid = 0;
  std::string user;   // <= kMaxOwnerName
  std::string group;  // <= kMaxOwnerName
  bool operator==(const Ownership&) const = default;
};

// Appended (protocol 5) with xattrs: an entry's extended attributes as
// (name, value) pairs, only those the options ask for (docs/protocol.md;
// bounded by kMaxXattrs, kMaxXattrName, kMaxXattrValue, kMaxXattrBytes).
using Xattrs = std::vector<std::pair<std::string, std::string>>;

struct RootMsg {
  uint32_t index = 0;  // the root: what dir, symlink, chunks... name as their index
  std::string name;    // <= kMaxNameBytes
  char kind = '?';     // 'f', 'd', 'l', or '?' (with an error)
  std::string error;   // empty unless the operand could not be read
  // Appended: the operand this root came from (absent: index, one root per
  // operand) and how many roots the source sends in all (absent: 0, unknown).
  std::optional<uint32_t> operand;
  uint32_t roots = 0;  // <= kMaxRoots
  uint32_t operand_index() const { return operand.value_or(index); }
  std::vector<uint8_t> encode() const;
  static Result<RootMsg> decode(const Message& m);
};

struct DirMsg {
  uint32_t index = 0;
  std::string relpath;  // "" = the root itself
  uint32_t mode = 0;    // <= 07777
  int64_t mtime_s = 0;  // may be negative (before 1970)
  uint32_t mtime_ns = 0;
  std::optional<Ownership> owner{};  // appended (protocol 5): [] or [uid, gid, user, group]
  Xattrs xattrs{};                   // appended (protocol 5): [name, value, ...]
  std::vector<uint8_t> encode() const;
  static Result<DirMsg> decode(const Message& m);
};

struct SymlinkMsg {
  uint32_t index = 0;
  std::string relpath;
  std::string target;  // <= kMaxLinkTarget
  int64_t mtime_s = 0;
  uint32_t mtime_ns = 0;
  std::optional<Ownership> owner{};  // appended (protocol 5): [] or [uid, gid, user, group]
  Xattrs xattrs{};                   // appended (protocol 5): [name, value, ...]
  std::vector<uint8_t> encode() const;
  static Result<SymlinkMsg> decode(const Message& m);
};

// One regular file as the walk saw it, announced before any of its data.
struct FileEntry {
  uint32_t index = 0;  // root
  std::string relpath;
  uint64_t size = 0;
  int64_t mtime_s = 0;
  uint32_t mtime_ns = 0;
  uint32_t mode = 0;            // <= 07777
  std::vector<uint8_t> digest;  // xxh3-128 of the content with --checksum (16 bytes), else empty
  // Appended (protocol 5), hard links (-H): this is the first name of an
  // inode with several, which later entries may name as their `link_to`;
  // or a later name, `link_to` being the number of the announced file whose
  // inode it shares (smaller than its own).
  // On the wire: link_first: bool; link_to: a list of 0 or 1 number.
  bool link_first = false;
  std::optional<uint64_t> link_to{};
  std::optional<Ownership> owner{};  // appended (protocol 5), after the two above: [] or [uid, gid, user, group]
  Xattrs xattrs{};                   // appended (protocol 5): [name, value, ...]
  // Appended (protocol 5), when the master asked for SendMsg::inodes: the
  // source's [device, inode] of a file with several names. On the wire a
  // list of 0 or 2 numbers.
  std::optional<std::array<uint64_t, 2>> inode{};
  bool operator==(const FileEntry&) const = default;
};

// Several announcements in one sealed frame: numbered from `first` (the
// source counts every file it announces from 0), answered by `verdicts`.
struct FilesMsg {
  uint64_t first = 0;
  std::vector<FileEntry> files;  // 1..kMaxFilesPerMsg
  static constexpr size_t kMaxFilesPerMsg = 1024;
  std::vector<uint8_t> encode() const;
  static Result<FilesMsg> decode(const Message& m);
};

// The destination's answer for one announced file.
enum class FileVerdict : uint8_t {
  send = 0,       // absent here: send it (written without replacing anything)
  replace = 1,    // exists and differs, replacing is allowed: send it
  unchanged = 2,  // same size and mtime (or content): nothing to send
  kept = 3,       // exists and differs, no permission to replace
  ignored = 4,    // left alone as --update / --ignore-existing asked
  failed = 5,     // the destination cannot take it (and says why in its result)
  linked = 6,     // a later name of a file this copy writes: made a hard link to it, nothing to send
};
constexpr bool wants_data(FileVerdict v) { return v == FileVerdict::send || v == FileVerdict::replace; }

// What the destination kept of one file it wants (`partial`): the blocks of
// its hidden partial file that it re-hashed and found as recorded.
struct ResumeOffer {
  uint32_t pos = 0;             // the file's place in this `verdicts` (send or replace)
  std::vector<uint8_t> blocks;  // bitmap: bit i = block i kept; <= kMaxBlockBitmap bytes
  std::vector<uint8_t> hashes;  // SHA-256 of each kept block, in block order (32 bytes each)
  bool operator==(const ResumeOffer&) const = default;
};

struct VerdictsMsg {  // destination -> source: for files first, first+1, ...
  uint64_t first = 0;
  std::vector<FileVerdict> verdicts;  // 1..FilesMsg::kMaxFilesPerMsg
  // Appended (protocol 5): increasing `pos`, at most kMaxResumeBlocks blocks in all.
  std::vector<ResumeOffer> resume;
  std::vector<uint8_t> encode() const;
  static Result<VerdictsMsg> decode(const Message& m);
};

struct SourceErrorMsg {
  uint32_t index = 0;
  std::string relpath;
  std::string text;
  std::vector<uint8_t> encode() const;  // cuts text to kMaxErrorText
  static Result<SourceErrorMsg> decode(const Message& m);
};

struct DoneMsg {
  uint64_t files = 0;  // every file id sent, resent attempts included
  uint64_t bytes = 0;
  std::vector<uint8_t> encode() const;
  static Result<DoneMsg> decode(const Message& m);
};

struct FinishedMsg {  // destination -> source: all settled
  std::vector<uint8_t> encode() const;
  static Result<FinishedMsg> decode(const Message& m);
};

}  // namespace rcp
