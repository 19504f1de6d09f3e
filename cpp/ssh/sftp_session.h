// SftpSession / SftpFile: the few SFTP operations the master needs to deploy
// rcpd to a host (docs/security.md, "Deploying rcpd"), over the SSH
// connection it already has. Only what the deploy checks and does: lstat
// (owner, permissions, type), mkdir with a mode, exclusive create with a
// mode, sequential writes, unlink. (The rename is done by `mv` on the remote:
// SFTP v3's rename, which libssh 0.10 sends, refuses an existing target.)
//
// Threads: as SshSession: every call takes the connection's lock. Each
// blocking wait is bounded by the session's timeout (the connect timeout).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "base/result.h"

struct sftp_file_struct;  // libssh's, kept out of this header

namespace rcp {

namespace detail {
struct SftpShared;  // the sftp_session and the connection under it, shared by a session and its files
}

enum class SftpType { regular, directory, symlink, other };

// What lstat tells: enough to judge whether a path is safe to trust.
struct SftpAttributes {
  SftpType type = SftpType::other;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t mode = 0;  // permission bits (07777)
  uint64_t size = 0;
};

// From the fields of an SFTP attribute record (SSH_FILEXFER_ATTR_* flags,
// libssh's type, the permissions word). Errc::protocol when the server left
// out the owner or the permissions: a path that cannot be judged is not trusted.
Result<SftpAttributes> sftp_attributes_from(uint32_t flags, uint8_t type, uint32_t permissions, uint32_t uid,
                                            uint32_t gid, uint64_t size);

// "no such file", "permission denied"... for an SSH_FX_* status code.
const char* sftp_status_text(int status);

// A file opened for writing by SftpSession::create.
class SftpFile {
 public:
  static constexpr size_t kChunk = 128 * 1024;  // per request: servers cap a packet at 256 KiB

  ~SftpFile();
  SftpFile(const SftpFile&) = delete;
  SftpFile& operator=(const SftpFile&) = delete;

  Result<void> write(std::span<const uint8_t> data);  // all of it, in order
  Result<void> close();                               // reports a failed close; idempotent

 private:
  friend class SftpSession;
  SftpFile(std::shared_ptr<detail::SftpShared> shared, sftp_file_struct* file, std::string path);

  std::shared_ptr<detail::SftpShared> shared_;
  sftp_file_struct* file_;  // null once closed
  std::string path_;
};

class SftpSession {
 public:
  ~SftpSession();
  SftpSession(const SftpSession&) = delete;
  SftpSession& operator=(const SftpSession&) = delete;

  // The path's own attributes (a symlink is not followed); nullopt when it
  // does not exist.
  Result<std::optional<SftpAttributes>> lstat(const std::string& path);
  Result<void> mkdir(const std::string& path, uint32_t mode);
  // Creates `path` for writing, failing if anything exists there (O_EXCL: a
  // symlink planted at the name is not followed), with `mode`.
  Result<std::unique_ptr<SftpFile>> create(const std::string& path, uint32_t mode);
  Result<void> unlink(const std::string& path);

 private:
  friend class SshSession;
  explicit SftpSession(std::shared_ptr<detail::SftpShared> shared) : shared_(std::move(shared)) {}

  std::shared_ptr<detail::SftpShared> shared_;
};

}  // namespace rcp
