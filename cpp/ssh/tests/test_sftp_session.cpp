#include "ssh/sftp_session.h"

#include <gtest/gtest.h>
#include <libssh/sftp.h>

namespace rcp {
namespace {

constexpr uint32_t kOwnerAndMode = SSH_FILEXFER_ATTR_UIDGID | SSH_FILEXFER_ATTR_PERMISSIONS;

TEST(SftpAttributes, DirectoryWithOwnerAndMode) {
  auto a = sftp_attributes_from(kOwnerAndMode | SSH_FILEXFER_ATTR_SIZE, SSH_FILEXFER_TYPE_DIRECTORY, 040755, 1000, 100,
                                4096);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->type, SftpType::directory);
  EXPECT_EQ(a->uid, 1000U);
  EXPECT_EQ(a->gid, 100U);
  EXPECT_EQ(a->mode, 0755U);
  EXPECT_EQ(a->size, 4096U);
}

TEST(SftpAttributes, KeepsSpecialBitsDropsFormat) {
  auto a = sftp_attributes_from(kOwnerAndMode, SSH_FILEXFER_TYPE_DIRECTORY, 041777, 0, 0, 0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->mode, 01777U);  // sticky and world-writable: the caller must see both
  EXPECT_EQ(a->size, 0U);      // no SIZE flag: unknown, reported as 0
}

TEST(SftpAttributes, SymlinkAndRegular) {
  auto link = sftp_attributes_from(kOwnerAndMode, SSH_FILEXFER_TYPE_SYMLINK, 0120777, 0, 0, 0);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->type, SftpType::symlink);
  auto file = sftp_attributes_from(kOwnerAndMode, SSH_FILEXFER_TYPE_REGULAR, 0100700, 0, 0, 7);
  ASSERT_TRUE(file);
  EXPECT_EQ(file->type, SftpType::regular);
}

TEST(SftpAttributes, ContradictoryTypeIsOther) {
  // A server claiming "directory" for a symlink's mode is trusted as neither.
  auto a = sftp_attributes_from(kOwnerAndMode, SSH_FILEXFER_TYPE_DIRECTORY, 0120777, 0, 0, 0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->type, SftpType::other);
}

TEST(SftpAttributes, WithoutOwnerOrModeIsRefused) {
  EXPECT_FALSE(sftp_attributes_from(SSH_FILEXFER_ATTR_PERMISSIONS, SSH_FILEXFER_TYPE_DIRECTORY, 040700, 0, 0, 0));
  auto no_mode = sftp_attributes_from(SSH_FILEXFER_ATTR_UIDGID, SSH_FILEXFER_TYPE_DIRECTORY, 040700, 0, 0, 0);
  ASSERT_FALSE(no_mode);
  EXPECT_EQ(no_mode.error().code, Errc::protocol);
}

TEST(SftpStatus, NamesCommonCodes) {
  EXPECT_STREQ(sftp_status_text(SSH_FX_NO_SUCH_FILE), "no such file or directory");
  EXPECT_STREQ(sftp_status_text(SSH_FX_PERMISSION_DENIED), "permission denied");
  EXPECT_STREQ(sftp_status_text(12345), "unknown SFTP status");
}

}  // namespace
}  // namespace rcp
