// `--partial`: a large file is written into a hidden named file beside its
// target, with a small hidden record of the blocks (wire/partial_blocks.h)
// whose bytes were all written and verified, each with its SHA-256. After an
// interruption the next run with --partial finds the pair, re-hashes the
// recorded blocks from the file itself (the record only says which blocks
// to look at: anyone who can write the directory may have changed the file),
// and offers those hashes to the source, which sends only the blocks that
// differ or are missing.
//
// Names: `.rcp-partial-<hex>.part` and `.rcp-partial-<hex>.rec`, <hex> the
// first 16 bytes of the SHA-256 of the target's name; the sweep of dead
// rcpds' `.tmp` files never matches them. Everything is opened relative to
// the directory fd with O_NOFOLLOW, must be a regular file of our uid with
// one link, and the record is parsed as hostile input: bounded, and
// discarded (with its file) on any inconsistency.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/crypto.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace rcp {

// Which source file a record belongs to: the announcement's name, size and mtime.
struct PartialKey {
  std::string name;  // the target's name in its directory
  uint64_t size = 0;
  int64_t mtime_s = 0;
  uint32_t mtime_ns = 0;
};

// The record: a header naming its file, then one entry per verified block
// (u32 block, 32-byte SHA-256), appended as blocks verify. Big-endian.
namespace partial_record {
constexpr size_t kEntryBytes = 4 + 32;
// magic, size, mtime_s, mtime_ns, block bytes, name length, name.
size_t header_bytes(const PartialKey& key);
std::vector<uint8_t> encode_header(const PartialKey& key);
std::vector<uint8_t> encode_entry(uint32_t block, const Sha256Digest& hash);
// The recorded blocks, or why the record cannot be used: too long, another
// file's, torn, a block out of range or listed twice.
Result<std::map<uint32_t, Sha256Digest>> parse(const std::vector<uint8_t>& bytes, const PartialKey& expect);
// The largest record a file of `size` can have.
size_t max_bytes(const PartialKey& key);
}  // namespace partial_record

std::string partial_data_name(const std::string& target);
std::string partial_record_name(const std::string& target);

// One file's pair, open: the data file (locked: one run at a time) and the
// record (append only).
struct PartialFile {
  UniqueFd data;
  UniqueFd record;
  std::string data_name;
  std::string record_name;
  // Blocks found in the data file as recorded (re-hashed), by block.
  std::map<uint32_t, Sha256Digest> kept;
};

// What `find_partial` found for a target.
enum class PartialFound { none, busy, resumed };

// Looks for the pair of `key.name` in `dir`. A pair of another file, a
// record that does not parse, a data file that is not ours: removed (when
// ours), `none`. Another run holding the data file: `busy` (leave it alone).
// Otherwise `resumed` and `out` holds the pair, with the record rewritten to
// the blocks that still hash as recorded and the data file cut to key.size.
Result<PartialFound> find_partial(int dir, const PartialKey& key, PartialFile& out);
// Creates a fresh pair (the data file must not exist yet): false when it
// exists (another run's, or one that could not be removed).
Result<bool> create_partial(int dir, const PartialKey& key, PartialFile& out);
// Starts the record again with only `blocks` of file.kept: the blocks the
// source reuses (the rest come again and are recorded as they verify).
Result<void> rewrite_record(const PartialFile& file, const PartialKey& key, const std::vector<uint32_t>& blocks);
// Appends a verified block to the record.
Result<void> record_block(const PartialFile& file, uint32_t block, const Sha256Digest& hash);
// Removes both names (the file was put in place, or is not worth keeping).
void remove_partial(int dir, const PartialFile& file);

}  // namespace rcp
