#include "core/duration_text.h"

#include <cstdio>

namespace edmips {

std::string format_duration(double s) {
  char buffer[32];
  if (s < 120) std::snprintf(buffer, sizeof buffer, "%.1fs", s);
  else if (s < 7200) std::snprintf(buffer, sizeof buffer, "%.1fm", s / 60);
  else std::snprintf(buffer, sizeof buffer, "%.1fh", s / 3600);
  return buffer;
}

}  // namespace edmips
