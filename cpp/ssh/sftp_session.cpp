#include "ssh/sftp_session.h"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <algorithm>
#include <mutex>

#include "ssh/ssh_session.h"
#include "ssh/ssh_shared.h"

namespace rcp {

namespace detail {

struct SftpShared {
  std::shared_ptr<SshShared> ssh;
  sftp_session sftp = nullptr;
  std::string host;

  SftpShared(std::shared_ptr<SshShared> s, sftp_session f, std::string h)
      : ssh(std::move(s)), sftp(f), host(std::move(h)) {}
  SftpShared(const SftpShared&) = delete;
  SftpShared& operator=(const SftpShared&) = delete;
  ~SftpShared() {
    std::lock_guard lock(ssh->mu);
    // After ssh_disconnect the channel under it is gone: sftp_free would
    // touch it. The small struct is left to the process then.
    if (!ssh->disconnected) sftp_free(sftp);
  }

  Result<void> usable_locked() const {
    if (ssh->disconnected) return make_error(Errc::closed, "ssh: the session to " + host + " is closed");
    return {};
  }

  // The last request's failure, with the server's status ("no such file"...).
  Error failure_locked(const std::string& what, const std::string& path) const {
    const int status = sftp_get_error(sftp);
    std::string why = status == SSH_FX_OK ? std::string(ssh_get_error(ssh->session)) : sftp_status_text(status);
    if (why.empty()) why = "failed";
    return make_error(Errc::io, "sftp: " + what + " " + path + " on " + host + ": " + why);
  }
};

}  // namespace detail

namespace {

struct AttributesFree {
  void operator()(sftp_attributes a) const { sftp_attributes_free(a); }
};
using UniqueAttributes = std::unique_ptr<sftp_attributes_struct, AttributesFree>;

}  // namespace

Result<SftpAttributes> sftp_attributes_from(uint32_t flags, uint8_t type, uint32_t permissions, uint32_t uid,
                                            uint32_t gid, uint64_t size) {
  if ((flags & SSH_FILEXFER_ATTR_UIDGID) == 0 || (flags & SSH_FILEXFER_ATTR_PERMISSIONS) == 0)
    return make_error(Errc::protocol, "sftp: the server did not report the owner and permissions");
  SftpAttributes a;
  // libssh derives `type` from the permissions' S_IFMT for SFTP v3 servers;
  // both must agree on what matters here.
  switch (type) {
    case SSH_FILEXFER_TYPE_REGULAR: a.type = SftpType::regular; break;
    case SSH_FILEXFER_TYPE_DIRECTORY: a.type = SftpType::directory; break;
    case SSH_FILEXFER_TYPE_SYMLINK: a.type = SftpType::symlink; break;
    default: a.type = SftpType::other; break;
  }
  const uint32_t format = permissions & 0170000U;
  if (format != 0) {
    const SftpType by_mode = format == 0100000U   ? SftpType::regular
                             : format == 0040000U ? SftpType::directory
                             : format == 0120000U ? SftpType::symlink
                                                  : SftpType::other;
    if (by_mode != a.type) a.type = SftpType::other;  // contradictory: trusted as nothing
  }
  a.uid = uid;
  a.gid = gid;
  a.mode = permissions & 07777U;
  a.size = (flags & SSH_FILEXFER_ATTR_SIZE) != 0 ? size : 0;
  return a;
}

const char* sftp_status_text(int status) {
  switch (status) {
    case SSH_FX_OK: return "ok";
    case SSH_FX_EOF: return "end of file";
    case SSH_FX_NO_SUCH_FILE: return "no such file or directory";
    case SSH_FX_PERMISSION_DENIED: return "permission denied";
    case SSH_FX_FAILURE: return "failed (it may exist already)";
    case SSH_FX_BAD_MESSAGE: return "bad message";
    case SSH_FX_NO_CONNECTION: return "no connection";
    case SSH_FX_CONNECTION_LOST: return "connection lost";
    case SSH_FX_OP_UNSUPPORTED: return "operation unsupported by the server";
    case SSH_FX_INVALID_HANDLE: return "invalid handle";
    case SSH_FX_NO_SUCH_PATH: return "no such path";
    case SSH_FX_FILE_ALREADY_EXISTS: return "file already exists";
    case SSH_FX_WRITE_PROTECT: return "write protected";
    case SSH_FX_NO_MEDIA: return "no media";
    default: return "unknown SFTP status";
  }
}

// ---- SshSession::sftp ----

Result<std::unique_ptr<SftpSession>> SshSession::sftp() {
  std::lock_guard lock(shared_->mu);
  if (shared_->disconnected || !ssh_is_connected(shared_->session))
    return make_error(Errc::closed, "ssh: session to " + host_ + " is closed");
  sftp_session raw = sftp_new(shared_->session);  // opens a channel and asks for the "sftp" subsystem
  if (raw == nullptr)
    return make_error(Errc::ssh_connect,
                      "sftp: " + host_ + " offers no SFTP: " + std::string(ssh_get_error(shared_->session)));
  if (sftp_init(raw) != SSH_OK) {
    Error err = make_error(Errc::ssh_connect,
                           "sftp: cannot start SFTP on " + host_ + ": " + sftp_status_text(sftp_get_error(raw)));
    sftp_free(raw);
    return err;
  }
  auto holder = std::make_shared<detail::SftpShared>(shared_, raw, host_);
  return std::unique_ptr<SftpSession>(new SftpSession(std::move(holder)));
}

// ---- SftpSession ----

SftpSession::~SftpSession() = default;  // the sftp_session goes with its last file

Result<std::optional<SftpAttributes>> SftpSession::lstat(const std::string& path) {
  std::lock_guard lock(shared_->ssh->mu);
  if (auto r = shared_->usable_locked(); !r) return r.error();
  UniqueAttributes attrs(sftp_lstat(shared_->sftp, path.c_str()));
  if (!attrs) {
    const int status = sftp_get_error(shared_->sftp);
    if (status == SSH_FX_NO_SUCH_FILE || status == SSH_FX_NO_SUCH_PATH) return std::optional<SftpAttributes>();
    return shared_->failure_locked("lstat", path);
  }
  auto a = sftp_attributes_from(attrs->flags, attrs->type, attrs->permissions, attrs->uid, attrs->gid, attrs->size);
  if (!a) return make_error(a.error().code, a.error().message + " of " + path);
  return std::optional<SftpAttributes>(*a);
}

Result<void> SftpSession::mkdir(const std::string& path, uint32_t mode) {
  std::lock_guard lock(shared_->ssh->mu);
  if (auto r = shared_->usable_locked(); !r) return r;
  if (sftp_mkdir(shared_->sftp, path.c_str(), static_cast<mode_t>(mode)) != 0)
    return shared_->failure_locked("mkdir", path);
  return {};
}

Result<std::unique_ptr<SftpFile>> SftpSession::create(const std::string& path, uint32_t mode) {
  std::lock_guard lock(shared_->ssh->mu);
  if (auto r = shared_->usable_locked(); !r) return r.error();
  sftp_file f = sftp_open(shared_->sftp, path.c_str(), O_WRONLY | O_CREAT | O_EXCL, static_cast<mode_t>(mode));
  if (f == nullptr) return shared_->failure_locked("create", path);
  return std::unique_ptr<SftpFile>(new SftpFile(shared_, f, path));
}

Result<void> SftpSession::unlink(const std::string& path) {
  std::lock_guard lock(shared_->ssh->mu);
  if (auto r = shared_->usable_locked(); !r) return r;
  if (sftp_unlink(shared_->sftp, path.c_str()) != 0) return shared_->failure_locked("unlink", path);
  return {};
}

// ---- SftpFile ----

SftpFile::SftpFile(std::shared_ptr<detail::SftpShared> shared, sftp_file file, std::string path)
    : shared_(std::move(shared)), file_(file), path_(std::move(path)) {}

SftpFile::~SftpFile() { (void)close(); }

Result<void> SftpFile::write(std::span<const uint8_t> data) {
  std::lock_guard lock(shared_->ssh->mu);
  if (auto r = shared_->usable_locked(); !r) return r;
  if (file_ == nullptr) return make_error(Errc::closed, "sftp: " + path_ + " is closed");
  while (!data.empty()) {
    const size_t chunk = std::min(data.size(), kChunk);
    const ssize_t n = sftp_write(file_, data.data(), chunk);  // may write less (the server's limits)
    if (n <= 0) return shared_->failure_locked("write to", path_);
    data = data.subspan(static_cast<size_t>(n));
  }
  return {};
}

Result<void> SftpFile::close() {
  std::lock_guard lock(shared_->ssh->mu);
  if (file_ == nullptr) return {};
  sftp_file f = std::exchange(file_, nullptr);
  if (shared_->ssh->disconnected) return make_error(Errc::closed, "sftp: the session is closed");
  if (sftp_close(f) != SSH_NO_ERROR) return shared_->failure_locked("close", path_);
  return {};
}

}  // namespace rcp
