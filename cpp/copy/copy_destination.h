// CopyDestination: the destination rcpd's side of a copy. A control loop
// applies roots, directories and symlinks in order; a pool of workers takes
// chunk streams, writes them into temporary files, checks each chunk's
// xxh3-128 and renames a file into place once all its chunks verified.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/interval_set.h"
#include "base/logger.h"
#include "copy/dest_tree.h"
#include "copy/file_policy.h"
#include "copy/partial_file.h"
#include "copy/transfer_counters.h"
#include "link/link.h"
#include "wire/chunk_header.h"
#include "wire/messages.h"

namespace rcp {

struct DestinationOptions {
  size_t workers = 16;
  Nanos root_wait = 60 * 1000000000ull;      // a chunk may arrive before its root announcement
  Nanos stall_timeout = 60 * 1000000000ull;  // after "done": longest silence while files are missing
};

class CopyDestination {
 public:
  CopyDestination(std::shared_ptr<Link> peer, std::unique_ptr<DestTree> tree, const DestinationOptions& options,
                  const Logger& logger, TransferCounters& counters);
  ~CopyDestination();
  Result<CopySummary> run();
  // Removes temporary files; safe from any thread (abort path).
  void abort_cleanup() { tree_->remove_temps(); }

 private:
  struct FileState {
    uint32_t root = 0;
    std::string rel;
    uint64_t size = 0;
    uint32_t mode = 0;
    int64_t mtime_s = 0;
    uint32_t mtime_ns = 0;
    uint64_t chunk_bytes = 0;
    uint32_t nchunks = 0;
    std::set<uint32_t> seen;  // chunks arrived (never more than the bytes received justify)
    bool voided = false;      // the source saw the file change: discard this attempt
    bool opening = false;     // a worker is creating the temporary file
    bool opened = false;      // ...and has finished (fields below are set)
    uint32_t ended = 0;
    uint64_t bytes = 0;
    bool failed = false;
    bool skipped = false;
    bool replace = false;  // the destination's verdict allowed replacing what is there
    std::string error;
    DirFd dir;
    std::string name;
    std::string tmp;
    std::shared_ptr<UniqueFd> fd;
    // --partial: the hidden pair this file is written into (resumed, or made
    // at its first chunk), and the blocks the source reused from it.
    std::shared_ptr<PartialFile> partial;
    bool partial_wanted = false;  // this file's chunks are its blocks: record them
    std::vector<uint8_t> reused;
    uint32_t reused_count = 0;
    uint64_t reused_bytes = 0;
  };
  // A file answered send or replace: whether it may replace what is there,
  // and with --partial what this side offered from a kept partial file.
  struct Grant {
    bool replace = false;
    std::shared_ptr<PartialFile> partial;
    std::vector<uint8_t> offered;  // bitmap of the blocks offered for reuse
  };
  struct DirMeta {
    uint32_t root;
    std::string rel;
    uint32_t mode;
    int64_t mtime_s;
    uint32_t mtime_ns;
  };

  void worker();
  Result<void> receive_stream(int64_t stream);
  // One record: frame(ChunkHeader) | bytes | xxh3-128. False when the stream
  // ended inside it (nothing more to read).
  Result<bool> receive_record(int64_t stream, const uint8_t (&len_be)[4]);
  // mu_ held. `must_open`: this caller creates the file (open_file), others wait.
  FileState* begin_chunk(const ChunkHeader& h, std::string& err, bool& must_open);
  void open_file(FileState& f);      // mu_ not held
  bool start_partial(FileState& f);  // --partial: a fresh hidden pair for f; false: an ordinary temporary
  void end_chunk(uint64_t id, FileState& f, uint64_t bytes, const std::string& err, ChunkVerdict verdict);
  bool settle(FileState& f);
  void wait_settled(std::unique_lock<std::mutex>& lk);  // mu_ held  // mu_ not held; true when renamed into place
  Result<void> on_control(const std::vector<uint8_t>& body);
  Result<void> on_root(const RootMsg& root);
  Result<void> on_dir(const DirMsg& dir);
  Result<void> on_symlink(const SymlinkMsg& link);
  // Decides each announced file (file_policy.h) and answers with one `verdicts`.
  Result<void> on_files(const FilesMsg& msg);
  // `budget`: block hashes this `verdicts` may still carry; an offer of kept blocks goes to `offer`.
  FileVerdict decide_file(const FileEntry& file, uint32_t& budget, ResumeOffer& offer);
  // --partial: the kept partial file of `file`, re-hashed, as an offer (at most `budget` blocks).
  std::shared_ptr<PartialFile> resume_partial(const DirFd& dir, const std::string& name, const FileEntry& file,
                                              uint32_t& budget, ResumeOffer& offer);
  // mu_ held: counts a file that exists, differs and stays.
  void keep_entry(const std::string& path);
  // Sets directory modes and mtimes deepest first (and with --fsync flushes each).
  void apply_dir_meta();
  void sync_dir(const UniqueFd& dir, uint32_t root, const std::string& rel);
  // mu_ held: counts a failed entry (once per path) and keeps its message;
  // a `cause` (the source's reason) replaces an earlier message for the path.
  void fail_entry(const std::string& path, const std::string& what, bool log, bool cause = false);

  std::shared_ptr<Link> peer_;
  std::unique_ptr<DestTree> tree_;
  DestinationOptions options_;
  Logger logger_;
  TransferCounters& counters_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, FileState> files_;  // files with chunks still to come
  IntervalSet settled_ids_;
  uint64_t settled_ = 0;
  int64_t expected_files_ = -1;  // from "done"
  bool stop_ = false;
  Error fatal_;
  CopySummary summary_;
  std::map<std::pair<dev_t, ino_t>, DirMeta> dir_meta_;  // one per directory on disk
  std::set<Digest128> failed_paths_;                     // hashes of the paths counted in summary_.failed
  // Files answered "send", by root and path, until settled: data for any
  // other file is refused, and `replace` is this side's decision, not the source's.
  std::map<std::string, Grant> granted_;
  uint64_t next_announced_ = 0;  // the number the next announced file must carry
  FilePolicy policy_;
};

}  // namespace rcp
