// CopySource: the source rcpd's side of a copy. It walks each operand,
// announces roots, directories and symlinks on the control stream, and
// streams regular files as chunks on data streams from a pool of workers.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/logger.h"
#include "base/passwd_db.h"
#include "base/rate_limiter.h"
#include "base/unique_fd.h"
#include "copy/filter_rules.h"
#include "copy/transfer_counters.h"
#include "copy/xattrs.h"
#include "link/link.h"
#include "wire/chunk_header.h"
#include "wire/messages.h"

namespace rcp {

// One root to send: an operand's path, or one match of its wildcard.
struct SourceRoot {
  std::string path;
  uint32_t operand = 0;  // which operand it stands for (the destination applies that operand's rule)
  std::string error;     // set when the operand stands for nothing: sent as this root's failure
};

// The roots `paths` stand for, in order. As they are, or with `resolve` as
// scp means a remote operand (base/remote_path.h: the login's `home`, ~user
// from `users`, a wildcard becoming its sorted matches). Never fails as a
// whole: an operand that stands for nothing becomes a root with an error.
// At most kMaxRoots in all; past that, an error root.
std::vector<SourceRoot> source_roots(const std::vector<std::string>& paths, bool resolve, std::string_view home,
                                     const PasswdDb& users);

struct SourceOptions {
  bool checksum = false;         // announce each file with the xxh3-128 of its content
  FilterRules filters;           // entries they exclude are never announced, excluded directories never entered
  bool sparse = true;            // holes (SEEK_DATA/SEEK_HOLE) do not travel
  bool hard_links = false;       // names of one inode announced as links to the first (-H)
  bool inodes = false;           // with hard_links: those names announced with their [device, inode] too
  bool owners = false;           // announce each entry's uid, gid and their names
  XattrPolicy xattrs{};          // which extended attributes to announce (none by default)
  bool dereference = false;      // -L: copy what symlinks point to (loops reported, not followed)
  uint64_t bandwidth_limit = 0;  // bytes per second of file data, for all workers together; 0 = none
  // A large file's chunks are its blocks (wire/partial_blocks.h); reuse what the destination kept.
  bool partial = false;
  size_t workers = 16;
  uint64_t chunk_bytes = 64ull << 20;
  Nanos finish_timeout = 600 * 1000000000ull;  // wait for the destination's "finished"
};

class JobQueue;

class CopySource {
 public:
  CopySource(std::shared_ptr<Link> peer, const SourceOptions& options, const Logger& logger,
             TransferCounters& counters);
  // Sends everything, then waits for the destination to confirm.
  Result<CopySummary> run(const std::vector<SourceRoot>& roots);

 private:
  struct SourceFile;
  struct Job;
  class Walker;
  friend class JobQueue;
  // The chunk jobs of one file, under a fresh file id.
  // `reused`: blocks the destination keeps (a resumed --partial file), not sent.
  std::vector<Job> plan_chunks(const std::shared_ptr<SourceFile>& file, const std::vector<uint8_t>& reused = {});
  // The blocks of `offer` whose SHA-256 here equals the destination's; never all of them (one chunk settles the
  // file). A protocol error when the offer does not fit the file.
  Result<std::vector<uint8_t>> reusable_blocks(const SourceFile& file, const ResumeOffer& offer);
  // Reopens the file from its directory fd: only the regular file the walk saw.
  static Result<UniqueFd> open_checked(const SourceFile& file);
  // Size, mtime and ctime still as the walk saw them.
  static bool unchanged(int fd, const SourceFile& file);
  static bool same_as_walked(const struct stat& now, const struct stat& was);
  // After a chunk's bytes are read: keep, or void (the file changed meanwhile).
  static ChunkVerdict verdict(int fd, SourceFile& file);
  // Whole small chunks, as records of one data stream; a result per job.
  std::vector<Result<void>> send_bundle(const std::vector<std::shared_ptr<Job>>& jobs);
  // The job's header, naming the chunk's data extents when it has holes (sparse on).
  ChunkHeader with_extents(const Job& job, int fd) const;
  // Appends job's record (read now); false when the file can't be read.
  bool append_record(const Job& job, std::vector<uint8_t>& body);
  // One chunk on its own stream, read and sent piece by piece.
  Result<void> send_chunk_streamed(const Job& job);
  // One chunk of `file` is out; after its last, a changed file goes once more.
  Result<void> chunk_sent(const std::shared_ptr<SourceFile>& shared);
  // Tells the destination (once per file) and returns the io error.
  Result<void> fail_file(SourceFile& file, const std::string& why);
  // Announces a regular file the walk found (batched); its data goes once
  // the destination answers "send". Waits while too many await an answer.
  // Returns the file's number (nullopt when the link failed).
  std::optional<uint64_t> announce(const std::shared_ptr<SourceFile>& file);
  void flush_announcements();  // announce_mu_ held
  // Reads the destination's answers until "finished" (or the link fails),
  // queueing the chunks of each file it wants.
  void read_answers(JobQueue& queue);
  Result<void> on_verdicts(const VerdictsMsg& msg, JobQueue& queue);
  // The file's xxh3-128 (--checksum); empty when it can't be read as the walk saw it.
  std::vector<uint8_t> digest_of(const SourceFile& file);
  // Who owns `st`, with the names this host's /etc/passwd and /etc/group give (owners on).
  std::optional<Ownership> owner_of(const struct stat& st) const;
  // The attributes options_.xattrs carries of `name` in `dir` (the fd itself
  // when empty); a failure is a warning and none.
  Xattrs xattrs_of(int dir, const std::string& name, bool follow, const std::string& path) const;

  // Waits until `bytes` more may go under the bandwidth limit (none: at once).
  void pace(uint64_t bytes);
  // rcp -vvv: one line per chunk sent.
  void trace_sent(const Job& job, const char* how) const;

  std::shared_ptr<Link> peer_;
  SourceOptions options_;
  std::unique_ptr<RateLimiter> limiter_;  // set with a bandwidth limit
  Logger logger_;
  TransferCounters& counters_;
  std::atomic<uint64_t> next_file_id_{0};  // every attempt of every file gets its own
  PasswdDb names_;                         // owners on: uid and gid to names

  // Announced files awaiting the destination's answer, oldest first.
  std::mutex announce_mu_;
  std::condition_variable announce_cv_;
  std::deque<std::shared_ptr<SourceFile>> awaiting_;
  FilesMsg batch_;          // announcements not yet sent
  size_t batch_bytes_ = 0;  // roughly, of batch_ encoded
  uint64_t announced_ = 0;  // files announced (sent) so far
  uint64_t answered_ = 0;   // ...of which answered and dispatched
  bool walked_ = false;     // the walk is over: no answer for long is the link failing
  bool finished_ = false;   // the destination said "finished"
  Error link_error_;        // the answers stopped: the link failed
};

}  // namespace rcp
