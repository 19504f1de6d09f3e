// Validation of peer-supplied names and relative paths. The destination only
// ever joins validated components onto directory fds, so nothing a peer sends
// can name a place outside the destination.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "result.h"

namespace rcp {

constexpr size_t kMaxNameBytes = 255;
constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxPathDepth = 256;

// One path component: not empty, not "." or "..", no '/', no NUL, <= 255 bytes.
Result<void> validate_name(std::string_view name);

// "a/b/c" -> {"a","b","c"}; "" -> {} (the root itself). Refuses absolute
// paths, empty components ("a//b", trailing '/'), ".", "..", NUL, and
// over-long or over-deep paths.
Result<std::vector<std::string>> split_relative_path(std::string_view path);

}  // namespace rcp
