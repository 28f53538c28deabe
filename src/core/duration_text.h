// core: human-readable durations for progress lines. Standard library only.
#pragma once

#include <string>

namespace edmips {

/// "12.3s" below two minutes, "4.5m" below two hours, else "3.2h".
std::string format_duration(double seconds);

}  // namespace edmips
