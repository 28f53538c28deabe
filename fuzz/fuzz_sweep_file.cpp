// libFuzzer harness: a sweep file's text through parse_json_text and
// parse_sweep, as `edmips validate` reads it. Only ConfigError may escape.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/json_reader.h"
#include "sweep/sweep_definition.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto sweep = edmips::parse_sweep(edmips::parse_json_text(std::string(reinterpret_cast<const char*>(data), size),
                                                                   "fuzz.json"),
                                           "fuzz.json");
    (void)sweep.trials.size();
  } catch (const edmips::ConfigError&) {
  }
  return 0;
}
