// CopySource: the source rcpd's side of a copy. It walks each operand,
// announces roots, directories and symlinks on the control stream, and
// streams regular files as chunks on data streams from a pool of workers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "link.h"
#include "logger.h"
#include "transfer_counters.h"

namespace rcp {

struct SourceOptions {
  size_t workers = 16;
  uint64_t chunk_bytes = 64ull << 20;
  Nanos finish_timeout = 600 * 1000000000ull;  // wait for the destination's "finished"
};

class CopySource {
 public:
  CopySource(std::shared_ptr<Link> peer, const SourceOptions& options, const Logger& logger,
             TransferCounters& counters);
  // Sends everything, then waits for the destination to confirm.
  Result<CopySummary> run(const std::vector<std::string>& roots);

 private:
  struct Job;
  class Walker;
  // Whole small chunks, as records of one data stream; a result per job.
  std::vector<Result<void>> send_bundle(const std::vector<std::shared_ptr<Job>>& jobs);
  // Appends job's record (read now); false when the file can't be read.
  bool append_record(const Job& job, std::vector<uint8_t>& body);
  // One chunk on its own stream, read and sent piece by piece.
  Result<void> send_chunk_streamed(const Job& job);

  std::shared_ptr<Link> peer_;
  SourceOptions options_;
  Logger logger_;
  TransferCounters& counters_;
};

}  // namespace rcp
