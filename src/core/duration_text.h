// core: human-readable durations for progress lines. Standard library only.
#pragma once

#include <string>

namespace edmips {

/// One format for every duration and ETA: "4.2s" below ten seconds, then
/// "42s", "1m53s", "2h05m" (whole units, the largest two); "?" when unknown.
std::string format_duration(double seconds);

}  // namespace edmips
