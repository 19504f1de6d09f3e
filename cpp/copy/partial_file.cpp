#include "copy/partial_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "wire/partial_blocks.h"

namespace rcp {

namespace {

constexpr char kMagic[8] = {'R', 'C', 'P', 'P', 'A', 'R', 'T', '1'};
constexpr size_t kFixedHeader = sizeof kMagic + 8 + 8 + 4 + 8 + 2;

void put(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint64_t get(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

Error fs_error(const std::string& what, int err) { return make_error(Errc::io, what + ": " + std::strerror(err)); }

// A regular file of ours with one name: anything else (a FIFO, another
// user's file planted in a shared directory, a hard link to elsewhere) is
// never written to or put in place.
bool ours(const struct stat& st) { return S_ISREG(st.st_mode) && st.st_uid == geteuid() && st.st_nlink == 1; }

Result<void> write_all(int fd, std::span<const uint8_t> data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fs_error("write the partial record", errno);
    if (n == 0) return fs_error("write the partial record", ENOSPC);
    data = data.subspan(static_cast<size_t>(n));
  }
  return {};
}

// SHA-256 of block `b` as the data file holds it; nullopt when it is short.
std::optional<Sha256Digest> hash_block(int fd, const PartialKey& key, uint32_t b, std::vector<uint8_t>& buf) {
  const uint64_t bb = partial_block_bytes(key.size);
  const uint64_t offset = static_cast<uint64_t>(b) * bb;
  const uint64_t length = std::min(bb, key.size - offset);
  Sha256Stream hash;
  uint64_t done = 0;
  while (done < length) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), length - done));
    ssize_t n = pread(fd, buf.data(), want, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    hash.update({buf.data(), static_cast<size_t>(n)});
    done += static_cast<uint64_t>(n);
  }
  return hash.finish();
}

}  // namespace

namespace partial_record {

size_t header_bytes(const PartialKey& key) { return kFixedHeader + key.name.size(); }

size_t max_bytes(const PartialKey& key) {
  return header_bytes(key) + static_cast<size_t>(partial_blocks(key.size)) * kEntryBytes;
}

std::vector<uint8_t> encode_header(const PartialKey& key) {
  std::vector<uint8_t> out(kMagic, kMagic + sizeof kMagic);
  put(out, key.size, 8);
  put(out, static_cast<uint64_t>(key.mtime_s), 8);
  put(out, key.mtime_ns, 4);
  put(out, partial_block_bytes(key.size), 8);
  put(out, key.name.size(), 2);
  out.insert(out.end(), key.name.begin(), key.name.end());
  return out;
}

std::vector<uint8_t> encode_entry(uint32_t block, const Sha256Digest& hash) {
  std::vector<uint8_t> out;
  out.reserve(kEntryBytes);
  put(out, block, 4);
  out.insert(out.end(), hash.begin(), hash.end());
  return out;
}

Result<std::map<uint32_t, Sha256Digest>> parse(const std::vector<uint8_t>& bytes, const PartialKey& expect) {
  auto bad = [](const std::string& why) { return make_error(Errc::protocol, "partial record " + why); };
  if (!partial_applies(expect.size)) return bad("for a file too small to have one");
  if (bytes.size() > max_bytes(expect)) return bad("longer than its file can need");
  const std::vector<uint8_t> header = encode_header(expect);
  if (bytes.size() < header.size()) return bad("shorter than its header");
  if (!std::equal(kMagic, kMagic + sizeof kMagic, bytes.begin())) return bad("without its magic");
  // Name, size, mtime and block size all as announced: else another file's.
  if (!std::equal(header.begin(), header.end(), bytes.begin())) return bad("of another file, or another version");
  const size_t body = bytes.size() - header.size();
  if (body % kEntryBytes != 0) return bad("ends inside an entry");
  const uint32_t blocks = partial_blocks(expect.size);
  std::map<uint32_t, Sha256Digest> out;
  for (size_t at = header.size(); at < bytes.size(); at += kEntryBytes) {
    const uint64_t b = get(&bytes[at], 4);
    if (b >= blocks) return bad("names a block past the file's end");
    Sha256Digest h{};
    std::copy_n(bytes.begin() + static_cast<ptrdiff_t>(at + 4), h.size(), h.begin());
    if (!out.emplace(static_cast<uint32_t>(b), h).second) return bad("lists a block twice");
  }
  return out;
}

}  // namespace partial_record

std::string partial_data_name(const std::string& target) {
  const Sha256Digest h = sha256({reinterpret_cast<const uint8_t*>(target.data()), target.size()});
  return ".rcp-partial-" + to_hex(std::span<const uint8_t>(h).first(16)) + ".part";
}

std::string partial_record_name(const std::string& target) {
  const Sha256Digest h = sha256({reinterpret_cast<const uint8_t*>(target.data()), target.size()});
  return ".rcp-partial-" + to_hex(std::span<const uint8_t>(h).first(16)) + ".rec";
}

void remove_partial(int dir, const PartialFile& file) {
  // Only names whose files we opened and checked as ours.
  if (file.data.get() >= 0) (void)unlinkat(dir, file.data_name.c_str(), 0);
  if (file.record.get() >= 0) (void)unlinkat(dir, file.record_name.c_str(), 0);
}

Result<PartialFound> find_partial(int dir, const PartialKey& key, PartialFile& out) {
  out = PartialFile{};
  out.data_name = partial_data_name(key.name);
  out.record_name = partial_record_name(key.name);
  UniqueFd rec(openat(dir, out.record_name.c_str(), O_RDWR | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (rec.get() < 0) {
    if (errno == ENOENT) {
      // A file without its record (killed between creating the two) is no use:
      // removed when ours and not in use, so a fresh pair can take the name.
      UniqueFd orphan(openat(dir, out.data_name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      struct stat os {};
      if (orphan.get() >= 0 && fstat(orphan.get(), &os) == 0 && ours(os) && flock(orphan.get(), LOCK_EX | LOCK_NB) == 0)
        (void)unlinkat(dir, out.data_name.c_str(), 0);
      return PartialFound::none;
    }
    if (errno == ELOOP) return PartialFound::none;  // a symlink where the record would be: not ours, left alone
    return fs_error("open the partial record", errno);
  }
  struct stat rs {};
  if (fstat(rec.get(), &rs) != 0) return fs_error("stat the partial record", errno);
  if (!ours(rs)) return PartialFound::none;  // someone else's: never read, written or removed
  UniqueFd data(openat(dir, out.data_name.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat ds {};
  if (data.get() >= 0 && fstat(data.get(), &ds) != 0) return fs_error("stat the partial file", errno);
  if (data.get() >= 0 && !ours(ds)) data.reset();
  if (data.get() >= 0 && flock(data.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return PartialFound::busy;  // another run is writing it now
    return fs_error("lock the partial file", errno);
  }
  out.record = std::move(rec);
  auto discard = [&]() -> Result<PartialFound> {
    // A record without its file, or one that does not fit: neither is any use.
    out.data = std::move(data);
    remove_partial(dir, out);
    out = PartialFile{};
    return PartialFound::none;
  };
  if (data.get() < 0) return discard();
  // A file others may write is no use either: they could change a kept block
  // after it was re-hashed here (a settle that failed after its chmod leaves one).
  if ((ds.st_mode & (S_IWGRP | S_IWOTH)) != 0) return discard();
  if (static_cast<uint64_t>(rs.st_size) > partial_record::max_bytes(key)) return discard();
  std::vector<uint8_t> bytes(static_cast<size_t>(rs.st_size));
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = pread(out.record.get(), bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return discard();
    got += static_cast<size_t>(n);
  }
  auto recorded = partial_record::parse(bytes, key);
  if (!recorded) return discard();
  // The file, not the record, says what is there: a block counts only when
  // its bytes hash as recorded now.
  std::vector<uint8_t> buf(1u << 20);
  std::vector<uint32_t> still;
  for (const auto& [b, hash] : *recorded) {
    auto now = hash_block(data.get(), key, b, buf);
    if (!now || *now != hash) continue;
    out.kept.emplace(b, *now);
    still.push_back(b);
  }
  // What the file holds past the target's size is no block of it.
  if (ftruncate(data.get(), static_cast<off_t>(key.size)) != 0) return fs_error("size the partial file", errno);
  out.data = std::move(data);
  if (auto r = rewrite_record(out, key, still); !r) return r.error();
  return PartialFound::resumed;
}

Result<bool> create_partial(int dir, const PartialKey& key, PartialFile& out) {
  out = PartialFile{};
  out.data_name = partial_data_name(key.name);
  out.record_name = partial_record_name(key.name);
  UniqueFd data(openat(dir, out.data_name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (data.get() < 0) {
    if (errno == EEXIST) return false;
    return fs_error("create the partial file", errno);
  }
  if (flock(data.get(), LOCK_EX | LOCK_NB) != 0) {
    (void)unlinkat(dir, out.data_name.c_str(), 0);
    return false;
  }
  // A stale record (its file gone) may be there: ours, it is replaced; not ours, no partial.
  UniqueFd rec(
      openat(dir, out.record_name.c_str(), O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600));
  struct stat rs {};
  if (rec.get() < 0 || fstat(rec.get(), &rs) != 0 || !ours(rs) || ftruncate(rec.get(), 0) != 0) {
    const int err = errno;
    (void)unlinkat(dir, out.data_name.c_str(), 0);
    if (rec.get() < 0 && err != EEXIST && err != ELOOP) return fs_error("create the partial record", err);
    return false;
  }
  out.data = std::move(data);
  out.record = std::move(rec);
  if (auto r = write_all(out.record.get(), partial_record::encode_header(key)); !r) {
    remove_partial(dir, out);
    out = PartialFile{};
    return r.error();
  }
  return true;
}

Result<void> rewrite_record(const PartialFile& file, const PartialKey& key, const std::vector<uint32_t>& blocks) {
  std::vector<uint8_t> out = partial_record::encode_header(key);
  for (uint32_t b : blocks) {
    auto it = file.kept.find(b);
    if (it == file.kept.end()) continue;
    auto e = partial_record::encode_entry(b, it->second);
    out.insert(out.end(), e.begin(), e.end());
  }
  if (ftruncate(file.record.get(), 0) != 0) return fs_error("rewrite the partial record", errno);
  return write_all(file.record.get(), out);
}

Result<void> record_block(const PartialFile& file, uint32_t block, const Sha256Digest& hash) {
  // O_APPEND: workers finishing blocks at once each add a whole entry.
  return write_all(file.record.get(), partial_record::encode_entry(block, hash));
}

}  // namespace rcp
