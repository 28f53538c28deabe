#include "core/duration_text.h"

#include <cmath>
#include <cstdio>

namespace edmips {

std::string format_duration(double s) {
  char buffer[48];
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 10) {
    std::snprintf(buffer, sizeof buffer, "%.1fs", s);
    return buffer;
  }
  const long long total = std::llround(s);
  const long long h = total / 3600, m = total % 3600 / 60, sec = total % 60;
  if (h > 0) std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", h, m);
  else if (m > 0) std::snprintf(buffer, sizeof buffer, "%lldm%02llds", m, sec);
  else std::snprintf(buffer, sizeof buffer, "%llds", sec);
  return buffer;
}

}  // namespace edmips
