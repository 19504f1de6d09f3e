// Quoting for the command string of an SSH exec request, which the remote
// user's login shell parses. Everything that reaches a remote command line
// goes through shell_quote; host operands are checked before use.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace rcp {

// POSIX single-quote quoting: the result is one shell word that expands to
// exactly `s`. Words made only of [A-Za-z0-9_./:,@+-] are returned as they
// are (readable commands); anything else is wrapped in '...' with each ' as
// '\'' ("a'b" -> 'a'\''b'); the empty string becomes ''.
std::string shell_quote(std::string_view s);

// Refuses host operands that would be read as something else: empty, starting
// with '-' (an option to ssh or a remote tool), or holding whitespace or
// control characters.
Result<void> check_host_operand(std::string_view host);

}  // namespace rcp
