// CopyDestination: the destination rcpd's side of a copy. A control loop
// applies roots, directories and symlinks in order; a pool of workers takes
// chunk streams, writes them into temporary files, checks each chunk's
// xxh3-128 and renames a file into place once all its chunks verified.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "chunk_header.h"
#include "dest_tree.h"
#include "link.h"
#include "logger.h"
#include "transfer_counters.h"

namespace rcp {

struct DestinationOptions {
  size_t workers = 8;
  Nanos root_wait = 60 * 1000000000ull;  // a chunk may arrive before its root announcement
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
    uint32_t nchunks = 0;
    std::vector<bool> seen;
    uint32_t ended = 0;
    uint64_t bytes = 0;
    bool failed = false;
    bool skipped = false;
    std::string error;
    DirFd dir;
    std::string name;
    std::string tmp;
    std::shared_ptr<UniqueFd> fd;
  };
  struct DirMeta {
    uint32_t root;
    std::string rel;
    uint32_t mode;
    int64_t mtime_s;
    uint32_t mtime_ns;
  };

  void worker();
  Result<void> receive_chunk(int64_t stream);
  FileState* begin_chunk(const ChunkHeader& h, std::string& err);  // mu_ held
  void end_chunk(uint64_t file_id, uint64_t bytes, const std::string& err);
  void settle(FileState& f);  // mu_ held
  Result<void> on_control(const std::vector<uint8_t>& body);
  void apply_dir_meta();
  void record_error(const std::string& path, const std::string& what);  // mu_ held

  std::shared_ptr<Link> peer_;
  std::unique_ptr<DestTree> tree_;
  DestinationOptions options_;
  Logger logger_;
  TransferCounters& counters_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, FileState> files_;
  uint64_t settled_ = 0;
  int64_t expected_files_ = -1;  // from "done"
  bool stop_ = false;
  Error fatal_;
  CopySummary summary_;
  std::vector<DirMeta> dir_meta_;
  std::set<std::string> source_failed_;  // paths the source already reported
};

}  // namespace rcp
