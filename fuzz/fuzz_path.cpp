// libFuzzer target: peer-supplied names and relative paths. Whatever the
// validator accepts must be free of the components that could escape. Also
// filter rules (peer-supplied too): the text as a rule, matched against itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "copy/filter_rules.h"
#include "copy/path_validator.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto rules = rcp::FilterRules::parse({std::string(text)}); rules) {
    (void)rules->excluded(text.size() > 2 ? text.substr(2) : text, false);
    (void)rules->excluded(text, true);
  }
  if (auto r = rcp::validate_name(text); r) {
    if (text.empty() || text == "." || text == ".." || text.find('/') != text.npos || text.find('\0') != text.npos)
      __builtin_trap();
  }
  auto parts = rcp::split_relative_path(text);
  if (!parts) return 0;
  if (!text.empty() && text.front() == '/') __builtin_trap();
  for (const auto& p : *parts) {
    if (p.empty() || p == "." || p == ".." || p.find('/') != p.npos || p.find('\0') != p.npos) __builtin_trap();
  }
  return 0;
}
