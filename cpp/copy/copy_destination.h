// CopyDestination: the destination rcpd's side of a copy. A control loop
// applies roots, directories and symlinks in order; a pool of workers takes
// chunk streams, writes them into temporary files, checks each chunk's
// xxh3-128 and renames a file into place once all its chunks verified.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/interval_set.h"
#include "base/logger.h"
#include "base/passwd_db.h"
#include "copy/dest_prune.h"
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

// Who an entry becomes (owners on); -1 leaves that id as it is.
struct OwnerIds {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  bool any() const { return uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1); }
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
    uint64_t holes = 0;  // bytes of sparse chunks that did not travel
    bool failed = false;
    bool skipped = false;
    bool replace = false;  // the destination's verdict allowed replacing what is there
    OwnerIds owner;        // from the announcement, mapped here
    Xattrs xattrs;         // ...and its extended attributes
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
    dev_t dev = 0;  // of the inode written, once committed (-H links to it)
    ino_t ino = 0;
  };
  // -H: a later name waiting for its first name to be written.
  struct PendingLink {
    uint32_t root = 0;
    std::string rel;
    bool replace = false;
  };
  // -H: the first name of an inode with several, which this copy writes.
  struct LinkTarget {
    uint32_t root = 0;
    std::string rel;
    enum class State { pending, done, failed } state = State::pending;
    dev_t dev = 0;
    ino_t ino = 0;
    std::vector<PendingLink> waiting{};
  };
  struct DirMeta {
    uint32_t root;
    std::string rel;
    uint32_t mode;
    int64_t mtime_s;
    uint32_t mtime_ns;
    OwnerIds owner{};
    Xattrs xattrs{};
  };
  // A file answered send or replace, until settled: whether it may replace
  // what is there, its owner and attributes, and with --partial what this
  // side offered from a kept partial file.
  struct Grant {
    uint64_t size = 0;  // as announced: every chunk header must say the same
    bool replace = false;
    OwnerIds owner;
    Xattrs xattrs;
    std::shared_ptr<PartialFile> partial;
    std::vector<uint8_t> offered;  // bitmap of the blocks offered for reuse
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
  // `bytes`: of the file, holes included; `holes`: those of them left unwritten.
  void end_chunk(uint64_t id, FileState& f, uint64_t bytes, uint64_t holes, const std::string& err,
                 ChunkVerdict verdict);
  bool settle(FileState& f);
  void wait_settled(std::unique_lock<std::mutex>& lk);  // mu_ held  // mu_ not held; true when renamed into place
  Result<void> on_control(const std::vector<uint8_t>& body);
  Result<void> on_root(const RootMsg& root);
  Result<void> on_dir(const DirMsg& dir);
  Result<void> on_symlink(const SymlinkMsg& link);
  // Decides each announced file (file_policy.h) and answers with one `verdicts`.
  Result<void> on_files(const FilesMsg& msg);
  // `number`: the file's place in the announcements; `budget`: block hashes
  // this `verdicts` may still carry; an offer of kept blocks goes to `offer`.
  FileVerdict decide_file(const FileEntry& file, uint64_t number, uint32_t& budget, ResumeOffer& offer);
  // --partial: the kept partial file of `file`, re-hashed, as an offer (at most `budget` blocks).
  std::shared_ptr<PartialFile> resume_partial(const DirFd& dir, const std::string& name, const FileEntry& file,
                                              uint32_t& budget, ResumeOffer& offer);
  // -H: answers a later name whose first name this copy writes: linked (made
  // now, or once the first is in place); nullopt to have its data sent.
  std::optional<FileVerdict> link_later_name(const FileEntry& file, bool replace);
  // Makes `rel` a hard link to the inode `target` wrote (never anything else
  // at its name): false when `rel` exists and `replace` is off.
  Result<bool> make_link(const LinkTarget& target, uint32_t root, const std::string& rel, bool replace);
  // After a first name settled: the later names waiting for it, linked now.
  void settle_links(const FileState& f, bool committed);
  // mu_ held: takes `bytes` of the -H budget; false (and one warning) when it is spent.
  bool take_link_bytes(size_t bytes);
  // The ids the source's owner maps to here (by name unless numeric_ids).
  OwnerIds owner_ids(const std::optional<Ownership>& owner) const;
  // fchownat(dir, name, AT_SYMLINK_NOFOLLOW), or the fd itself when name is
  // empty; a failure is one warning for the whole copy, not a failed entry.
  void apply_owner(int dir, const std::string& name, const OwnerIds& ids, const std::string& path);
  // Sets the extended attributes this side carries; false (and `why`) when
  // one could not be set. A filesystem without them is one warning, true.
  bool apply_xattrs(int dir, const std::string& name, const Xattrs& xattrs, const std::string& path, std::string& why);
  // mu_ held: counts a file that exists, differs and stays.
  void keep_entry(const std::string& path);
  // Sets directory modes and mtimes deepest first (and with --fsync flushes each).
  void apply_dir_meta();
  // --delete: removes what the source did not announce under each copied
  // directory, unless something failed.
  void delete_extraneous();
  // mu_ held: a line of the --dry-run plan.
  void plan(PlanAction action, const std::string& path, uint64_t size,
            std::optional<std::array<uint64_t, 2>> inode = std::nullopt);
  // Where `rel` would go and what is there now, creating nothing in a dry run
  // (no directory yet: no parent and nothing there).
  struct Spot {
    DirFd dir;  // null in a dry run when the directory does not exist yet
    std::string name;
    std::optional<struct stat> existing;
  };
  Result<Spot> spot_of(uint32_t root, const std::string& rel);
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
  std::condition_variable opened_cv_;    // a file's `opened` (chunks of one file wait for its creation)
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
  uint64_t next_announced_ = 0;                     // the number the next announced file must carry
  std::map<uint64_t, LinkTarget> link_targets_;     // -H, by announced number: first names this copy writes
  std::map<std::string, uint64_t> target_numbers_;  // grant key -> its number in link_targets_
  FilePolicy policy_;
  bool dry_run_ = false;
  AnnouncedSet announced_;                 // with --delete: every entry the source announced
  PasswdDb names_;                         // owners by name: this host's users and groups
  std::atomic<bool> owner_warned_{false};  // one warning for all the owners that could not be set
  std::atomic<bool> xattr_warned_{false};  // one warning when the filesystem takes no extended attributes
  size_t held_xattr_bytes_ = 0;            // mu_: of granted files and directories, bounded
  size_t held_link_bytes_ = 0;             // mu_: -H first names remembered and later names waiting, bounded
  bool link_budget_warned_ = false;        // mu_: one warning when -H runs out of that budget
};

}  // namespace rcp
