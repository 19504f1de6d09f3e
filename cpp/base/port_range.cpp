#include "base/port_range.h"

#include <algorithm>
#include <charconv>

namespace rcp {

namespace {

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

Error bad_item(std::string_view item, std::string_view spec, const char* why) {
  return make_error(Errc::invalid_argument,
                    "invalid port range item \"" + std::string(item) + "\" in \"" + std::string(spec) + "\": " + why);
}

// Parses one port number in 1..65535. Digits only: from_chars alone would
// accept a leading '-' and stop silently at trailing garbage.
Result<uint16_t> parse_port(std::string_view text, std::string_view item, std::string_view spec) {
  text = trim(text);
  if (text.empty()) return bad_item(item, spec, "missing port number");
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return bad_item(item, spec, "not a number");
  unsigned long value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range || value > 65535) return bad_item(item, spec, "port above 65535");
  if (ec != std::errc() || ptr != text.data() + text.size()) return bad_item(item, spec, "not a number");
  if (value == 0) return bad_item(item, spec, "port 0 is only allowed alone, meaning any port");
  return static_cast<uint16_t>(value);
}

Result<PortRange::Span> parse_item(std::string_view item, std::string_view spec) {
  if (item.empty()) return bad_item(item, spec, "empty item");
  const size_t dash = item.find('-');
  if (dash == std::string_view::npos) {
    auto port = parse_port(item, item, spec);
    if (!port) return port.error();
    return PortRange::Span{*port, *port};
  }
  auto first = parse_port(item.substr(0, dash), item, spec);
  if (!first) return first.error();
  auto last = parse_port(item.substr(dash + 1), item, spec);  // a second '-' fails here as "not a number"
  if (!last) return last.error();
  if (*first > *last) return bad_item(item, spec, "first port is above last port");
  return PortRange::Span{*first, *last};
}

}  // namespace

Result<PortRange> PortRange::parse(std::string_view spec) {
  PortRange range;
  const std::string_view whole = trim(spec);
  if (whole.empty() || whole == "0") return range;

  size_t start = 0;
  while (true) {
    const size_t comma = whole.find(',', start);
    const std::string_view item =
        trim(whole.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    auto span = parse_item(item, spec);
    if (!span) return span.error();
    range.spans_.push_back(*span);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return range;
}

size_t PortRange::count() const {
  // Overlapping spans ("8000-8010,8005") count each port once.
  std::vector<Span> sorted = spans_;
  std::sort(sorted.begin(), sorted.end(), [](const Span& a, const Span& b) { return a.first < b.first; });
  size_t total = 0;
  uint32_t next_uncounted = 0;  // first port not yet counted
  for (const Span& s : sorted) {
    const uint32_t from = std::max<uint32_t>(s.first, next_uncounted);
    if (from > s.last) continue;
    total += s.last - from + 1;
    next_uncounted = static_cast<uint32_t>(s.last) + 1;
  }
  return total;
}

bool PortRange::contains(uint16_t port) const {
  if (any()) return true;  // "any port" allows every port
  return std::any_of(spans_.begin(), spans_.end(), [port](const Span& s) { return port >= s.first && port <= s.last; });
}

std::string PortRange::to_string() const {
  if (any()) return "0";  // parses back to "any port"
  std::string out;
  for (const Span& s : spans_) {
    if (!out.empty()) out += ',';
    out += std::to_string(s.first);
    if (s.last != s.first) out += '-' + std::to_string(s.last);
  }
  return out;
}

}  // namespace rcp
