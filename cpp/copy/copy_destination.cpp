#include "copy/copy_destination.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "copy/path_validator.h"
#include "copy/sparse.h"
#include "wire/frame.h"
#include "wire/messages.h"
#include "wire/partial_blocks.h"

namespace rcp {

namespace {

constexpr size_t kBlock = 1u << 20;

// pwritev until all of `views` is written at `offset`: one system call per
// batch of received blocks, from the link's own buffers. 0, or the errno (a
// write that makes no progress is a full disk: it sets no errno of its own).
int write_all(int fd, const std::vector<Link::View>& views, uint64_t offset) {
  constexpr size_t kMaxIov = 64;
  std::array<iovec, kMaxIov> iov{};
  size_t next = 0;  // first view not yet in iov
  size_t skip = 0;  // bytes of views[next] already written
  while (next < views.size()) {
    size_t count = 0;
    for (size_t i = next; i < views.size() && count < kMaxIov; ++i, ++count) {
      const size_t from = i == next ? skip : 0;
      iov[count].iov_base = const_cast<uint8_t*>(views[i].bytes.data() + from);
      iov[count].iov_len = views[i].bytes.size() - from;
    }
    ssize_t n = pwritev(fd, iov.data(), static_cast<int>(count), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return ENOSPC;
    offset += static_cast<uint64_t>(n);
    auto left = static_cast<size_t>(n);
    while (left > 0) {
      const size_t rest = views[next].bytes.size() - skip;
      if (left < rest) {
        skip += left;
        break;
      }
      left -= rest;
      skip = 0;
      ++next;
    }
  }
  return 0;
}

constexpr Nanos kReadTimeout = 120 * kSeconds;
constexpr size_t kMaxFilesInFlight = 65536;
// Files answered "send" and not yet settled: an honest source has its job
// queue and the answers in flight, far fewer.
constexpr size_t kMaxGranted = 1u << 18;
// -H: first names remembered for later names to link to, and later names
// waiting for their first name to be written, in count and in bytes; past
// either, later names get their data (memory stays bounded however many
// links a tree has, and whatever a source announces and never sends).
constexpr size_t kMaxLinkTargets = 1u << 20;
constexpr size_t kMaxLinkBytes = 64u << 20;
// What a remembered first name costs (its path twice while it is pending:
// in link_targets_ and in target_numbers_), and a waiting later name.
size_t target_cost(const std::string& rel) { return 2 * rel.size() + 128; }
size_t pending_target_cost(const std::string& rel) { return rel.size() + 32; }  // the part freed once settled
size_t waiting_cost(const std::string& rel) { return rel.size() + 64; }
// Extended attributes held for files not yet written and directories not yet
// finished: an honest source's are far fewer.
constexpr size_t kMaxHeldXattrBytes = 64u << 20;

std::string grant_key(uint32_t root, const std::string& rel) {
  std::string key(reinterpret_cast<const char*>(&root), sizeof root);
  return key + rel;
}
// Never recreate setuid/setgid bits from a peer's say-so.
constexpr uint32_t kFileModeMask = 0777;
constexpr uint32_t kDirModeMask = 01777;

Result<void> read_exact(Link& link, int64_t id, std::span<uint8_t> out) {
  size_t got = 0;
  while (got < out.size()) {
    auto n = link.read(id, out.subspan(got), kReadTimeout);
    if (!n) return n.error();
    if (*n == 0) return make_error(Errc::protocol, "data stream ended early (truncated chunk)");
    got += *n;
  }
  return {};
}

timespec to_ts(int64_t s, uint32_t ns) { return timespec{static_cast<time_t>(s), static_cast<long>(ns)}; }

}  // namespace

CopyDestination::CopyDestination(std::shared_ptr<Link> peer, std::unique_ptr<DestTree> tree,
                                 const DestinationOptions& options, const Logger& logger, TransferCounters& counters)
    : peer_(std::move(peer)), tree_(std::move(tree)), options_(options), logger_(logger), counters_(counters) {
  const DestSpec& spec = tree_->spec();
  policy_ = FilePolicy{spec.overwrite, spec.update, spec.ignore_existing, spec.checksum};
  dry_run_ = spec.dry_run;
  if ((spec.owner || spec.group) && !spec.numeric_ids) {
    if (auto db = PasswdDb::load(); db)
      names_ = std::move(*db);
    else
      logger_.warn("owners: " + db.error().message + "; mapping by id only");
  }
}

OwnerIds CopyDestination::owner_ids(const std::optional<Ownership>& owner) const {
  const DestSpec& spec = tree_->spec();
  OwnerIds ids;
  if (!owner) return ids;
  // By name where both sides know it (as rsync and cp do), else the number.
  if (spec.owner) {
    const PasswdEntry* u = spec.numeric_ids || owner->user.empty() ? nullptr : names_.user(owner->user);
    ids.uid = static_cast<uid_t>(u != nullptr ? u->uid : owner->uid);
  }
  if (spec.group) {
    const GroupEntry* g = spec.numeric_ids || owner->group.empty() ? nullptr : names_.group(owner->group);
    ids.gid = static_cast<gid_t>(g != nullptr ? g->gid : owner->gid);
  }
  return ids;
}

namespace {

size_t bytes_of(const Xattrs& xattrs) {
  size_t n = 0;
  for (const auto& [name, value] : xattrs) n += name.size() + value.size();
  return n;
}

}  // namespace

bool CopyDestination::apply_xattrs(int dir, const std::string& name, const Xattrs& xattrs, const std::string& path,
                                   std::string& why) {
  if (xattrs.empty()) return true;
  int err = 0;
  auto r = write_xattrs(dir, name, xattrs, tree_->spec().xattrs, err);
  if (r) return true;
  if (err == ENOTSUP || err == EOPNOTSUPP) {
    if (!xattr_warned_.exchange(true))
      logger_.warn(path +
                   ": this filesystem takes no extended attributes (or not these); none are set, "
                   "without more warnings");
    return true;
  }
  why = r.error().message;
  return false;
}

void CopyDestination::apply_owner(int dir, const std::string& name, const OwnerIds& ids, const std::string& path) {
  if (!ids.any()) return;
  const int rc =
      name.empty() ? fchown(dir, ids.uid, ids.gid) : fchownat(dir, name.c_str(), ids.uid, ids.gid, AT_SYMLINK_NOFOLLOW);
  if (rc == 0 || owner_warned_.exchange(true)) return;
  logger_.warn(path + ": cannot set its owner/group (" + std::strerror(errno) +
               "); owners that cannot be set are left as they are, without more warnings");
}

void CopyDestination::plan(PlanAction action, const std::string& path, uint64_t size,
                           std::optional<std::array<uint64_t, 2>> inode) {
  if (dry_run_) summary_.add_plan(action, path, size, inode);
}

Result<CopyDestination::Spot> CopyDestination::spot_of(uint32_t root, const std::string& rel) {
  Spot spot;
  if (dry_run_) {
    auto parent = tree_->existing_parent_of(root, rel);
    if (!parent) return parent.error();
    if (!*parent) return spot;  // its directory would be created: nothing there yet
    spot.dir = (*parent)->first;
    spot.name = (*parent)->second;
  } else {
    auto parent = tree_->parent_of(root, rel);
    if (!parent) return parent.error();
    spot.dir = parent->first;
    spot.name = parent->second;
  }
  auto existing = tree_->lookup(spot.dir, spot.name);
  if (!existing) return existing.error();
  spot.existing = *existing;
  return spot;
}

CopyDestination::~CopyDestination() { tree_->remove_temps(); }

void CopyDestination::fail_entry(const std::string& path, const std::string& what, bool log, bool cause) {
  // Once per path: a file the source failed to read also fails here, and
  // whichever stream told first, the source's own reason is the one kept.
  if (!failed_paths_.insert(Xxh128::of({reinterpret_cast<const uint8_t*>(path.data()), path.size()})).second) {
    if (!cause) return;
    for (auto& [p, message] : summary_.errors)
      if (p == path) message = what;
    return;
  }
  ++summary_.failed;
  if (log) logger_.info(path + ": " + what);  // -v: the result lists it once, with its path
  summary_.add_error(path, what);
}

Result<CopySummary> CopyDestination::run() {
  std::vector<std::thread> workers;
  for (size_t i = 0; i < options_.workers; ++i) workers.emplace_back([this] { worker(); });
  Result<void> status;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (expected_files_ >= 0) {
        // All entries announced: wait for every file to settle, as long as
        // bytes keep coming (a source may announce files it never sends).
        wait_settled(lk);
        break;
      }
    }
    auto msg = peer_->recv_message(3600 * kSeconds);
    if (!msg) {
      status = msg.error();
      break;
    }
    if (auto r = on_control(*msg); !r) {
      status = r;
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    if (status && fatal_.code != Errc::ok) status = fatal_;
  }
  cv_.notify_all();
  peer_->stop_accepting_data();
  for (auto& t : workers) t.join();
  if (!status) {
    tree_->remove_temps();
    return status.error();
  }
  {
    // -H: later names whose first name never settled (no data came for it).
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [number, target] : link_targets_)
      for (const auto& link : target.waiting)
        fail_entry(tree_->display(link.root, link.rel), "hard link: its first name was never written", true);
  }
  // Before the directories get their mtimes: removing an entry changes its directory's.
  if (tree_->spec().delete_extraneous) delete_extraneous();
  if (!dry_run_) apply_dir_meta();
  (void)peer_->send_message(FinishedMsg{}.encode());
  // The source hangs up once it has read "finished"; closing first could drop it.
  for (int i = 0; i < 100 && !peer_->closed(); ++i) (void)peer_->recv_message(100 * kMillis);
  std::lock_guard<std::mutex> lk(mu_);
  return summary_;
}

void CopyDestination::wait_settled(std::unique_lock<std::mutex>& lk) {
  const auto expected = static_cast<uint64_t>(expected_files_);
  uint64_t bytes = counters_.bytes_done.load(), settled = settled_;
  auto quiet_since = std::chrono::steady_clock::now();
  while (settled_ < expected && fatal_.code == Errc::ok) {
    cv_.wait_for(lk, std::chrono::milliseconds(200));
    const auto now = std::chrono::steady_clock::now();
    if (counters_.bytes_done.load() != bytes || settled_ != settled) {
      bytes = counters_.bytes_done.load();
      settled = settled_;
      quiet_since = now;
    } else if (now - quiet_since > std::chrono::nanoseconds(options_.stall_timeout)) {
      fatal_ = make_error(Errc::protocol, "the source announced " + std::to_string(expected) + " files but " +
                                              std::to_string(settled_) + " arrived, and nothing more for " +
                                              std::to_string(options_.stall_timeout / kSeconds) + " s");
    }
  }
}

Result<void> CopyDestination::on_control(const std::vector<uint8_t>& body) {
  auto m = decode_message(body);
  if (!m) return m.error();
  switch (static_cast<MsgType>(m->type)) {
    case MsgType::done: {
      auto done = DoneMsg::decode(*m);
      if (!done) return done.error();
      std::lock_guard<std::mutex> lk(mu_);
      expected_files_ = static_cast<int64_t>(std::min<uint64_t>(done->files, INT64_MAX));
      cv_.notify_all();
      return {};
    }
    case MsgType::root: {
      auto root = RootMsg::decode(*m);
      if (!root) return root.error();
      return on_root(*root);
    }
    case MsgType::dir: {
      auto dir = DirMsg::decode(*m);
      if (!dir) return dir.error();
      return on_dir(*dir);
    }
    case MsgType::symlink: {
      auto link = SymlinkMsg::decode(*m);
      if (!link) return link.error();
      return on_symlink(*link);
    }
    case MsgType::files: {
      auto files = FilesMsg::decode(*m);
      if (!files) return files.error();
      return on_files(*files);
    }
    case MsgType::source_error: {
      auto e = SourceErrorMsg::decode(*m);
      if (!e) return e.error();
      std::lock_guard<std::mutex> lk(mu_);
      fail_entry(tree_->display(e->index, e->relpath), "source: " + e->text, false, true);  // the source has logged it
      return {};
    }
    default: return make_error(Errc::protocol, "unexpected control message type " + std::to_string(m->type));
  }
}

Result<void> CopyDestination::on_root(const RootMsg& root) {
  if (!root.error.empty()) {
    std::lock_guard<std::mutex> lk(mu_);
    fail_entry(root.name, root.error, false);  // the source has logged it
    return {};
  }
  auto r = tree_->set_root(root.index, root.name, root.kind, root.operand_index(), root.roots);
  // A hostile root (a name the operand does not allow, an unrequested index) ends the copy.
  if (!r && r.error().code == Errc::protocol)
    return make_error(Errc::protocol, "the source misbehaved: " + r.error().message);
  if (!r) return r;
  cv_.notify_all();
  return {};
}

Result<void> CopyDestination::on_dir(const DirMsg& d) {
  if (tree_->spec().delete_extraneous) announced_.add(d.index, d.relpath, true);
  if (dry_run_) {
    auto dir = tree_->existing_directory(d.index, d.relpath);
    std::lock_guard<std::mutex> lk(mu_);
    if (!dir) {
      if (dir.error().code == Errc::protocol) return dir.error();
      fail_entry(tree_->display(d.index, d.relpath), dir.error().message, true);
      return {};
    }
    ++summary_.dirs;
    if (!*dir) plan(PlanAction::create, tree_->display(d.index, d.relpath), 0);
    return {};
  }
  auto dir = tree_->directory(d.index, d.relpath);
  if (dir && tree_->created(*dir)) {
    // Given the source's read and search bits now (never group/other write
    // while the copy runs): a copy killed before its end leaves no 0700
    // directory that a rerun, which only narrows existing modes, would keep.
    // Its owner first, so no other group may enter it meanwhile.
    const OwnerIds ids = owner_ids(d.owner);
    apply_owner((*dir)->get(), "", ids, tree_->display(d.index, d.relpath));
    (void)fchmod((*dir)->get(), 0700 | (d.mode & 0755));
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (!dir) {
    if (dir.error().code == Errc::protocol) return dir.error();
    fail_entry(tree_->display(d.index, d.relpath), dir.error().message, true);
    return {};
  }
  struct stat st {};
  if (fstat((*dir)->get(), &st) != 0) {
    fail_entry(tree_->display(d.index, d.relpath), std::string("stat: ") + std::strerror(errno), true);
    return {};
  }
  // One entry per directory on disk, however often the source names it.
  DirMeta meta{d.index, d.relpath, d.mode & kDirModeMask, d.mtime_s, d.mtime_ns, owner_ids(d.owner), {}};
  // Set when the copy ends (a default ACL must not reach the files copied in);
  // what all directories hold meanwhile is bounded.
  if (!d.xattrs.empty() && held_xattr_bytes_ + bytes_of(d.xattrs) <= kMaxHeldXattrBytes) {
    held_xattr_bytes_ += bytes_of(d.xattrs);
    meta.xattrs = d.xattrs;
  } else if (!d.xattrs.empty()) {
    fail_entry(tree_->display(d.index, d.relpath), "too many extended attributes held at once; not set", true);
  }
  if (dir_meta_.insert_or_assign({st.st_dev, st.st_ino}, std::move(meta)).second) ++summary_.dirs;
  return {};
}

Result<void> CopyDestination::on_symlink(const SymlinkMsg& l) {
  if (tree_->spec().delete_extraneous) announced_.add(l.index, l.relpath, false);
  auto spot = spot_of(l.index, l.relpath);
  if (!spot) {
    if (spot.error().code == Errc::protocol) return spot.error();
    std::lock_guard<std::mutex> lk(mu_);
    fail_entry(tree_->display(l.index, l.relpath), spot.error().message, true);
    return {};
  }
  const DirFd& dir = spot->dir;
  const std::string& name = spot->name;
  const std::optional<struct stat>& existing = spot->existing;
  // A symlink is "the same" when it is a symlink with the same target.
  FileVerdict verdict = FileVerdict::send;
  if (existing) {
    bool same = false;
    if (S_ISLNK(existing->st_mode)) {
      std::string target(kMaxLinkTarget + 1, '\0');
      ssize_t n = readlinkat(dir->get(), name.c_str(), target.data(), target.size());
      same = n >= 0 && std::string_view(target.data(), static_cast<size_t>(n)) == l.target;
    }
    FilePolicy policy = policy_;
    policy.checksum = false;
    verdict = same ? FileVerdict::unchanged
                   : decide(policy, FileEntry{l.index, l.relpath, 0, l.mtime_s, l.mtime_ns, 0, {}}, existing, {});
  }
  std::string tmp;
  Result<bool> committed = false;
  if (dry_run_) {
    committed = wants_data(verdict);
  } else if (wants_data(verdict)) {
    if (auto r = tree_->create_temp_symlink(dir, l.target, tmp); !r) {
      committed = r.error();
    } else {
      // The link itself gets the owner and mtime; its target is never touched.
      apply_owner(dir->get(), tmp, owner_ids(l.owner), tree_->display(l.index, l.relpath));
      std::string why;
      if (!apply_xattrs(dir->get(), tmp, l.xattrs, tree_->display(l.index, l.relpath), why)) {
        tree_->discard(dir, tmp);
        committed = make_error(Errc::io, why);
      } else {
        timespec times[2] = {{0, UTIME_OMIT}, to_ts(l.mtime_s, l.mtime_ns)};
        utimensat(dir->get(), tmp.c_str(), times, AT_SYMLINK_NOFOLLOW);
        committed = tree_->commit(dir, tmp, name, verdict == FileVerdict::replace);
      }
    }
  }
  std::lock_guard<std::mutex> lk(mu_);
  const std::string path = tree_->display(l.index, l.relpath);
  if (!committed) {
    fail_entry(path, committed.error().message, true);
  } else if (verdict == FileVerdict::unchanged) {
    ++summary_.unchanged;
    plan(PlanAction::unchanged, path, 0);
  } else if (verdict == FileVerdict::ignored) {
    ++summary_.ignored;
    plan(PlanAction::ignored, path, 0);
  } else if (!*committed) {
    keep_entry(path);
    plan(PlanAction::kept, path, 0);
  } else {
    ++summary_.symlinks;
    plan(verdict == FileVerdict::replace ? PlanAction::update : PlanAction::create, path, 0);
  }
  return {};
}

void CopyDestination::keep_entry(const std::string& path) {
  summary_.add_kept(path);
  // One summary line at the end names the first few; -v lists them all.
  logger_.info(path + ": exists and differs; kept (use --overwrite, --update or --ignore-existing)");
}

Result<void> CopyDestination::on_files(const FilesMsg& msg) {
  if (msg.first != next_announced_)
    return make_error(Errc::protocol, "announced files numbered from " + std::to_string(msg.first) + ", expected " +
                                          std::to_string(next_announced_));
  next_announced_ += msg.files.size();
  VerdictsMsg answer{msg.first, {}, {}};
  answer.verdicts.reserve(msg.files.size());
  uint32_t budget = kMaxResumeBlocks;  // block hashes this answer may carry
  for (const auto& file : msg.files) {
    // The root names what the path may be: a file root is the file itself.
    const char kind = tree_->root_kind(file.index);
    if (kind == '\0') return make_error(Errc::protocol, "a file announced for an unannounced source");
    if ((kind == 'f') != file.relpath.empty() || kind == 'l')
      return make_error(Errc::protocol, "a file announced where its source says there is none");
    if (auto r = split_relative_path(file.relpath); !r) return r.error();
    // Links only when the user asked for -H: a source must not decide on its own that names share an inode.
    if ((file.link_first || file.link_to || file.inode) && !tree_->spec().hard_links)
      return make_error(Errc::protocol, "a hard link announced, but the copy is without -H (hard_links)");
    if (tree_->spec().delete_extraneous) announced_.add(file.index, file.relpath, false);
    ResumeOffer offer;
    answer.verdicts.push_back(decide_file(file, msg.first + answer.verdicts.size(), budget, offer));
    // An offer only with a verdict that asks for data: a file that failed
    // after its partial file was found (no room for another grant) gets none.
    if (!offer.blocks.empty() && wants_data(answer.verdicts.back())) {
      offer.pos = static_cast<uint32_t>(answer.verdicts.size() - 1);
      answer.resume.push_back(std::move(offer));
    }
  }
  return peer_->send_message(answer.encode());
}

std::shared_ptr<PartialFile> CopyDestination::resume_partial(const DirFd& dir, const std::string& name,
                                                             const FileEntry& file, uint32_t& budget,
                                                             ResumeOffer& offer) {
  auto partial = std::make_shared<PartialFile>();
  auto found = find_partial(dir->get(), PartialKey{name, file.size, file.mtime_s, file.mtime_ns}, *partial);
  if (!found) {
    logger_.info(tree_->display(file.index, file.relpath) + ": partial file not resumed: " + found.error().message);
    return nullptr;
  }
  if (*found != PartialFound::resumed) return nullptr;  // none, or another run's: this file starts afresh
  // Offered: the blocks that re-hashed as recorded, as many as this answer can carry.
  for (const auto& [block, hash] : partial->kept) {
    if (budget == 0) break;
    --budget;
    set_bit(offer.blocks, block);
    offer.hashes.insert(offer.hashes.end(), hash.begin(), hash.end());
  }
  if (!offer.blocks.empty()) offer.blocks.resize(bitmap_bytes(partial_blocks(file.size)), 0);  // one bit per block
  if (logger_.enabled(LogLevel::debug))
    logger_.debug(tree_->display(file.index, file.relpath) + ": partial file has " +
                  std::to_string(partial->kept.size()) + " verified blocks");
  return partial;
}

FileVerdict CopyDestination::decide_file(const FileEntry& file, uint64_t number, uint32_t& budget, ResumeOffer& offer) {
  // The display path only when something is said about the file: most are just sent.
  auto path = [&] { return tree_->display(file.index, file.relpath); };
  auto fail = [&](const std::string& why) {
    std::lock_guard<std::mutex> lk(mu_);
    fail_entry(path(), why, true);
    return FileVerdict::failed;
  };
  auto spot = spot_of(file.index, file.relpath);
  if (!spot) return fail(spot.error().message);
  const DirFd& dir = spot->dir;
  const std::string& name = spot->name;
  const std::optional<struct stat>& existing = spot->existing;
  std::optional<bool> same_content;
  if (policy_.checksum && existing && S_ISREG(existing->st_mode) &&
      static_cast<uint64_t>(existing->st_size) == file.size && file.digest.size() == kDigestSize) {
    // The source hashed its copy before announcing it, this side hashes its own now.
    auto fd = tree_->open_existing(dir, name, *existing);
    if (!fd) return fail("cannot compare: " + fd.error().message);
    Xxh128 hash;
    std::vector<uint8_t> buf(kBlock);
    for (;;) {
      ssize_t n = read(fd->get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(std::string("cannot compare: ") + std::strerror(errno));
      if (n == 0) break;
      hash.update({buf.data(), static_cast<size_t>(n)});
    }
    Digest128 d = hash.digest();
    same_content = std::equal(d.begin(), d.end(), file.digest.begin());
  }
  const FileVerdict verdict = decide(policy_, file, existing, same_content);
  if (file.link_to && wants_data(verdict) && !dry_run_) {
    if (auto linked = link_later_name(file, verdict == FileVerdict::replace)) return *linked;
  }
  std::shared_ptr<PartialFile> partial;
  if (tree_->spec().partial && !dry_run_ && wants_data(verdict) && partial_applies(file.size))
    partial = resume_partial(dir, name, file, budget, offer);
  std::lock_guard<std::mutex> lk(mu_);
  if (dry_run_ && wants_data(verdict)) {
    // Counted as the real run would count it once written; the source is
    // told there is nothing to send.
    ++summary_.files;
    summary_.bytes += file.size;
    plan(verdict == FileVerdict::replace ? PlanAction::update : PlanAction::create, path(), file.size, file.inode);
    return FileVerdict::ignored;
  }
  switch (verdict) {
    case FileVerdict::send:
    case FileVerdict::replace:
      if (granted_.size() >= kMaxGranted) {
        fail_entry(path(), "the source keeps too many files announced and not sent", true);
        return FileVerdict::failed;
      }
      if (held_xattr_bytes_ + bytes_of(file.xattrs) > kMaxHeldXattrBytes) {
        fail_entry(path(), "the source keeps too many extended attributes announced and not sent", true);
        return FileVerdict::failed;
      }
      held_xattr_bytes_ += bytes_of(file.xattrs);
      granted_[grant_key(file.index, file.relpath)] = Grant{.size = file.size,
                                                            .replace = verdict == FileVerdict::replace,
                                                            .owner = owner_ids(file.owner),
                                                            .xattrs = file.xattrs,
                                                            .partial = std::move(partial),
                                                            .offered = offer.blocks};
      // Later names may link to it: it is a file this copy writes, now.
      if (file.link_first && link_targets_.size() < kMaxLinkTargets &&
          !target_numbers_.contains(grant_key(file.index, file.relpath)) &&
          take_link_bytes(target_cost(file.relpath))) {
        target_numbers_.emplace(grant_key(file.index, file.relpath), number);
        link_targets_[number] = LinkTarget{file.index, file.relpath};
      }
      break;
    case FileVerdict::unchanged:
      ++summary_.unchanged;
      plan(PlanAction::unchanged, path(), file.size);
      break;
    case FileVerdict::ignored:
      ++summary_.ignored;
      plan(PlanAction::ignored, path(), file.size);
      break;
    case FileVerdict::kept:
      keep_entry(path());
      plan(PlanAction::kept, path(), file.size);
      break;
    case FileVerdict::failed:
    case FileVerdict::linked: break;
  }
  return verdict;
}

std::optional<FileVerdict> CopyDestination::link_later_name(const FileEntry& file, bool replace) {
  LinkTarget target;
  {
    std::lock_guard<std::mutex> lk(mu_);
    // Only a first name this copy writes in this run: never a file that was there.
    auto it = link_targets_.find(*file.link_to);
    if (it == link_targets_.end() || it->second.state == LinkTarget::State::failed) return std::nullopt;
    if (it->second.state == LinkTarget::State::pending) {
      // Until "done" a source may announce later names of a file it never sends: they wait within the budget.
      if (!take_link_bytes(waiting_cost(file.relpath))) return std::nullopt;
      it->second.waiting.push_back(PendingLink{file.index, file.relpath, replace});
      return FileVerdict::linked;
    }
    target = it->second;
  }
  auto made = make_link(target, file.index, file.relpath, replace);
  std::lock_guard<std::mutex> lk(mu_);
  if (!made) return std::nullopt;  // the first name moved or the filesystem refused: the data comes
  if (!*made) {
    keep_entry(tree_->display(file.index, file.relpath));  // appeared since it was decided
    return FileVerdict::kept;
  }
  ++summary_.hard_links;
  return FileVerdict::linked;
}

Result<bool> CopyDestination::make_link(const LinkTarget& target, uint32_t root, const std::string& rel, bool replace) {
  auto from = tree_->parent_of(target.root, target.rel);
  if (!from) return from.error();
  auto to = tree_->parent_of(root, rel);
  if (!to) return to.error();
  // The inode this copy wrote, held by an fd: whatever is at its name now is
  // checked, and the link made through the fd, not the name.
  UniqueFd fd(openat(from->first->get(), from->second.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return make_error(Errc::io, std::string("hard link: ") + std::strerror(errno));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != target.dev || st.st_ino != target.ino)
    return make_error(Errc::io, "hard link: its first name is no longer the file this copy wrote");
  return tree_->link_into_place(to->first, fd, to->second, replace);
}

void CopyDestination::settle_links(const FileState& f, bool committed) {
  LinkTarget target;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto number = target_numbers_.find(grant_key(f.root, f.rel));
    if (number == target_numbers_.end()) return;
    auto it = link_targets_.find(number->second);
    target_numbers_.erase(number);
    if (it == link_targets_.end()) return;
    LinkTarget& t = it->second;
    t.state = committed ? LinkTarget::State::done : LinkTarget::State::failed;
    t.dev = f.dev;
    t.ino = f.ino;
    target = t;
    std::vector<PendingLink>().swap(t.waiting);
    // A first name that failed is never linked to (later names get their
    // data): forgotten now. One in place stays, as a later name may still come.
    size_t freed = committed ? pending_target_cost(target.rel) : target_cost(target.rel);
    for (const auto& link : target.waiting) freed += waiting_cost(link.rel);
    if (!committed) link_targets_.erase(it);
    held_link_bytes_ -= std::min(held_link_bytes_, freed);
  }
  for (const auto& link : target.waiting) {
    Result<bool> made = make_error(
        Errc::io, "hard link: its first name, " + tree_->display(target.root, target.rel) + ", was not written");
    if (committed) made = make_link(target, link.root, link.rel, link.replace);
    std::lock_guard<std::mutex> lk(mu_);
    const std::string path = tree_->display(link.root, link.rel);
    if (!made)
      fail_entry(path, made.error().message, true);
    else if (!*made)
      keep_entry(path);
    else
      ++summary_.hard_links;
  }
}

bool CopyDestination::take_link_bytes(size_t bytes) {
  if (held_link_bytes_ + bytes <= kMaxLinkBytes) {
    held_link_bytes_ += bytes;
    return true;
  }
  if (!link_budget_warned_) {
    link_budget_warned_ = true;
    logger_.warn("-H: more hard-linked names than this side keeps track of (" + std::to_string(kMaxLinkBytes >> 20) +
                 " MiB); further names of those files are copied as separate files");
  }
  return false;
}

void CopyDestination::worker() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;
    }
    auto id = peer_->accept_data(200 * kMillis);
    if (!id) {
      if (id.error().code == Errc::timeout) continue;
      std::lock_guard<std::mutex> lk(mu_);
      if (fatal_.code == Errc::ok && !stop_) fatal_ = id.error();
      cv_.notify_all();
      return;
    }
    if (auto r = receive_stream(*id); !r) {
      std::lock_guard<std::mutex> lk(mu_);
      if (fatal_.code == Errc::ok) fatal_ = r.error();
      cv_.notify_all();
      peer_->close(r.error().message);
      return;
    }
  }
}

CopyDestination::FileState* CopyDestination::begin_chunk(const ChunkHeader& h, std::string& err, bool& must_open) {
  if (settled_ids_.contains(h.file_id)) {
    err = "chunk for a file already settled: " + h.relpath.substr(0, 200);
    return nullptr;
  }
  auto it = files_.find(h.file_id);
  if (it == files_.end()) {
    // An honest source has a few thousand files in flight and settles ids
    // almost in order; far more is a peer making this side keep state.
    if (files_.size() >= kMaxFilesInFlight || settled_ids_.ranges() >= kMaxFilesInFlight) {
      err = "the source keeps too many files open at once";
      return nullptr;
    }
    // Only what this side asked for, and replacing only what it allowed.
    auto grant = granted_.find(grant_key(h.root, h.relpath));
    if (grant == granted_.end()) {
      err = "data for a file the destination did not ask for: " + h.relpath.substr(0, 200);
      return nullptr;
    }
    const Grant& g = grant->second;
    // The size decided on: a shorter one would leave a resumed partial
    // file's old tail, a longer one bytes nobody compared.
    if (h.size != g.size) {
      err = "a chunk header says " + std::to_string(h.size) + " bytes, its file was announced with " +
            std::to_string(g.size) + ": " + h.relpath.substr(0, 200);
      return nullptr;
    }
    // Reused blocks: only ones this side offered, in the block grid it knows.
    if (!h.reused.empty()) {
      bool offered = h.chunk_bytes() == partial_block_bytes(h.size) && g.partial;
      for (uint32_t b = 0; offered && b < h.nchunks; ++b) offered = !bit_set(h.reused, b) || bit_set(g.offered, b);
      if (!offered) {
        err = "the source reuses blocks the destination did not offer: " + h.relpath.substr(0, 200);
        return nullptr;
      }
    }
    FileState f;
    f.replace = g.replace;
    f.owner = g.owner;
    f.xattrs = g.xattrs;
    f.partial = g.partial;
    f.partial_wanted =
        tree_->spec().partial && partial_applies(h.size) && h.chunk_bytes() == partial_block_bytes(h.size);
    f.reused = h.reused;
    f.reused_count = bits_set(h.reused);
    // Over the bitmap, not the declared count: a peer may declare 2^32-1 chunks, and this runs under mu_.
    for (uint32_t b = 0; b < bitmap_span(h.reused, h.nchunks); ++b)
      if (bit_set(h.reused, b)) f.reused_bytes += std::min(h.chunk_bytes(), h.size - b * h.chunk_bytes());
    f.root = h.root;
    f.rel = h.relpath;
    f.size = h.size;
    f.chunk_bytes = h.chunk_bytes();
    f.mode = h.mode & kFileModeMask;
    f.mtime_s = h.mtime_s;
    f.mtime_ns = h.mtime_ns;
    f.nchunks = h.nchunks;
    it = files_.emplace(h.file_id, std::move(f)).first;
  }
  FileState& f = it->second;
  if (f.root != h.root || f.rel != h.relpath || f.size != h.size || f.nchunks != h.nchunks ||
      f.chunk_bytes != h.chunk_bytes() || f.reused != h.reused) {
    err = "chunks of one file disagree about its path, size, chunk length or reused blocks";
    return nullptr;
  }
  // Only chunks that arrived are remembered: memory follows the bytes received.
  if (!f.seen.insert(h.chunk).second) {
    err = "duplicate chunk " + std::to_string(h.chunk) + " of " + h.relpath.substr(0, 200);
    return nullptr;
  }
  must_open = !f.opening;
  f.opening = true;
  return &f;
}

bool CopyDestination::start_partial(FileState& f) {
  auto partial = std::make_shared<PartialFile>();
  auto made = create_partial(f.dir->get(), PartialKey{f.name, f.size, f.mtime_s, f.mtime_ns}, *partial);
  if (!made || !*made) return false;  // another run's, or none can be made: an ordinary temporary
  f.partial = std::move(partial);
  return true;
}

void CopyDestination::open_file(FileState& f) {
  // Runs without mu_: creating inodes is the slow part of small files, and
  // other workers' files must not wait for it. Only this thread writes these
  // fields until `opened` is published under mu_.
  auto parent = tree_->parent_of(f.root, f.rel);
  if (!parent) {
    f.failed = true;
    f.error = parent.error().message;
  } else {
    f.dir = parent->first;
    f.name = parent->second;
    // A file that appeared since it was decided is caught when it is linked
    // or renamed into place (no replace); a partial file is looked for now,
    // so its kept blocks are not overwritten for nothing.
    if (!f.replace && (f.partial || f.partial_wanted) && tree_->exists(f.dir, f.name)) {
      f.skipped = true;
    } else if (f.partial) {  // resumed: written into the kept partial file
      f.tmp = f.partial->data_name;
      f.fd = std::shared_ptr<UniqueFd>(f.partial, &f.partial->data);
      // The record keeps only what the source reuses: the rest is recorded again as it verifies.
      std::vector<uint32_t> reused;
      for (uint32_t b = 0; b < bitmap_span(f.reused, f.nchunks); ++b)
        if (bit_set(f.reused, b)) reused.push_back(b);
      if (auto r = rewrite_record(*f.partial, PartialKey{f.name, f.size, f.mtime_s, f.mtime_ns}, reused); !r) {
        f.failed = true;
        f.error = r.error().message;
      }
    } else if (auto made = f.partial_wanted ? start_partial(f) : false; made) {
      f.tmp = f.partial->data_name;
      f.fd = std::shared_ptr<UniqueFd>(f.partial, &f.partial->data);
    } else if (auto anon = tree_->create_anonymous(f.dir, f.mode); anon) {
      // No name until it is complete: an interruption, even SIGKILL, leaves nothing.
      f.fd = std::make_shared<UniqueFd>(std::move(*anon));
    } else if (auto tmp = tree_->create_temp(f.dir); !tmp) {
      f.failed = true;
      f.error = tmp.error().message;
    } else {
      f.tmp = tmp->second;
      // No fallocate of the declared size: space follows the bytes that
      // arrive, so a header alone cannot fill the disk.
      f.fd = std::make_shared<UniqueFd>(std::move(tmp->first));
    }
  }
  std::lock_guard<std::mutex> lk(mu_);
  f.opened = true;
  opened_cv_.notify_all();
}

Result<void> CopyDestination::receive_stream(int64_t stream) {
  // One or more chunk records back to back: the source bundles small files.
  for (bool first = true;; first = false) {
    uint8_t len_be[4];
    auto n = peer_->read(stream, {len_be, 1}, kReadTimeout);  // a record, or the stream's end
    if (!n) return n.error();
    if (*n == 0) {
      if (first) return make_error(Errc::protocol, "empty data stream");
      return {};
    }
    if (auto r = read_exact(*peer_, stream, {len_be + 1, 3}); !r) return r;
    auto aligned = receive_record(stream, len_be);
    if (!aligned) return aligned.error();
    if (!*aligned) return {};  // the stream ended inside the record
  }
}

Result<bool> CopyDestination::receive_record(int64_t stream, const uint8_t (&len_be)[4]) {
  const uint32_t len = frame_body_length(len_be);
  if (len > kMaxChunkHeader)
    return make_error(Errc::protocol, "chunk header of " + std::to_string(len) + " bytes is too large");
  std::vector<uint8_t> body(len);
  if (auto r = read_exact(*peer_, stream, body); !r) return r.error();
  auto h = ChunkHeader::decode(body);
  if (!h) return h.error();
  if (auto r = split_relative_path(h->relpath); !r) return r.error();

  std::shared_ptr<UniqueFd> fd;
  bool write_it = false;
  FileState* file = nullptr;
  {
    std::unique_lock<std::mutex> lk(mu_);
    // Chunks and root announcements travel on different streams.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(options_.root_wait);
    if (!cv_.wait_until(lk, deadline, [&] { return tree_->has_root(h->root) || stop_; }))
      return make_error(Errc::protocol, "chunk for source " + std::to_string(h->root) + " that was never announced");
    if (stop_) return false;
    std::string err;
    bool must_open = false;
    file = begin_chunk(*h, err, must_open);
    if (file == nullptr) return make_error(Errc::protocol, err);
    // --partial blocks travel whole: a hole left unwritten in a resumed
    // partial file would keep whatever bytes it held before.
    if (h->sparse && file->partial_wanted)
      return make_error(Errc::protocol, "a sparse chunk of a --partial file (its blocks travel whole)");
    if (must_open) {
      lk.unlock();
      open_file(*file);
      lk.lock();
    }
    opened_cv_.wait(lk, [&] { return file->opened; });  // another chunk of this file may be creating it
    write_it = !file->failed && !file->skipped;
    fd = file->fd;
  }
  // The master's view names a file whose bytes are coming in: set once a
  // record (its data follows its header on this stream), not once a read.
  counters_.set_current(tree_->display(h->root, h->relpath));

  Xxh128 hash;
  const uint64_t wire = h->wire_length();
  // A sparse chunk's data extents land where they belong; its holes are never
  // written (the file is new: they read as zeros, and settle() sets the size).
  const Extents pieces = h->sparse ? h->extents : Extents{{0, h->length}};
  // --partial: the block's SHA-256 goes into the record once the chunk verified.
  std::optional<Sha256Stream> block_hash;
  std::shared_ptr<PartialFile> partial;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (write_it && file->partial && file->partial_wanted) {
      partial = file->partial;
      block_hash.emplace();
    }
  }
  uint64_t done = 0;
  std::string io_error;
  bool truncated = false;
  std::vector<Link::View> views;
  for (const auto& [piece, length] : pieces) {
    for (uint64_t got = 0; got < length && !truncated;) {
      // The bytes stay in the link's receive blocks: hashed and written from
      // there, up to a block at a time in one pwritev (no copy, no zeroing).
      views.clear();
      const auto want = static_cast<size_t>(std::min<uint64_t>(kBlock, length - got));
      auto n = peer_->read_views(stream, want, views, kReadTimeout);
      if (!n) return n.error();
      if (*n == 0) {
        io_error = "the source sent fewer bytes than it declared";
        truncated = true;
        break;
      }
      for (const auto& v : views) {
        hash.update(v.bytes);
        if (block_hash) block_hash->update(v.bytes);
      }
      // After a failed write the bytes are still read: the next record follows.
      if (write_it && io_error.empty()) {
        if (int err = write_all(fd->get(), views, h->offset + piece + got); err != 0)
          io_error = std::string("write failed: ") + std::strerror(err);
      }
      got += *n;
      done += *n;
      counters_.bytes_done += *n;
    }
    if (truncated) break;
  }
  views.clear();  // the link's blocks go back before the trailer is awaited
  const uint64_t holes = truncated ? 0 : h->length - wire;
  counters_.bytes_done += holes;
  ChunkVerdict verdict = ChunkVerdict::keep;
  if (!truncated) {
    std::array<uint8_t, kTrailerSize> trailer{};
    if (auto r = read_exact(*peer_, stream, trailer); !r) {
      if (io_error.empty()) io_error = "chunk ended without its checksum";
      truncated = true;
    } else if (trailer[kDigestSize] > static_cast<uint8_t>(ChunkVerdict::void_attempt)) {
      return make_error(Errc::protocol, "unknown chunk verdict " + std::to_string(trailer[kDigestSize]));
    } else {
      verdict = static_cast<ChunkVerdict>(trailer[kDigestSize]);
      if (io_error.empty() && !std::equal(trailer.begin(), trailer.begin() + kDigestSize, hash.digest().begin()))
        io_error = "checksum mismatch (xxh3-128): data corrupted in transit or changed at the source";
    }
  }
  if (partial && io_error.empty() && !truncated && verdict == ChunkVerdict::keep && !h->sparse) {
    // Written and verified (and all of it travelled: a sparse block's holes
    // were not written here): a later run may keep this block. A record
    // that can't be written only costs the resume.
    if (auto r = record_block(*partial, h->chunk, block_hash->finish()); !r)
      logger_.debug(tree_->display(h->root, h->relpath) + ": " + r.error().message);
  }
  end_chunk(h->file_id, *file, done + holes, holes, io_error, verdict);
  return !truncated;
}

void CopyDestination::end_chunk(uint64_t id, FileState& f, uint64_t bytes, uint64_t holes, const std::string& err,
                                ChunkVerdict verdict) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    f.bytes += bytes;
    f.holes += holes;
    if (!err.empty() && !f.failed) {
      f.failed = true;
      f.error = err;
    }
    if (verdict == ChunkVerdict::void_attempt) f.voided = true;
    if (++f.ended + f.reused_count != f.nchunks) return;
  }
  // The last chunk is in: no other thread touches `f` any more (a late
  // duplicate chunk is refused under mu_ from `seen`), so the file-system
  // calls run without the lock.
  const bool committed = settle(f);
  if (!f.voided) settle_links(f, committed);  // before it counts as settled: "finished" waits for the links
  std::lock_guard<std::mutex> lk(mu_);
  const std::string path = tree_->display(f.root, f.rel);
  if (f.voided) {
    // The source saw the file change while reading it: this attempt is gone,
    // and the source sends another or reports the file failed.
    logger_.debug(path + ": discarded an attempt the source saw change");
  } else if (f.failed) {
    fail_entry(path, f.error, true);
  } else if (!committed) {
    keep_entry(path);  // appeared since it was decided
  } else {
    ++summary_.files;
    summary_.bytes += f.size;
    summary_.sparse_bytes += f.holes;
    summary_.resumed_bytes += f.reused_bytes;
    counters_.files_done += 1;
    if (logger_.enabled(LogLevel::debug)) logger_.debug(path + ": " + std::to_string(f.size) + " bytes verified");
  }
  // A voided attempt comes again under a new id, without a partial file;
  // anything else is done with.
  if (!f.voided) {
    auto grant = granted_.find(grant_key(f.root, f.rel));
    if (grant != granted_.end()) {
      held_xattr_bytes_ -= std::min(held_xattr_bytes_, bytes_of(grant->second.xattrs));
      granted_.erase(grant);
    }
  } else if (auto g = granted_.find(grant_key(f.root, f.rel)); g != granted_.end()) {
    g->second.partial.reset();
    g->second.offered.clear();
  }
  ++settled_;
  // A settled file costs nothing more than its id in an interval set.
  settled_ids_.insert(id);
  files_.erase(id);
  // Only wait_settled() waits for this, and only for the last file: waking
  // it for each one was a futex round trip per small file.
  if (expected_files_ >= 0 && settled_ >= static_cast<uint64_t>(expected_files_)) cv_.notify_all();
}

bool CopyDestination::settle(FileState& f) {
  if (f.voided && !f.failed) {
    f.failed = true;
    f.error = "voided by the source";
  }
  if (!f.failed && !f.skipped && f.bytes + f.reused_bytes != f.size) {
    f.failed = true;
    f.error = "received " + std::to_string(f.bytes) + " bytes, the source declared " + std::to_string(f.size);
  }
  if (!f.failed && !f.skipped && f.holes > 0 && ftruncate(f.fd->get(), static_cast<off_t>(f.size)) != 0) {
    // A file that ends in a hole: only its size says so.
    f.failed = true;
    f.error = std::string("cannot set the size: ") + std::strerror(errno);
  }
  struct stat written {};
  if (!f.failed && !f.skipped && fstat(f.fd->get(), &written) != 0) {
    f.failed = true;
    f.error = std::string("cannot stat the written file: ") + std::strerror(errno);
  }
  if (!f.failed && !f.skipped) {
    f.dev = written.st_dev;
    f.ino = written.st_ino;
    // Owner and mode only where they differ from what the file got when it
    // was made (most often the same: two system calls less per small file).
    // The owner first: chown clears setuid bits, and the mode follows.
    OwnerIds change = f.owner;
    if (change.uid == written.st_uid) change.uid = static_cast<uid_t>(-1);
    if (change.gid == written.st_gid) change.gid = static_cast<gid_t>(-1);
    apply_owner(f.fd->get(), "", change, tree_->display(f.root, f.rel));
    const mode_t has = written.st_mode & (change.any() ? 0777 : 07777);
    timespec times[2] = {{0, UTIME_OMIT}, to_ts(f.mtime_s, f.mtime_ns)};
    std::string why;
    if (has != f.mode && fchmod(f.fd->get(), f.mode) != 0) {
      f.failed = true;
      f.error = std::string("cannot set mode: ") + std::strerror(errno);
    } else if (!apply_xattrs(f.fd->get(), "", f.xattrs, tree_->display(f.root, f.rel), why)) {
      // After the mode: an access ACL then says the last word on the permission bits.
      f.failed = true;
      f.error = why;
    } else if (futimens(f.fd->get(), times) != 0) {
      f.failed = true;
      f.error = std::string("cannot set mtime: ") + std::strerror(errno);
    } else if (tree_->fsync() && ::fsync(f.fd->get()) != 0) {
      // Before the rename: the name never points at data still in the page cache.
      f.failed = true;
      f.error = std::string("fsync failed: ") + std::strerror(errno);
    }
  }
  bool committed = false;
  if (!f.skipped && !f.failed && f.tmp.empty() && f.fd) {  // an anonymous file gets its name through its fd
    auto r = tree_->link_into_place(f.dir, *f.fd, f.name, f.replace);
    if (!r) {
      f.failed = true;
      f.error = r.error().message;
    } else {
      committed = *r;
    }
    f.fd.reset();
    f.dir.reset();
    return committed;
  }
  f.fd.reset();  // close before rename: nothing else writes to it
  if (!f.skipped && !f.failed) {
    auto r = tree_->commit(f.dir, f.tmp, f.name, f.replace);
    if (!r) {
      f.failed = true;
      f.error = r.error().message;
    } else {
      committed = *r;
    }
    // In place (or removed as not wanted): its record goes too.
    if (f.partial) (void)unlinkat(f.dir->get(), f.partial->record_name.c_str(), 0);
  } else if (f.partial && f.dir && f.voided) {
    remove_partial(f.dir->get(), *f.partial);  // the source's file changed: these blocks are of no use
  }
  // A failed partial file keeps what verified (the record says which), for the next --partial run.
  if (f.failed && !f.tmp.empty() && f.dir && !f.partial) tree_->discard(f.dir, f.tmp);
  f.partial.reset();  // closes the data file and the record (and drops the lock)
  f.dir.reset();      // a settled file holds no directory fd
  return committed;
}

void CopyDestination::delete_extraneous() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (summary_.failed != 0) {
      // Whatever failed may be why the source's list looks short: nothing is safe to remove.
      logger_.warn("--delete: nothing deleted, since " + std::to_string(summary_.failed) +
                   (summary_.failed == 1 ? " entry" : " entries") + " failed");
      return;
    }
  }
  if (announced_.full()) {
    logger_.warn("--delete: nothing deleted: the source announced more than " +
                 std::to_string(AnnouncedSet::kMaxKeys / 2) + " entries, more than this side keeps track of");
    return;
  }
  announced_.seal();
  const DestSpec& spec = tree_->spec();
  PruneOptions options;
  options.rules = &spec.filters;
  options.delete_excluded = spec.delete_excluded;
  options.dry_run = dry_run_;
  options.removed = [this](const std::string& path, uint64_t size, bool is_dir) {
    std::lock_guard<std::mutex> lk(mu_);
    ++summary_.deleted;
    plan(PlanAction::remove, is_dir ? path + "/" : path, size);
    if (!dry_run_) logger_.info(path + ": deleted (not at the source)");
  };
  options.failed = [this](const std::string& path, const std::string& why) {
    std::lock_guard<std::mutex> lk(mu_);
    fail_entry(path, why, true);
  };
  for (uint32_t root : tree_->directory_roots()) {
    auto dir = tree_->existing_directory(root, "");
    if (!dir || !*dir) continue;  // a dry run's directory that does not exist yet holds nothing
    prune_directory(***dir, root, "", tree_->display(root, ""), announced_, options);
  }
}

void CopyDestination::sync_dir(const UniqueFd& dir, uint32_t root, const std::string& rel) {
  if (::fsync(dir.get()) == 0) return;
  const int err = errno;
  std::lock_guard<std::mutex> lk(mu_);
  fail_entry(tree_->display(root, rel), std::string("fsync of the directory failed: ") + std::strerror(err), true);
}

void CopyDestination::apply_dir_meta() {
  // Deepest first, so setting a child's mtime doesn't disturb its parent's.
  std::vector<DirMeta> dirs;
  dirs.reserve(dir_meta_.size());
  for (auto& [id, meta] : dir_meta_) dirs.push_back(std::move(meta));
  dir_meta_.clear();
  std::sort(dirs.begin(), dirs.end(), [](const DirMeta& a, const DirMeta& b) {
    return std::count(a.rel.begin(), a.rel.end(), '/') + !a.rel.empty() >
           std::count(b.rel.begin(), b.rel.end(), '/') + !b.rel.empty();
  });
  for (const auto& d : dirs) {
    auto dir = tree_->directory(d.root, d.rel);
    if (!dir) continue;
    // A directory that was there before is the user's: its metadata changes
    // only with --overwrite or --update (as rsync -u keeps it in step), and its mode only ever narrows (a source must
    // not open up an existing ~/.ssh).
    uint32_t mode = d.mode;
    bool ours = tree_->created(*dir);
    if (!ours && (tree_->overwrite() || tree_->spec().update)) {
      struct stat st {};
      ours = fstat((*dir)->get(), &st) == 0;
      // ...and a shared directory's setgid bit (its files' group) stays.
      mode = (mode & st.st_mode & kDirModeMask) | (st.st_mode & S_ISGID);
    }
    if (ours) {
      timespec times[2] = {{0, UTIME_OMIT}, to_ts(d.mtime_s, d.mtime_ns)};
      const bool made = tree_->created(*dir);
      if (made) apply_owner((*dir)->get(), "", d.owner, tree_->display(d.root, d.rel));
      fchmod((*dir)->get(), mode);
      // Attributes too only on directories this copy made: an ACL on an
      // existing one would undo the narrowing of its mode above.
      std::string why;
      if (made && !apply_xattrs((*dir)->get(), "", d.xattrs, tree_->display(d.root, d.rel), why)) {
        std::lock_guard<std::mutex> lk(mu_);
        fail_entry(tree_->display(d.root, d.rel), why, true);
      }
      futimens((*dir)->get(), times);
    }
    if (tree_->fsync()) sync_dir(**dir, d.root, d.rel);
  }
  // The roots' own names live in the base directory.
  if (tree_->fsync()) sync_dir(*tree_->base(), 0, "");
}

}  // namespace rcp
