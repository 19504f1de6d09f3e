// Progress counters shared between a copy's worker threads and the reporter
// that streams them to the master.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "wire/messages.h"

namespace rcp {

struct TransferCounters {
  std::atomic<uint64_t> bytes_done{0};
  std::atomic<uint64_t> files_done{0};
  std::atomic<uint64_t> bytes_total{0};  // known to the source once its walk ends
  std::atomic<uint64_t> files_total{0};

  // The file in flight, for the master's view: set as each file starts (a
  // lock per file, not per block), read by the reporter.
  void set_current(std::string path) {
    std::lock_guard<std::mutex> lk(current_mu_);
    current_ = std::move(path);
  }
  std::string current() const {
    std::lock_guard<std::mutex> lk(current_mu_);
    return current_;
  }

 private:
  mutable std::mutex current_mu_;
  std::string current_;
};

// What one side reports when it is done.
struct CopySummary {
  uint64_t files = 0;
  uint64_t bytes = 0;
  uint64_t dirs = 0;
  uint64_t symlinks = 0;
  uint64_t kept = 0;       // exist and differ, left alone unasked (reported; exit 1)
  uint64_t unchanged = 0;  // already there: same size and mtime (or content)
  uint64_t ignored = 0;    // left alone as --update / --ignore-existing asked
  uint64_t failed = 0;
  uint64_t sparse_bytes = 0;                                // holes of sparse files: neither sent nor written
  uint64_t hard_links = 0;                                  // files made as a link to one already copied (-H)
  uint64_t resumed_bytes = 0;                               // not sent: verified blocks of a --partial file reused
  std::vector<std::pair<std::string, std::string>> errors;  // (path, message), the first kMaxErrors
  std::vector<std::string> kept_paths;                      // the first kMaxErrors kept
  uint64_t deleted = 0;                                     // removed by --delete (--dry-run: to be)
  std::vector<PlanEntry> plan;                              // --dry-run: the first kMaxPlanEntries
  uint64_t plan_omitted = 0;                                // ...and how many more
  size_t plan_bytes = 0;                                    // held in `plan`, at most kMaxPlanBytes

  // Bounded: the result message and memory stay small however many entries
  // fail; `failed` keeps the full count.
  static constexpr size_t kMaxErrors = 100;
  void add_error(std::string path, std::string message) {
    if (errors.size() < kMaxErrors) errors.emplace_back(std::move(path), std::move(message));
  }
  void add_kept(std::string path) {
    ++kept;
    if (kept_paths.size() < kMaxErrors) kept_paths.push_back(std::move(path));
  }
  void add_plan(PlanAction action, std::string path, uint64_t size,
                std::optional<std::array<uint64_t, 2>> inode = std::nullopt) {
    const size_t cost = path.size() + kPlanEntryCost + (inode ? kPlanInodeCost : 0);
    if (plan.size() < kMaxPlanEntries && plan_bytes + cost <= kMaxPlanBytes) {
      plan_bytes += cost;
      plan.push_back({action, std::move(path), size, inode});
    } else {
      ++plan_omitted;
    }
  }
};

}  // namespace rcp
