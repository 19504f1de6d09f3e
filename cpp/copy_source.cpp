#include "copy_source.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "chunk_header.h"
#include "event_loop.h"
#include "frame.h"

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
constexpr Nanos kWriteTimeout = 120 * kSeconds;

std::string join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

std::string base_name(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

struct CopySource::Job {
  ChunkHeader header;
  std::string path;                               // where to read
  std::shared_ptr<std::atomic<uint32_t>> left;    // chunks of this file still to send
  std::shared_ptr<std::atomic<bool>> failed;      // one error message per file
};

// Bounded queue between the walker and the workers.
class JobQueue {
 public:
  template <typename J>
  void push(J job) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return q_.size() < kMaxQueuedJobs; });
    q_.push_back(std::make_shared<J>(std::move(job)));
    cv_.notify_all();
  }
  template <typename J>
  std::shared_ptr<J> pop() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return nullptr;
    auto j = std::static_pointer_cast<J>(q_.front());
    q_.pop_front();
    cv_.notify_all();
    return j;
  }
  // The next job if there is one now and `want` takes it; never blocks.
  template <typename J, typename Pred>
  std::shared_ptr<J> try_pop_if(Pred want) {
    std::lock_guard<std::mutex> lk(mu_);
    if (q_.empty() || !want(*std::static_pointer_cast<J>(q_.front()))) return nullptr;
    auto j = std::static_pointer_cast<J>(q_.front());
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
  std::deque<std::shared_ptr<void>> q_;
  bool closed_ = false;
};

class CopySource::Walker {
 public:
  Walker(CopySource& src, JobQueue& queue, CopySummary& summary, std::mutex& summary_mu)
      : src_(src), queue_(queue), summary_(summary), summary_mu_(summary_mu) {}

  void walk_root(uint32_t index, const std::string& path) {
    std::string name = base_name(path);
    struct stat st{};
    if (name.empty() || name == "/" || name == "." || name == "..") {
      announce_root(index, name, "?", "cannot copy '" + path + "' itself; name a file or directory inside it");
      return;
    }
    if (lstat(path.c_str(), &st) != 0) {
      announce_root(index, name, "?", path + ": " + std::strerror(errno));
      return;
    }
    if (S_ISDIR(st.st_mode)) {
      announce_root(index, name, "d", "");
      send_dir(index, "", st);
      walk_dir(index, path, "", 0);
    } else if (S_ISREG(st.st_mode)) {
      announce_root(index, name, "f", "");
      queue_file(index, path, "", st);
    } else if (S_ISLNK(st.st_mode)) {
      announce_root(index, name, "l", "");
      send_symlink(index, path, "", st);
    } else {
      announce_root(index, name, "?", path + ": not a regular file, directory or symlink");
    }
  }

  uint64_t files() const { return next_file_id_; }

 private:
  void announce_root(uint32_t index, const std::string& name, const char* kind, const std::string& err) {
    if (!err.empty()) record_error(name, err);
    (void)src_.peer_->send_message(encode_message(MsgType::root, index, name, std::string(kind), err));
  }

  void record_error(const std::string& where, const std::string& what) {
    src_.logger_.warn(what);
    std::lock_guard<std::mutex> lk(summary_mu_);
    ++summary_.failed;
    summary_.add_error(where, what);
  }

  void source_error(uint32_t index, const std::string& rel, const std::string& what) {
    record_error(rel, what);
    (void)src_.peer_->send_message(encode_message(MsgType::source_error, index, rel, what));
  }

  void send_dir(uint32_t index, const std::string& rel, const struct stat& st) {
    (void)src_.peer_->send_message(encode_message(MsgType::dir, index, rel, static_cast<uint32_t>(st.st_mode & 07777),
                                                  static_cast<int64_t>(st.st_mtim.tv_sec),
                                                  static_cast<uint32_t>(st.st_mtim.tv_nsec)));
    std::lock_guard<std::mutex> lk(summary_mu_);
    ++summary_.dirs;
  }

  void send_symlink(uint32_t index, const std::string& path, const std::string& rel, const struct stat& st) {
    std::vector<char> target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 255) + 1);
    ssize_t n = readlink(path.c_str(), target.data(), target.size());
    if (n < 0 || static_cast<size_t>(n) >= target.size()) {
      source_error(index, rel, path + ": cannot read symlink" + (n < 0 ? std::string(": ") + std::strerror(errno) : ""));
      return;
    }
    (void)src_.peer_->send_message(encode_message(MsgType::symlink, index, rel,
                                                  std::string(target.data(), static_cast<size_t>(n)),
                                                  static_cast<int64_t>(st.st_mtim.tv_sec),
                                                  static_cast<uint32_t>(st.st_mtim.tv_nsec)));
    std::lock_guard<std::mutex> lk(summary_mu_);
    ++summary_.symlinks;
  }

  void queue_file(uint32_t index, const std::string& path, const std::string& rel, const struct stat& st) {
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    const uint64_t chunk = src_.options_.chunk_bytes;
    const uint32_t nchunks = size == 0 ? 1 : static_cast<uint32_t>((size + chunk - 1) / chunk);
    auto left = std::make_shared<std::atomic<uint32_t>>(nchunks);
    auto failed = std::make_shared<std::atomic<bool>>(false);
    const uint64_t id = next_file_id_++;
    src_.counters_.files_total += 1;
    src_.counters_.bytes_total += size;
    for (uint32_t c = 0; c < nchunks; ++c) {
      Job job;
      job.header = ChunkHeader{id, index, rel, size, static_cast<uint32_t>(st.st_mode & 07777),
                               static_cast<int64_t>(st.st_mtim.tv_sec), static_cast<uint32_t>(st.st_mtim.tv_nsec),
                               c, nchunks, c * chunk, std::min(chunk, size - c * chunk)};
      job.path = path;
      job.left = left;
      job.failed = failed;
      queue_.push(std::move(job));
    }
  }

  void walk_dir(uint32_t index, const std::string& path, const std::string& rel, size_t depth) {
    if (depth > 200) {
      source_error(index, rel, path + ": directory tree deeper than 200 levels");
      return;
    }
    int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR* dir = fd >= 0 ? fdopendir(fd) : nullptr;
    if (dir == nullptr) {
      if (fd >= 0) close(fd);
      source_error(index, rel, path + ": " + std::strerror(errno));
      return;
    }
    std::vector<std::pair<std::string, struct stat>> subdirs;
    while (dirent* e = readdir(dir)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat st{};
      const std::string child = join(path, name), child_rel = join(rel, name);
      if (fstatat(dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        source_error(index, child_rel, child + ": " + std::strerror(errno));
      } else if (S_ISDIR(st.st_mode)) {
        subdirs.emplace_back(name, st);
      } else if (S_ISREG(st.st_mode)) {
        queue_file(index, child, child_rel, st);
      } else if (S_ISLNK(st.st_mode)) {
        send_symlink(index, child, child_rel, st);
      } else {
        source_error(index, child_rel, child + ": not a regular file, directory or symlink; skipped");
      }
    }
    closedir(dir);
    // Directories after the files of their parent, so the fd is closed before descending.
    for (auto& [name, st] : subdirs) {
      send_dir(index, join(rel, name), st);
      walk_dir(index, join(path, name), join(rel, name), depth + 1);
    }
  }

  CopySource& src_;
  JobQueue& queue_;
  CopySummary& summary_;
  std::mutex& summary_mu_;
  uint64_t next_file_id_ = 0;
};

CopySource::CopySource(std::shared_ptr<Link> peer, const SourceOptions& options, const Logger& logger,
                       TransferCounters& counters)
    : peer_(std::move(peer)), options_(options), logger_(logger), counters_(counters) {}

bool CopySource::append_record(const Job& job, std::vector<uint8_t>& body) {
  const ChunkHeader& h = job.header;
  UniqueFd fd(open(job.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return false;
  const size_t start = body.size();
  std::vector<uint8_t> head = encode_frame(h.encode());
  body.insert(body.end(), head.begin(), head.end());
  const size_t data = body.size();
  body.resize(data + h.length + kDigestSize);
  uint64_t done = 0;
  while (done < h.length) {
    ssize_t n = pread(fd.get(), body.data() + data + done, h.length - done, static_cast<off_t>(h.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      body.resize(start);
      return false;
    }
    done += static_cast<uint64_t>(n);
  }
  Digest128 d = Xxh128::of({body.data() + data, h.length});
  std::memcpy(body.data() + data + h.length, d.data(), d.size());
  return true;
}

std::vector<Result<void>> CopySource::send_bundle(const std::vector<std::shared_ptr<Job>>& jobs) {
  // With thousands of small files the per-stream and per-call costs, not the
  // bytes, dominate: one stream and one hand-off for the lot.
  std::vector<Result<void>> results(jobs.size());
  std::vector<uint8_t> body;
  std::vector<size_t> bundled, unread;
  for (size_t i = 0; i < jobs.size(); ++i) (append_record(*jobs[i], body) ? bundled : unread).push_back(i);
  if (!bundled.empty()) {
    auto sent = peer_->send_data_stream(body, kWriteTimeout);
    for (size_t i : bundled) {
      results[i] = sent;
      if (!sent) continue;
      counters_.bytes_done += jobs[i]->header.length;
      if (jobs[i]->left->fetch_sub(1) == 1 && !jobs[i]->failed->load()) counters_.files_done += 1;
    }
  }
  // Unreadable now: the streamed path reports why, the usual way.
  for (size_t i : unread) results[i] = send_chunk_streamed(*jobs[i]);
  return results;
}

Result<void> CopySource::send_chunk_streamed(const Job& job) {
  const ChunkHeader& h = job.header;
  auto id = peer_->open_data();
  if (!id) return id.error();
  std::vector<uint8_t> head = encode_frame(h.encode());
  if (auto r = peer_->write(*id, head, kWriteTimeout); !r) return r.error();
  // Whatever happens below, the stream ends, so the destination can settle the file.
  auto fail = [&](const std::string& why) -> Result<void> {
    (void)peer_->finish(*id);
    if (!job.failed->exchange(true))
      (void)peer_->send_message(encode_message(MsgType::source_error, h.root, h.relpath, job.path + ": " + why));
    return make_error(Errc::io, job.path + ": " + why);
  };
  int fd = open(job.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return fail(std::strerror(errno));
  UniqueFd guard(fd);
  Xxh128 hash;
  std::vector<uint8_t> buf(static_cast<size_t>(std::min<uint64_t>(kReadBlock, std::max<uint64_t>(h.length, 1))));
  uint64_t done = 0;
  while (done < h.length) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), h.length - done));
    ssize_t n = pread(fd, buf.data(), want, static_cast<off_t>(h.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::strerror(errno));
    if (n == 0) return fail("file shrank while being copied");
    std::span<const uint8_t> data(buf.data(), static_cast<size_t>(n));
    hash.update(data);
    if (auto r = peer_->write(*id, data, kWriteTimeout); !r) return r.error();
    done += static_cast<uint64_t>(n);
    counters_.bytes_done += static_cast<uint64_t>(n);
  }
  Digest128 d = hash.digest();
  if (auto r = peer_->write(*id, d, kWriteTimeout); !r) return r.error();
  if (auto r = peer_->finish(*id); !r) return r.error();
  if (job.left->fetch_sub(1) == 1 && !job.failed->load()) counters_.files_done += 1;
  return {};
}

Result<CopySummary> CopySource::run(const std::vector<std::string>& roots) {
  CopySummary summary;
  std::mutex summary_mu;
  JobQueue queue;
  Error link_error;
  std::mutex link_mu;
  std::vector<std::thread> workers;
  for (size_t i = 0; i < options_.workers; ++i) {
    workers.emplace_back([&] {
      while (auto job = queue.pop<Job>()) {
        std::vector<std::shared_ptr<Job>> batch{job};
        std::vector<Result<void>> results;
        if (job->header.length <= kSmallChunk) {
          uint64_t bytes = record_bytes(job->header);
          while (batch.size() < kMaxBundle) {
            auto next = queue.try_pop_if<Job>([&](const Job& j) {
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
  Walker walker(*this, queue, summary, summary_mu);
  for (uint32_t i = 0; i < roots.size(); ++i) walker.walk_root(i, roots[i]);
  queue.close();
  for (auto& t : workers) t.join();
  if (link_error.code != Errc::ok) return link_error;

  summary.files = counters_.files_done.load();
  summary.bytes = counters_.bytes_done.load();
  if (auto r = peer_->send_message(encode_message(MsgType::done, walker.files(), counters_.bytes_total.load())); !r)
    return r.error();
  // The destination answers "finished" when every file is settled on disk.
  auto reply = peer_->recv_message(options_.finish_timeout);
  if (!reply) return reply.error();
  auto m = decode_message(*reply);
  if (!m || m->type != static_cast<uint32_t>(MsgType::finished))
    return make_error(Errc::protocol, "destination sent something other than 'finished'");
  peer_->close("copy complete");
  return summary;
}

}  // namespace rcp
