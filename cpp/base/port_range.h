// PortRange: the set of local UDP ports a listener may bind, parsed from a
// setting such as "8000-8999,9100". An empty spec means "any port" (0).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace rcp {

class PortRange {
 public:
  struct Span {
    uint16_t first;
    uint16_t last;  // inclusive
  };

  // "" or "0" -> any port. Otherwise comma-separated ports or first-last spans,
  // each in 1..65535 with first <= last; whitespace around items is allowed.
  static Result<PortRange> parse(std::string_view spec);

  bool any() const { return spans_.empty(); }
  const std::vector<Span>& spans() const { return spans_; }
  size_t count() const;                // number of ports (0 when any())
  bool contains(uint16_t port) const;  // any() contains every port
  std::string to_string() const;

 private:
  std::vector<Span> spans_;
};

}  // namespace rcp
