#include "core/number_text.h"

#include <cstdio>

namespace edmips {

std::string format_number(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

std::string short_number(double value) { return format_number("%.4g", value); }

}  // namespace edmips
