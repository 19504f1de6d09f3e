#include "quic/quic_config.h"

namespace rcp {

Result<CongestionControl> parse_congestion_control(std::string_view name) {
  if (name == "cubic") return CongestionControl::cubic;
  if (name == "bbr") return CongestionControl::bbr;
  if (name == "reno") return CongestionControl::reno;
  return make_error(Errc::invalid_argument,
                    "unknown congestion control '" + std::string(name) + "' (choose cubic, bbr or reno)");
}

const char* congestion_control_name(CongestionControl cc) {
  switch (cc) {
    case CongestionControl::cubic: return "cubic";
    case CongestionControl::bbr: return "bbr";
    case CongestionControl::reno: return "reno";
  }
  return "?";
}

}  // namespace rcp
