// Limits of names and paths on the wire, shared by the encoders, the
// decoders and the validators of both sides.
#pragma once

#include <cstddef>

namespace rcp {

constexpr size_t kMaxNameBytes = 255;
// A relative path on the wire: no PATH_MAX, since both sides reach every
// entry one name at a time from a directory fd.
constexpr size_t kMaxPathBytes = 64 * 1024;
constexpr size_t kMaxPathDepth = 1024;
constexpr size_t kMaxLinkTarget = 4096;  // the kernel's own limit for a symlink's target
// Owners and extended attributes of an entry (protocol 5).
constexpr size_t kMaxOwnerName = 255;          // a user or group name
constexpr size_t kMaxXattrs = 256;             // attributes of one entry
constexpr size_t kMaxXattrName = 255;          // XATTR_NAME_MAX
constexpr size_t kMaxXattrValue = 64 * 1024;   // XATTR_SIZE_MAX
constexpr size_t kMaxXattrBytes = 256 * 1024;  // names and values of one entry
// Roots of one copy: an operand with a wildcard may stand for many.
constexpr unsigned kMaxRoots = 100000;
// Filter rules of one copy ("+ PATTERN" / "- PATTERN"), sent to both rcpds:
// together they fit in one control frame.
constexpr size_t kMaxFilterRules = 512;
constexpr size_t kMaxFilterRuleBytes = 1024;

}  // namespace rcp
