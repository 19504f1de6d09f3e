#include "base/logger.h"

#include <cstdio>
#include <cstdlib>

namespace rcp {

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::error: return "error";
    case LogLevel::warn: return "warn";
    case LogLevel::info: return "info";
    case LogLevel::debug: return "debug";
    case LogLevel::trace: return "trace";
  }
  return "?";
}

bool parse_log_level(std::string_view text, LogLevel& out) {
  for (auto l : {LogLevel::error, LogLevel::warn, LogLevel::info, LogLevel::debug, LogLevel::trace}) {
    if (text == log_level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

void Logger::log(LogLevel l, const std::string& message) const {
  if (!enabled(l)) return;
  if (sink) {
    sink(l, message);
    return;
  }
  // One fprintf per line keeps lines from different threads whole.
  std::fprintf(stderr, "rcp[%s] %s: %s\n", tag.c_str(), log_level_name(l), message.c_str());
}

Logger Logger::from_env(std::string tag, LogLevel fallback) {
  Logger logger;
  logger.tag = std::move(tag);
  logger.level = fallback;
  if (const char* env = std::getenv("RCP_LOG")) parse_log_level(env, logger.level);
  return logger;
}

}  // namespace rcp
