#include <catch2/catch.hpp>
#include <cmath>

#include "core/duration_text.h"

using edmips::format_duration;

TEST_CASE("every duration and ETA reads in one format, whatever its size", "[core][duration]") {
  CHECK(format_duration(4.24) == "4.2s");
  CHECK(format_duration(42) == "42s");
  // 113 s and 168 s used to read "113.0s" and "2.8m" in one status line.
  CHECK(format_duration(113) == "1m53s");
  CHECK(format_duration(168) == "2m48s");
  CHECK(format_duration(3600 * 2 + 5 * 60 + 9) == "2h05m");
  CHECK(format_duration(-1) == "?");
  CHECK(format_duration(std::nan("")) == "?");
}
