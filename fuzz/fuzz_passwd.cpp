// libFuzzer target: /etc/passwd and /etc/group text (PasswdDb), then remote
// operand paths resolved against what was parsed. Nothing may crash, every
// entry kept must be well formed, and a resolved path is absolute and bounded.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/passwd_db.h"
#include "base/remote_path.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const rcp::PasswdDb db = rcp::PasswdDb::parse(text, text);
  for (const auto& u : db.users()) {
    if (u.name.empty() || u.name.find_first_of(":\n") != u.name.npos || u.uid == UINT32_MAX) __builtin_trap();
    if (db.user(u.name) == nullptr || db.user(u.uid) == nullptr) __builtin_trap();
  }
  for (const auto& g : db.groups())
    if (g.name.empty() || g.name.find_first_of(":\n") != g.name.npos || g.gid == UINT32_MAX) __builtin_trap();
  // Each line, and "~name/rest" for the first users, as an operand.
  const std::string_view first_line = text.substr(0, text.find('\n'));
  for (std::string_view operand : {first_line, text}) {
    auto r = rcp::resolve_operand_path(operand, "/home/fuzz", db);
    if (!r) continue;
    const std::string joined = r->joined();
    if (joined.empty() || joined.front() != '/' || joined.size() > rcp::kMaxResolvedPath) __builtin_trap();
  }
  for (size_t i = 0; i < db.users().size() && i < 4; ++i) {
    const auto& u = db.users()[i];
    if (u.name.find('/') != u.name.npos) continue;  // "~a/b/x" is user a's
    auto r = rcp::resolve_operand_path("~" + u.name + "/x", "/home/fuzz", db);
    const bool usable = !u.home.empty() && u.home.front() == '/';
    if (r && r->base != db.user(u.name)->home) __builtin_trap();
    if (!r && usable && u.home.size() + u.name.size() < 1000 && db.user(u.name) == &u) __builtin_trap();
  }
  return 0;
}
