// Logger: a level and a sink, passed inside configuration structs (no global
// logger). The level comes from RCP_LOG (error|warn|info|debug|trace).
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace rcp {

enum class LogLevel { error = 0, warn, info, debug, trace };

const char* log_level_name(LogLevel level);
bool parse_log_level(std::string_view text, LogLevel& out);

struct Logger {
  LogLevel level = LogLevel::warn;
  std::string tag;  // prefix, e.g. "server" or "source"
  // Receives complete lines; null means stderr.
  std::function<void(LogLevel, const std::string&)> sink;

  bool enabled(LogLevel l) const { return l <= level; }
  void log(LogLevel l, const std::string& message) const;
  void error(const std::string& m) const { log(LogLevel::error, m); }
  void warn(const std::string& m) const { log(LogLevel::warn, m); }
  void info(const std::string& m) const { log(LogLevel::info, m); }
  void debug(const std::string& m) const { log(LogLevel::debug, m); }
  void trace(const std::string& m) const { log(LogLevel::trace, m); }

  // Level from RCP_LOG, else `fallback`.
  static Logger from_env(std::string tag, LogLevel fallback = LogLevel::warn);
};

}  // namespace rcp
