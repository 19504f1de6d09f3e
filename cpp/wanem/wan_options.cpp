#include "wanem/wan_options.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace rcp::wanem {
namespace {

Result<double> parse_number(const std::string& text, const char* what) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < 0)
    return make_error(Errc::invalid_argument, std::string("bad ") + what + ": '" + text + "'");
  return v;
}

Result<uint64_t> parse_count(const std::string& text, const char* what) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size())
    return make_error(Errc::invalid_argument, std::string("bad ") + what + ": '" + text + "'");
  return v;
}

Result<TunSpec> parse_tun(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return TunSpec{"", text};
  if (colon + 1 == text.size()) return make_error(Errc::invalid_argument, "missing TUN name in '" + text + "'");
  return TunSpec{text.substr(0, colon), text.substr(colon + 1)};
}

}  // namespace

Result<Nanos> parse_millis(const std::string& text) {
  auto v = parse_number(text, "milliseconds");
  if (!v) return v.error();
  return static_cast<Nanos>(std::llround(*v * 1e6));
}

Result<double> parse_probability(const std::string& text) {
  const bool percent = !text.empty() && text.back() == '%';
  auto v = parse_number(percent ? text.substr(0, text.size() - 1) : text, "probability");
  if (!v) return v.error();
  const double p = percent ? *v / 100.0 : *v;
  if (p > 1.0) return make_error(Errc::invalid_argument, "probability over 1: '" + text + "'");
  return p;
}

Result<void> apply_shaping(std::span<const std::string> args, ShaperConfig& a2b, ShaperConfig& b2a) {
  bool to_a2b = true, to_b2a = true;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    auto each = [&](auto&& fn) {
      if (to_a2b) fn(a2b);
      if (to_b2a) fn(b2a);
    };
    // Flags without a value.
    if (flag == "--loss-handshake-only" || flag == "--loss-all") {
      each([&](ShaperConfig& c) { c.loss_handshake_only = flag == "--loss-handshake-only"; });
      continue;
    }
    if (flag == "--clear-blackholes") {
      each([](ShaperConfig& c) { c.blackholes.clear(); });
      continue;
    }
    if (i + 1 >= args.size()) return make_error(Errc::invalid_argument, flag + " needs a value");
    const std::string& value = args[++i];
    if (flag == "--dir") {
      if (value != "a2b" && value != "b2a" && value != "both")
        return make_error(Errc::invalid_argument, "--dir takes a2b, b2a or both");
      to_a2b = value != "b2a";
      to_b2a = value != "a2b";
    } else if (flag == "--delay" || flag == "--jitter") {
      auto ns = parse_millis(value);
      if (!ns) return ns.error();
      each([&](ShaperConfig& c) { (flag == "--delay" ? c.delay : c.jitter) = *ns; });
    } else if (flag == "--loss" || flag == "--corrupt") {
      auto p = parse_probability(value);
      if (!p) return p.error();
      each([&](ShaperConfig& c) { (flag == "--loss" ? c.loss : c.corrupt) = *p; });
    } else if (flag == "--loss-burst" || flag == "--queue" || flag == "--corrupt-first") {
      auto n = parse_count(value, flag.c_str());
      if (!n) return n.error();
      each([&](ShaperConfig& c) {
        if (flag == "--loss-burst")
          c.max_loss_burst = static_cast<uint32_t>(*n);
        else if (flag == "--queue")
          c.queue_bytes = *n;
        else
          c.corrupt_first = *n;
      });
    } else if (flag == "--rate") {
      auto mbit = parse_number(value, "rate (Mbit/s)");
      if (!mbit) return mbit.error();
      each([&](ShaperConfig& c) { c.rate_bps = static_cast<uint64_t>(std::llround(*mbit * 1e6)); });
    } else if (flag == "--blackhole") {
      auto colon = value.find(':');
      if (colon == std::string::npos) return make_error(Errc::invalid_argument, "--blackhole takes START_MS:LENGTH_MS");
      auto start = parse_millis(value.substr(0, colon));
      if (!start) return start.error();
      auto length = parse_millis(value.substr(colon + 1));
      if (!length) return length.error();
      each([&](ShaperConfig& c) { c.blackholes.push_back(Window{*start, *length}); });
    } else {
      return make_error(Errc::invalid_argument, "unknown option " + flag);
    }
  }
  return {};
}

Result<WanOptions> parse_wan_options(std::span<const std::string> args) {
  WanOptions o;
  std::vector<std::string> shaping;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--no-control") {
      o.control = false;
    } else if (flag == "--a" || flag == "--b" || flag == "--seed") {
      if (i + 1 >= args.size()) return make_error(Errc::invalid_argument, flag + " needs a value");
      const std::string& value = args[++i];
      if (flag == "--seed") {
        auto n = parse_count(value, "seed");
        if (!n) return n.error();
        o.seed = *n;
      } else {
        auto t = parse_tun(value);
        if (!t) return t.error();
        (flag == "--a" ? o.a : o.b) = *t;
      }
    } else {
      shaping.push_back(flag);
    }
  }
  if (o.a.ifname.empty() || o.b.ifname.empty()) return make_error(Errc::invalid_argument, "--a and --b are required");
  if (auto r = apply_shaping(shaping, o.a2b, o.b2a); !r) return r.error();
  return o;
}

}  // namespace rcp::wanem
