#include "copy/copy_source.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "base/crypto.h"
#include "base/remote_path.h"
#include "base/unique_fd.h"
#include "copy/path_validator.h"
#include "copy/sparse.h"
#include "copy/xattrs.h"
#include "wire/chunk_header.h"
#include "wire/frame.h"
#include "wire/messages.h"
#include "wire/partial_blocks.h"

namespace rcp {

namespace {

constexpr size_t kReadBlock = 1u << 20;
// Chunks up to this size travel bundled: several whole records in one data
// stream, handed to the link in one piece (at most 256 KiB with headers).
constexpr uint64_t kSmallChunk = 192u << 10;
constexpr uint64_t kBundleBytes = 224u << 10;
constexpr size_t kMaxBundle = 256;

// Bytes a record adds to a bundle, generously: frame length, msgpack header
// fields, the path, the digest.
uint64_t record_bytes(const ChunkHeader& h) { return h.length + h.relpath.size() + 128; }
constexpr size_t kMaxQueuedJobs = 4096;  // bounds the walker's lead over the workers
// Announcements: at most this many files awaiting an answer (memory, and the
// destination's list of files it granted), sent in batches of about
// kAnnounceBatch files or kAnnounceBytes, so one sealed frame carries many.
constexpr size_t kMaxAwaiting = 8192;
constexpr size_t kAnnounceBatch = 256;
constexpr size_t kAnnounceBytes = 128u << 10;
constexpr Nanos kWriteTimeout = 120 * kSeconds;

std::string join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

std::string parent_of(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_name(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

// What the walk saw of one regular file; shared by its chunk jobs. Workers
// reopen it from its directory's fd and refuse anything but this inode.
struct CopySource::SourceFile {
  std::shared_ptr<UniqueFd> dir;
  std::string name;  // inside `dir`
  std::string path;  // for messages only; never opened
  uint32_t root = 0;
  std::string rel;
  struct stat st {};
  bool follow = false;              // -L: `name` may be a symlink, to the file the walk saw
  bool link_first = false;          // -H: the first name of an inode with several
  std::optional<uint64_t> link_to;  // -H: a later name, sharing the inode of this announced file
  int attempt = 1;
  std::atomic<uint32_t> left{0};     // chunks still to send
  std::atomic<bool> failed{false};   // one error message per file
  std::atomic<bool> changed{false};  // a chunk saw it change: sent void, to send again
};

struct CopySource::Job {
  ChunkHeader header;
  std::shared_ptr<SourceFile> file;
};

// Bounded queue between the walker and the workers.
class JobQueue {
 public:
  void push(CopySource::Job job) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return q_.size() < kMaxQueuedJobs; });
    q_.push_back(std::make_shared<CopySource::Job>(std::move(job)));
    cv_.notify_all();
  }
  std::shared_ptr<CopySource::Job> pop() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return nullptr;
    auto j = std::move(q_.front());
    q_.pop_front();
    cv_.notify_all();
    return j;
  }
  // The next job if there is one now and `want` takes it; never blocks.
  template <typename Pred>
  std::shared_ptr<CopySource::Job> try_pop_if(Pred want) {
    std::lock_guard<std::mutex> lk(mu_);
    if (q_.empty() || !want(*q_.front())) return nullptr;
    auto j = std::move(q_.front());
    q_.pop_front();
    cv_.notify_all();
    return j;
  }
  void close() {
    std::lock_guard<std::mutex> lk(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<CopySource::Job>> q_;
  bool closed_ = false;
};

// Walks by directory fd (openat, O_NOFOLLOW, checked against what fstatat
// saw), so a directory swapped for a symlink mid-walk leads nowhere, and no
// path is ever longer than one name for the kernel (no PATH_MAX).
class CopySource::Walker {
 public:
  Walker(CopySource& src, JobQueue& queue, CopySummary& summary, std::mutex& summary_mu, uint32_t roots)
      : src_(src), queue_(queue), summary_(summary), summary_mu_(summary_mu), roots_(roots) {}

  void walk_root(uint32_t index, const SourceRoot& root) {
    const std::string& path = root.path;
    std::string name = base_name(path);
    operand_ = root.operand;
    struct stat st {};
    if (!root.error.empty()) {
      announce_root(index, name, '?', root.error);
      return;
    }
    if (name.empty() || name == "/" || name == "." || name == "..") {
      announce_root(index, name, '?', "cannot copy '" + path + "' itself; name a file or directory inside it");
      return;
    }
    // The operand itself is the user's path: its leading components may be symlinks.
    const bool follow = src_.options_.dereference;  // -L: the operand too, as rsync -L
    if ((follow ? stat(path.c_str(), &st) : lstat(path.c_str(), &st)) != 0) {
      announce_root(index, name, '?', path + ": " + std::strerror(errno));
      return;
    }
    if (S_ISDIR(st.st_mode)) {
      auto dir = open_dir(AT_FDCWD, path, st, follow);
      if (!dir) {
        announce_root(index, name, '?', path + ": " + dir.error().message);
        return;
      }
      announce_root(index, name, 'd', "");
      send_dir(index, "", st, **dir);
      walk_dir(index, *dir, path, "", 1);
    } else if (S_ISREG(st.st_mode)) {
      // The user's own path may lead through symlinks; the file itself is checked by dev/ino.
      auto parent = open_dir(AT_FDCWD, parent_of(path), std::nullopt, true);
      if (!parent) {
        announce_root(index, name, '?', path + ": " + parent.error().message);
        return;
      }
      announce_root(index, name, 'f', "");
      queue_file(index, *parent, name, path, "", st, follow);
    } else if (S_ISLNK(st.st_mode)) {
      announce_root(index, name, 'l', "");
      send_symlink(index, AT_FDCWD, path, path, "", st);
    } else {
      announce_root(index, name, '?', path + ": not a regular file, directory or symlink");
    }
  }

 private:
  // A directory opened without following a symlink; when `seen` is given, it
  // must be the very directory the walk stat'ed.
  static Result<std::shared_ptr<UniqueFd>> open_dir(int at, const std::string& name,
                                                    const std::optional<struct stat>& seen, bool follow = false) {
    UniqueFd fd(openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)));
    if (fd.get() < 0) return make_error(Errc::io, std::strerror(errno));
    struct stat now {};
    if (seen && (fstat(fd.get(), &now) != 0 || now.st_dev != seen->st_dev || now.st_ino != seen->st_ino))
      return make_error(Errc::io, "changed during the walk (no longer the directory it was)");
    return std::make_shared<UniqueFd>(std::move(fd));
  }

  void announce_root(uint32_t index, const std::string& name, char kind, const std::string& err) {
    // The result reports it, once, with its path: logged here for -v only.
    if (!err.empty()) record_error(name, err, LogLevel::info);
    (void)src_.peer_->send_message(RootMsg{index, name, kind, err, operand_, roots_}.encode());
  }

  // Info, not warn: the result lists every failure once, with its path, and
  // the CLI prints that list; a warning line too would show each twice.
  void record_error(const std::string& where, const std::string& what, LogLevel level = LogLevel::info) {
    src_.logger_.log(level, what);
    std::lock_guard<std::mutex> lk(summary_mu_);
    ++summary_.failed;
    summary_.add_error(where, what);
  }

  void source_error(uint32_t index, const std::string& rel, const std::string& what) {
    record_error(rel, what);
    (void)src_.peer_->send_message(SourceErrorMsg{index, rel, what}.encode());
  }

  void send_dir(uint32_t index, const std::string& rel, const struct stat& st, const UniqueFd& fd) {
    (void)src_.peer_->send_message(
        DirMsg{index, rel, static_cast<uint32_t>(st.st_mode & 07777), static_cast<int64_t>(st.st_mtim.tv_sec),
               static_cast<uint32_t>(st.st_mtim.tv_nsec), src_.owner_of(st), src_.xattrs_of(fd.get(), "", false, rel)}
            .encode());
    std::lock_guard<std::mutex> lk(summary_mu_);
    ++summary_.dirs;
  }

  void send_symlink(uint32_t index, int dir, const std::string& name, const std::string& path, const std::string& rel,
                    const struct stat& st) {
    std::vector<char> target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 255) + 1);
    ssize_t n = readlinkat(dir, name.c_str(), target.data(), target.size());
    if (n < 0 || static_cast<size_t>(n) >= target.size()) {
      source_error(index, rel,
                   path + ": cannot read symlink" + (n < 0 ? std::string(": ") + std::strerror(errno) : ""));
      return;
    }
    (void)src_.peer_->send_message(SymlinkMsg{
        index, rel, std::string(target.data(), static_cast<size_t>(n)), static_cast<int64_t>(st.st_mtim.tv_sec),
        static_cast<uint32_t>(st.st_mtim.tv_nsec), src_.owner_of(st), src_.xattrs_of(dir, name, false, path)}
                                       .encode());
    std::lock_guard<std::mutex> lk(summary_mu_);
    ++summary_.symlinks;
  }

  void queue_file(uint32_t index, const std::shared_ptr<UniqueFd>& dir, const std::string& name,
                  const std::string& path, const std::string& rel, const struct stat& st, bool follow) {
    auto file = std::make_shared<SourceFile>();
    file->follow = follow;
    file->dir = dir;
    file->name = name;
    file->path = path;
    file->root = index;
    file->rel = rel;
    file->st = st;
    src_.counters_.files_total += 1;
    src_.counters_.bytes_total += static_cast<uint64_t>(st.st_size);
    if (!src_.options_.hard_links || st.st_nlink < 2) {
      src_.announce(file);
      return;
    }
    // -H: the first name the walk meets carries the data; later ones name it.
    const auto key = std::make_pair(st.st_dev, st.st_ino);
    auto first = inodes_.find(key);
    if (first != inodes_.end()) {
      file->link_to = first->second;
      src_.announce(file);
      return;
    }
    file->link_first = true;
    if (auto number = src_.announce(file)) inodes_.emplace(key, *number);
  }

  void walk_dir(uint32_t index, const std::shared_ptr<UniqueFd>& fd, const std::string& path, const std::string& rel,
                size_t depth) {
    // fdopendir owns what it is given: a duplicate, so `fd` stays for openat.
    int dup_fd = fcntl(fd->get(), F_DUPFD_CLOEXEC, 0);
    DIR* dir = dup_fd >= 0 ? fdopendir(dup_fd) : nullptr;
    if (dir == nullptr) {
      if (dup_fd >= 0) close(dup_fd);
      source_error(index, rel, path + ": " + std::strerror(errno));
      return;
    }
    std::vector<std::pair<std::string, struct stat>> subdirs;
    const bool follow = src_.options_.dereference;  // -L: what symlinks point to, not the links
    while (dirent* e = readdir(dir)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat st {};
      const std::string child = join(path, name), child_rel = join(rel, name);
      // The rules need to know a directory: d_type, else the fstatat below.
      if (!src_.options_.filters.empty() && e->d_type != DT_UNKNOWN &&
          src_.options_.filters.excluded(child_rel, e->d_type == DT_DIR))
        continue;
      if (child_rel.size() > kMaxPathBytes) {
        source_error(index, rel, path + ": an entry's path is longer than " + std::to_string(kMaxPathBytes) + " bytes");
      } else if (fstatat(fd->get(), name.c_str(), &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) != 0) {
        const int err = errno;
        struct stat link {};
        const bool is_link =
            follow && fstatat(fd->get(), name.c_str(), &link, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(link.st_mode);
        if (is_link && err == ELOOP)
          source_error(index, child_rel, child + ": a symlink loop (-L): not copied");
        else if (is_link)
          source_error(index, child_rel, child + ": the symlink points to nothing (-L): " + std::strerror(err));
        else
          source_error(index, child_rel, child + ": " + std::strerror(err));
      } else if (e->d_type == DT_UNKNOWN && src_.options_.filters.excluded(child_rel, S_ISDIR(st.st_mode))) {
        continue;
      } else if (S_ISDIR(st.st_mode)) {
        subdirs.emplace_back(name, st);
      } else if (S_ISREG(st.st_mode)) {
        queue_file(index, fd, name, child, child_rel, st, follow);
      } else if (S_ISLNK(st.st_mode)) {
        send_symlink(index, fd->get(), name, child, child_rel, st);
      } else {
        source_error(index, child_rel, child + ": not a regular file, directory or symlink; skipped");
      }
    }
    closedir(dir);
    {
      // What this directory held goes out before its subdirectories are walked.
      std::lock_guard<std::mutex> lk(src_.announce_mu_);
      src_.flush_announcements();
    }
    // Directories after the files of their parent: one directory stream open at a time.
    struct stat self {};
    if (fstat(fd->get(), &self) == 0) ancestors_.emplace_back(self.st_dev, self.st_ino);
    for (auto& [name, st] : subdirs) {
      const std::string child = join(path, name), child_rel = join(rel, name);
      if (depth >= kMaxPathDepth) {
        source_error(index, child_rel, child + ": deeper than " + std::to_string(kMaxPathDepth) + " levels");
        continue;
      }
      // -L: a symlink to a directory above this one would recurse for ever.
      if (std::find(ancestors_.begin(), ancestors_.end(), std::make_pair(st.st_dev, st.st_ino)) != ancestors_.end()) {
        source_error(index, child_rel, child + ": a symlink loop (-L): it leads back to a directory above; not copied");
        continue;
      }
      auto sub = open_dir(fd->get(), name, st, follow);
      if (!sub) {
        source_error(index, child_rel, child + ": " + sub.error().message);
        continue;
      }
      send_dir(index, child_rel, st, **sub);
      walk_dir(index, *sub, child, child_rel, depth + 1);
    }
    if (self.st_ino != 0) ancestors_.pop_back();
  }

  CopySource& src_;
  JobQueue& queue_;
  CopySummary& summary_;
  std::mutex& summary_mu_;
  std::map<std::pair<dev_t, ino_t>, uint64_t> inodes_;  // -H: inodes with several names -> first one's number
  std::vector<std::pair<dev_t, ino_t>> ancestors_;      // the directories being walked, outermost first (-L loops)
  const uint32_t roots_;                                // in all, told with each root
  uint32_t operand_ = 0;                                // of the root being walked
};

std::vector<SourceRoot> source_roots(const std::vector<std::string>& paths, bool resolve, std::string_view home,
                                     const PasswdDb& users) {
  std::vector<SourceRoot> roots;
  for (uint32_t i = 0; i < paths.size(); ++i) {
    if (!resolve) {
      roots.push_back({paths[i], i, ""});
      continue;
    }
    const size_t left = kMaxRoots - std::min<size_t>(roots.size(), kMaxRoots);
    auto expanded = left ? expand_operand(paths[i], home, users, left)
                         : Result<std::vector<std::string>>(
                               make_error(Errc::too_large, "more than " + std::to_string(kMaxRoots) + " roots in all"));
    if (!expanded) {
      const Error& e = expanded.error();  // an io error names its path already
      roots.push_back({paths[i], i, e.code == Errc::io ? e.message : paths[i] + ": " + e.message});
      continue;
    }
    for (auto& p : *expanded) roots.push_back({std::move(p), i, ""});
  }
  return roots;
}

CopySource::CopySource(std::shared_ptr<Link> peer, const SourceOptions& options, const Logger& logger,
                       TransferCounters& counters)
    : peer_(std::move(peer)), options_(options),
      limiter_(options.bandwidth_limit ? std::make_unique<RateLimiter>(options.bandwidth_limit) : nullptr),
      logger_(logger), counters_(counters) {}

void CopySource::trace_sent(const Job& job, const char* how) const {
  if (!logger_.enabled(LogLevel::trace)) return;
  const ChunkHeader& h = job.header;
  logger_.trace(job.file->path + ": sent bytes " + std::to_string(h.offset) + ".." +
                std::to_string(h.offset + h.length) + " (" + how + ")");
}

void CopySource::pace(uint64_t bytes) {
  if (limiter_) limiter_->acquire(bytes);
}

std::optional<Ownership> CopySource::owner_of(const struct stat& st) const {
  if (!options_.owners) return std::nullopt;
  Ownership o{static_cast<uint32_t>(st.st_uid), static_cast<uint32_t>(st.st_gid), {}, {}};
  if (o.uid == UINT32_MAX || o.gid == UINT32_MAX) return std::nullopt;  // "no id": nothing to say
  if (const auto* u = names_.user(o.uid)) o.user = u->name.substr(0, kMaxOwnerName);
  if (const auto* g = names_.group(o.gid)) o.group = g->name.substr(0, kMaxOwnerName);
  return o;
}

Xattrs CopySource::xattrs_of(int dir, const std::string& name, bool follow, const std::string& path) const {
  if (!options_.xattrs.any()) return {};
  auto x = read_xattrs(dir, name, options_.xattrs, follow);
  if (x) return std::move(*x);
  logger_.warn(path + ": extended attributes not copied: " + x.error().message);
  return {};
}

std::vector<uint8_t> CopySource::digest_of(const SourceFile& file) {
  auto fd = open_checked(file);
  if (!fd) return {};
  Xxh128 hash;
  std::vector<uint8_t> buf(kReadBlock);
  for (;;) {
    ssize_t n = read(fd->get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return {};
    if (n == 0) break;
    hash.update({buf.data(), static_cast<size_t>(n)});
  }
  if (!unchanged(fd->get(), file)) return {};  // no claim about content that moved under the hash
  Digest128 d = hash.digest();
  return {d.begin(), d.end()};
}

std::optional<uint64_t> CopySource::announce(const std::shared_ptr<SourceFile>& file) {
  FileEntry entry{file->root,
                  file->rel,
                  static_cast<uint64_t>(file->st.st_size),
                  static_cast<int64_t>(file->st.st_mtim.tv_sec),
                  static_cast<uint32_t>(file->st.st_mtim.tv_nsec),
                  static_cast<uint32_t>(file->st.st_mode & 07777),
                  {}};
  entry.link_first = file->link_first;
  entry.link_to = file->link_to;
  if (options_.inodes && (file->link_first || file->link_to))  // a listing groups names across its runs by these
    entry.inode =
        std::array<uint64_t, 2>{static_cast<uint64_t>(file->st.st_dev), static_cast<uint64_t>(file->st.st_ino)};
  entry.owner = owner_of(file->st);
  entry.xattrs = xattrs_of(file->dir->get(), file->name, file->follow, file->path);
  // Hashed here, while the destination hashes the files announced before.
  if (options_.checksum) entry.digest = digest_of(*file);
  std::unique_lock<std::mutex> lk(announce_mu_);
  if (awaiting_.size() >= kMaxAwaiting) {
    flush_announcements();
    announce_cv_.wait(lk,
                      [&] { return awaiting_.size() < kMaxAwaiting / 2 || link_error_.code != Errc::ok || finished_; });
  }
  if (finished_ && link_error_.code == Errc::ok)  // nobody reads answers any more: this file goes unsent
    link_error_ = make_error(Errc::protocol, "the destination finished before answering for every file");
  if (link_error_.code != Errc::ok) return std::nullopt;
  const uint64_t number = announced_ + batch_.files.size();
  batch_bytes_ += entry.relpath.size() + 64;
  for (const auto& [name, value] : entry.xattrs) batch_bytes_ += name.size() + value.size() + 8;
  batch_.files.push_back(std::move(entry));
  awaiting_.push_back(file);
  if (batch_.files.size() >= kAnnounceBatch || batch_bytes_ >= kAnnounceBytes) flush_announcements();
  return number;
}

void CopySource::flush_announcements() {
  if (batch_.files.empty()) return;
  batch_.first = announced_;
  announced_ += batch_.files.size();
  // A failed send shows as the link failing, which the answers' reader reports.
  (void)peer_->send_message(batch_.encode());
  batch_.files.clear();
  batch_bytes_ = 0;
}

Result<void> CopySource::on_verdicts(const VerdictsMsg& msg, JobQueue& queue) {
  std::vector<std::shared_ptr<SourceFile>> files;
  {
    std::lock_guard<std::mutex> lk(announce_mu_);
    if (msg.first != answered_ || msg.verdicts.size() > awaiting_.size())
      return make_error(Errc::protocol, "the destination answered for files never announced");
    for (size_t i = 0; i < msg.verdicts.size(); ++i) {
      files.push_back(std::move(awaiting_.front()));
      awaiting_.pop_front();
    }
  }
  size_t next_offer = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    if (msg.verdicts[i] == FileVerdict::linked && !files[i]->link_to)
      return make_error(Errc::protocol, "the destination answered 'linked' for a file announced with its data");
    std::vector<uint8_t> reused;
    if (next_offer < msg.resume.size() && msg.resume[next_offer].pos == i) {
      auto r = reusable_blocks(*files[i], msg.resume[next_offer++]);
      if (!r) return r.error();
      reused = std::move(*r);
    }
    if (wants_data(msg.verdicts[i])) {
      for (auto& job : plan_chunks(files[i], reused)) queue.push(std::move(job));
    } else {  // nothing to send: the progress totals are what will move
      counters_.files_total -= 1;
      counters_.bytes_total -= static_cast<uint64_t>(files[i]->st.st_size);
    }
  }
  std::lock_guard<std::mutex> lk(announce_mu_);
  answered_ += files.size();
  announce_cv_.notify_all();
  return {};
}

void CopySource::read_answers(JobQueue& queue) {
  auto stop = [&](Error e) {
    std::lock_guard<std::mutex> lk(announce_mu_);
    link_error_ = std::move(e);
    announce_cv_.notify_all();
  };
  for (;;) {
    auto body = peer_->recv_message(options_.finish_timeout);
    if (!body && body.error().code == Errc::timeout) {
      std::lock_guard<std::mutex> lk(announce_mu_);
      if (!walked_ && answered_ == announced_) continue;  // a long walk that found no file yet
    }
    if (!body) return stop(body.error());
    auto m = decode_message(*body);
    if (!m) return stop(m.error());
    if (m->type == static_cast<uint32_t>(MsgType::finished)) {
      std::lock_guard<std::mutex> lk(announce_mu_);
      if (answered_ != announced_ || !awaiting_.empty()) {
        link_error_ = make_error(Errc::protocol, "the destination finished before answering for every file");
      } else {
        finished_ = true;
      }
      announce_cv_.notify_all();
      return;
    }
    auto v = VerdictsMsg::decode(*m);
    if (!v)
      return stop(make_error(Errc::protocol, "the destination sent something other than 'verdicts' or 'finished'"));
    if (auto r = on_verdicts(*v, queue); !r) return stop(r.error());
  }
}

Result<std::vector<uint8_t>> CopySource::reusable_blocks(const SourceFile& file, const ResumeOffer& offer) {
  const uint64_t size = static_cast<uint64_t>(file.st.st_size);
  if (!options_.partial || !partial_applies(size))
    return make_error(Errc::protocol, "the destination offered blocks of a file that has none");
  const uint32_t blocks = partial_blocks(size);
  if (offer.blocks.size() != bitmap_bytes(blocks) || !bits_within(offer.blocks, blocks))
    return make_error(Errc::protocol, "the destination offered blocks past the file's end");
  // Hashed here, from the file as the walk saw it: what matches is not sent.
  std::vector<uint8_t> reused;
  auto fd = open_checked(file);
  if (!fd) return reused;  // the chunks will say what is wrong with it
  const uint64_t bb = partial_block_bytes(size);
  std::vector<uint8_t> buf(kReadBlock);
  size_t at = 0;
  for (uint32_t b = 0; b < blocks; ++b) {
    if (!bit_set(offer.blocks, b)) continue;
    const uint8_t* theirs = offer.hashes.data() + kBlockHashSize * at++;
    const uint64_t offset = b * bb, length = std::min(bb, size - offset);
    Sha256Stream hash;
    uint64_t done = 0;
    while (done < length) {
      ssize_t n = pread(fd->get(), buf.data(), std::min<uint64_t>(buf.size(), length - done),
                        static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::vector<uint8_t>{};
      hash.update({buf.data(), static_cast<size_t>(n)});
      done += static_cast<uint64_t>(n);
    }
    const Sha256Digest mine = hash.finish();
    if (std::equal(mine.begin(), mine.end(), theirs)) set_bit(reused, b);
  }
  if (!unchanged(fd->get(), file)) return std::vector<uint8_t>{};      // no reuse of content that moved under the hash
  if (bits_set(reused) == blocks) set_bit(reused, blocks - 1, false);  // one chunk comes, and settles the file
  if (bits_set(reused) == 0) return std::vector<uint8_t>{};
  reused.resize(bitmap_bytes(blocks), 0);
  return reused;
}

std::vector<CopySource::Job> CopySource::plan_chunks(const std::shared_ptr<SourceFile>& file,
                                                     const std::vector<uint8_t>& reused) {
  const uint64_t size = static_cast<uint64_t>(file->st.st_size);
  // With --partial a large file's chunks are its blocks: the destination records each as it verifies.
  const uint64_t chunk = options_.partial && partial_applies(size) ? partial_block_bytes(size) : options_.chunk_bytes;
  const uint32_t nchunks = size == 0 ? 1 : static_cast<uint32_t>((size + chunk - 1) / chunk);
  const uint64_t id = next_file_id_++;
  file->left = nchunks - bits_set(reused);
  std::vector<Job> jobs;
  for (uint32_t c = 0; c < nchunks; ++c) {
    const uint64_t length = std::min(chunk, size - c * chunk);
    if (bit_set(reused, c)) {  // the destination has it: progress counts only what moves
      counters_.bytes_total -= length;
      continue;
    }
    ChunkHeader h{id,
                  file->root,
                  file->rel,
                  size,
                  static_cast<uint32_t>(file->st.st_mode & 07777),
                  static_cast<int64_t>(file->st.st_mtim.tv_sec),
                  static_cast<uint32_t>(file->st.st_mtim.tv_nsec),
                  c,
                  nchunks,
                  c * chunk,
                  length};
    h.reused = reused;
    jobs.push_back(Job{std::move(h), file});
  }
  return jobs;
}

Result<UniqueFd> CopySource::open_checked(const SourceFile& file) {
  // O_NONBLOCK: a FIFO put in the file's place must not block the open.
  UniqueFd fd(
      openat(file.dir->get(), file.name.c_str(), O_RDONLY | (file.follow ? 0 : O_NOFOLLOW) | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) return make_error(Errc::io, std::strerror(errno));
  struct stat now {};
  if (fstat(fd.get(), &now) != 0) return make_error(Errc::io, std::strerror(errno));
  if (!S_ISREG(now.st_mode) || now.st_dev != file.st.st_dev || now.st_ino != file.st.st_ino)
    return make_error(Errc::io, "changed during copy (no longer the regular file the walk saw)");
  return fd;
}

bool CopySource::same_as_walked(const struct stat& now, const struct stat& was) {
  // ctime too: a writer can put mtime back, but not ctime.
  return now.st_size == was.st_size && now.st_mtim.tv_sec == was.st_mtim.tv_sec &&
         now.st_mtim.tv_nsec == was.st_mtim.tv_nsec && now.st_ctim.tv_sec == was.st_ctim.tv_sec &&
         now.st_ctim.tv_nsec == was.st_ctim.tv_nsec;
}

bool CopySource::unchanged(int fd, const SourceFile& file) {
  struct stat now {};
  return fstat(fd, &now) == 0 && same_as_walked(now, file.st);
}

ChunkHeader CopySource::with_extents(const Job& job, int fd) const {
  ChunkHeader h = job.header;
  const struct stat& st = job.file->st;
  // Most files have no hole, and st_blocks says so without a system call.
  // With --partial a large file goes dense: each block the destination
  // records is then all written, so a resumed partial file holds no stale
  // bytes where a hole would have been left unwritten.
  if (!options_.sparse || h.length == 0 ||
      static_cast<uint64_t>(st.st_blocks) * 512 >= static_cast<uint64_t>(st.st_size) ||
      (options_.partial && partial_applies(static_cast<uint64_t>(st.st_size))))
    return h;
  if (auto extents = data_extents(fd, h.offset, h.length, kMaxExtents)) {
    h.sparse = true;
    h.extents = std::move(*extents);
  }
  return h;
}

namespace {

// The pieces of a chunk that travel, relative to its offset.
Extents pieces_of(const ChunkHeader& h) { return h.sparse ? h.extents : Extents{{0, h.length}}; }

}  // namespace

bool CopySource::append_record(const Job& job, std::vector<uint8_t>& body) {
  // One fstat after the read says both what open_checked() would (the very
  // inode the walk saw) and what verdict() would (unchanged): a system call
  // less per small file. Anything amiss and the record is not used: the
  // streamed path opens the file again and reports why.
  const SourceFile& file = *job.file;
  UniqueFd fd(
      openat(file.dir->get(), file.name.c_str(), O_RDONLY | (file.follow ? 0 : O_NOFOLLOW) | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) return false;
  const ChunkHeader h = with_extents(job, fd.get());
  const size_t start = body.size();
  std::vector<uint8_t> head = encode_frame(h.encode());
  body.insert(body.end(), head.begin(), head.end());
  const size_t data = body.size();
  const uint64_t wire = h.wire_length();
  body.resize(data + wire + kTrailerSize);
  uint64_t at = 0;  // in body, after `data`
  for (const auto& [piece, length] : pieces_of(h)) {
    uint64_t done = 0;
    while (done < length) {
      ssize_t n = pread(fd.get(), body.data() + data + at, length - done, static_cast<off_t>(h.offset + piece + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        body.resize(start);
        return false;
      }
      done += static_cast<uint64_t>(n);
      at += static_cast<uint64_t>(n);
    }
  }
  struct stat now {};
  if (fstat(fd.get(), &now) != 0 || !S_ISREG(now.st_mode) || now.st_dev != file.st.st_dev ||
      now.st_ino != file.st.st_ino) {
    body.resize(start);
    return false;
  }
  Digest128 d = Xxh128::of({body.data() + data, wire});
  std::memcpy(body.data() + data + wire, d.data(), d.size());
  ChunkVerdict v = ChunkVerdict::keep;
  if (!same_as_walked(now, file.st)) {
    job.file->changed = true;
    v = ChunkVerdict::void_attempt;
  }
  body[data + wire + kDigestSize] = static_cast<uint8_t>(v);
  return true;
}

ChunkVerdict CopySource::verdict(int fd, SourceFile& file) {
  if (unchanged(fd, file)) return ChunkVerdict::keep;
  file.changed = true;
  return ChunkVerdict::void_attempt;
}

std::vector<Result<void>> CopySource::send_bundle(const std::vector<std::shared_ptr<Job>>& jobs) {
  // With thousands of small files the per-stream and per-call costs, not the
  // bytes, dominate: one stream and one hand-off for the lot.
  std::vector<Result<void>> results(jobs.size());
  if (!jobs.empty()) counters_.set_current(jobs.back()->file->path);  // the master's view: in flight
  // body[0]: room for the stream's kind, so the link takes the buffer as it is
  // (a 256 KiB copy less per bundle, the source's largest memmove in perf).
  std::vector<uint8_t> body(1);
  std::vector<size_t> bundled, unread;
  for (size_t i = 0; i < jobs.size(); ++i) (append_record(*jobs[i], body) ? bundled : unread).push_back(i);
  if (!bundled.empty()) {
    pace(body.size() - 1);
    auto sent = peer_->send_data_stream_owned(std::move(body), kWriteTimeout);
    for (size_t i : bundled) {
      results[i] = sent;
      if (!sent) continue;
      counters_.bytes_done += jobs[i]->header.length;
      trace_sent(*jobs[i], "bundled");
      results[i] = chunk_sent(jobs[i]->file);
    }
  }
  // Unreadable now: the streamed path reports why, the usual way.
  for (size_t i : unread) results[i] = send_chunk_streamed(*jobs[i]);
  return results;
}

Result<void> CopySource::chunk_sent(const std::shared_ptr<SourceFile>& shared) {
  SourceFile& file = *shared;
  if (file.left.fetch_sub(1) != 1) return {};
  // The file's last chunk is out. If any chunk saw it change, the
  // destination discards what it got and the whole file goes again, once.
  if (!file.changed) {
    if (!file.failed) counters_.files_done += 1;
    return {};
  }
  if (file.attempt > 1) {
    return fail_file(file, "changed during copy (twice); not copied");
  }
  auto fd = open_checked(file);
  if (!fd) return fail_file(file, fd.error().message);
  struct stat now {};
  if (fstat(fd->get(), &now) != 0) return fail_file(file, std::strerror(errno));
  // The destination decided on the announced size and holds every chunk to it.
  if (now.st_size != file.st.st_size) return fail_file(file, "changed size during copy; not copied");
  logger_.info(file.path + ": changed while being read; sending it again");
  file.st = now;
  file.attempt += 1;
  file.changed = false;
  counters_.bytes_total += static_cast<uint64_t>(now.st_size);
  Result<void> status;
  for (auto& job : plan_chunks(shared)) {
    // Every chunk of this attempt gets its stream, failed or not: the
    // destination settles the file id only when all of them have ended.
    auto r = send_chunk_streamed(job);
    if (!r && r.error().code != Errc::io) return r;
    if (!r && status) status = r;
  }
  return status;
}

Result<void> CopySource::fail_file(SourceFile& file, const std::string& why) {
  if (!file.failed.exchange(true))
    (void)peer_->send_message(SourceErrorMsg{file.root, file.rel, file.path + ": " + why}.encode());
  return make_error(Errc::io, file.path + ": " + why);
}

Result<void> CopySource::send_chunk_streamed(const Job& job) {
  auto fd = open_checked(*job.file);
  const ChunkHeader h = fd ? with_extents(job, fd->get()) : job.header;
  if (h.chunk == 0) counters_.set_current(job.file->path);  // the master's view: in flight
  auto id = peer_->open_data();
  if (!id) return id.error();
  std::vector<uint8_t> head = encode_frame(h.encode());
  if (auto r = peer_->write(*id, head, kWriteTimeout); !r) return r.error();
  // Whatever happens below, the stream ends, so the destination can settle the file.
  auto fail = [&](const std::string& why) -> Result<void> {
    (void)peer_->finish(*id);
    return fail_file(*job.file, why);
  };
  if (!fd) return fail(fd.error().message);
  Xxh128 hash;
  for (const auto& [piece, length] : pieces_of(h)) {
    uint64_t done = 0;
    while (done < length) {
      // Each block is read into a buffer of its own, hashed while still in
      // cache, and handed to the link as it is: no copy between the read and
      // QUIC's packets (perf showed that memmove as the source's top symbol).
      const size_t want = static_cast<size_t>(std::min<uint64_t>(Link::kHandOffBytes, length - done));
      std::vector<uint8_t> buf(want);
      ssize_t n = pread(fd->get(), buf.data(), want, static_cast<off_t>(h.offset + piece + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(std::strerror(errno));
      if (n == 0) return fail("file shrank while being copied");
      buf.resize(static_cast<size_t>(n));
      hash.update(buf);
      pace(buf.size());
      if (auto r = peer_->write_owned(*id, std::move(buf), kWriteTimeout); !r) return r.error();
      done += static_cast<uint64_t>(n);
      counters_.bytes_done += static_cast<uint64_t>(n);
    }
  }
  counters_.bytes_done += h.length - h.wire_length();  // the holes are done too, as far as progress goes
  std::array<uint8_t, kTrailerSize> trailer{};
  Digest128 d = hash.digest();
  std::memcpy(trailer.data(), d.data(), d.size());
  trailer[kDigestSize] = static_cast<uint8_t>(verdict(fd->get(), *job.file));
  if (auto r = peer_->write(*id, trailer, kWriteTimeout); !r) return r.error();
  if (auto r = peer_->finish(*id); !r) return r.error();
  trace_sent(job, "own stream");
  return chunk_sent(job.file);
}

Result<CopySummary> CopySource::run(const std::vector<SourceRoot>& roots) {
  if (options_.owners) {
    // Names are how owners travel; without the tables, ids alone.
    if (auto db = PasswdDb::load(); db)
      names_ = std::move(*db);
    else
      logger_.warn("owners: " + db.error().message + "; sending numeric ids only");
  }
  CopySummary summary;
  std::mutex summary_mu;
  JobQueue queue;
  Error link_error;
  std::mutex link_mu;
  std::vector<std::thread> workers;
  for (size_t i = 0; i < options_.workers; ++i) {
    workers.emplace_back([&] {
      while (auto job = queue.pop()) {
        std::vector<std::shared_ptr<Job>> batch{job};
        std::vector<Result<void>> results;
        if (job->header.length <= kSmallChunk) {
          uint64_t bytes = record_bytes(job->header);
          while (batch.size() < kMaxBundle) {
            auto next = queue.try_pop_if([&](const Job& j) {
              return j.header.length <= kSmallChunk && bytes + record_bytes(j.header) <= kBundleBytes;
            });
            if (!next) break;
            bytes += record_bytes(next->header);
            batch.push_back(std::move(next));
          }
          results = send_bundle(batch);
        } else {
          results.push_back(send_chunk_streamed(*job));
        }
        for (size_t i = 0; i < batch.size(); ++i) {
          const auto& r = results[i];
          if (!r && r.error().code != Errc::io) {  // the link itself failed: stop sending
            std::lock_guard<std::mutex> lk(link_mu);
            if (link_error.code == Errc::ok) link_error = r.error();
          } else if (!r) {
            std::lock_guard<std::mutex> lk(summary_mu);
            ++summary.failed;
            summary.add_error(batch[i]->header.relpath, r.error().message);
          }
        }
      }
    });
  }
  std::thread reader([&] { read_answers(queue); });
  Walker walker(*this, queue, summary, summary_mu, static_cast<uint32_t>(roots.size()));
  for (uint32_t i = 0; i < roots.size(); ++i) walker.walk_root(i, roots[i]);
  {
    // Every announced file answered and its chunks queued before the queue closes.
    std::unique_lock<std::mutex> lk(announce_mu_);
    flush_announcements();
    walked_ = true;
    announce_cv_.wait(lk, [&] { return answered_ == announced_ || link_error_.code != Errc::ok || finished_; });
    if (finished_ && answered_ != announced_ && link_error_.code == Errc::ok)
      link_error_ = make_error(Errc::protocol, "the destination finished before answering for every file");
  }
  queue.close();
  for (auto& t : workers) t.join();
  {
    std::lock_guard<std::mutex> lk(announce_mu_);
    if (link_error.code == Errc::ok && link_error_.code != Errc::ok) link_error = link_error_;
  }
  if (link_error.code != Errc::ok) {
    peer_->close(link_error.message);
    reader.join();
    return link_error;
  }
  summary.files = counters_.files_done.load();
  summary.bytes = counters_.bytes_done.load();
  // Every file id sent, resent attempts included: the destination settles each.
  // It answers "finished" when every file is settled on disk.
  auto done = peer_->send_message(DoneMsg{next_file_id_.load(), counters_.bytes_total.load()}.encode());
  if (!done) peer_->close(done.error().message);
  reader.join();
  if (!done) return done.error();
  if (!finished_) return link_error_.code != Errc::ok ? link_error_ : make_error(Errc::protocol, "no 'finished'");
  peer_->close("copy complete");
  return summary;
}

}  // namespace rcp
