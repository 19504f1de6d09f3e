#include "ssh/shell_quote.h"

namespace rcp {

namespace {

// Characters no POSIX shell (nor zsh) gives a meaning to anywhere in a word.
// Deliberately excludes '=' and '%' (zsh expands a leading '=' and '%') and '~'.
bool is_safe(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '/' || c == ':' || c == ',' || c == '@' || c == '+' || c == '-';
}

}  // namespace

std::string shell_quote(std::string_view s) {
  bool safe = !s.empty();
  for (char c : s) safe = safe && is_safe(c);
  if (safe) return std::string(s);

  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";  // close the quote, an escaped quote, reopen
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

Result<void> check_host_operand(std::string_view host) {
  if (host.empty()) return make_error(Errc::invalid_argument, "empty host name");
  if (host.front() == '-')
    return make_error(Errc::invalid_argument,
                      "host name \"" + std::string(host) + "\" starts with '-' (refused: it would read as an option)");
  for (char c : host) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f)
      return make_error(Errc::invalid_argument, "host name holds whitespace or a control character");
  }
  return {};
}

}  // namespace rcp
