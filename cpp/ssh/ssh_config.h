// The ssh_config(5) values rcp resolves itself because libssh does not:
// libssh reads StrictHostKeyChecking as yes/no only (accept-new and ask are
// lost), and with "no" its known_hosts lookup reports a changed key as known.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace rcp {

// What to do with a host key not in known_hosts. A changed key is refused
// whatever the policy.
enum class HostKeyPolicy {
  yes,         // refuse unknown keys
  accept_new,  // record unknown keys, with a warning
  no,          // the same as accept_new: a changed key is still refused
  ask,         // ask on the terminal; refused when there is none
};

// "yes", "no", "accept-new", "ask" (also "true"/"false"/"off", as OpenSSH).
Result<HostKeyPolicy> parse_host_key_policy(std::string_view value);
const char* host_key_policy_name(HostKeyPolicy policy);

// The files ssh (and libssh) read: `config_file` alone when given, else
// ~/.ssh/config then /etc/ssh/ssh_config.
std::vector<std::string> ssh_config_files(const std::string& config_file);

struct SshConfigQuery {
  std::string host;      // as given (an alias): what `Host` patterns match
  std::string hostname;  // after HostName: what `Match host` matches (empty: host)
  std::string user;      // for `Match user`
};

// The first value of `keyword` (case-insensitive) that applies to the query,
// as ssh reads config files: in order, first value wins, `Host` and `Match`
// (all, host, originalhost, user, localuser; a block with any other criterion
// does not apply) and `Include`. nullopt when not set. A file in `files` that
// does not exist is skipped; one that cannot be read is an error.
Result<std::optional<std::string>> ssh_config_value(const std::vector<std::string>& files, const SshConfigQuery& query,
                                                    std::string_view keyword);

struct SshConfigEntry {
  std::string keyword;  // lower case, as asked
  std::string value;
};

// The first value of any of `keywords` that applies: for options that
// compete, such as ProxyJump and ProxyCommand (the first one given wins).
Result<std::optional<SshConfigEntry>> ssh_config_first(const std::vector<std::string>& files,
                                                       const SshConfigQuery& query,
                                                       std::initializer_list<std::string_view> keywords);

}  // namespace rcp
