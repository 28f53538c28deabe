// libFuzzer harness: a trial config's text through parse_json_text,
// parse_trial_config and back through to_json and trial_id.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/json_reader.h"
#include "trial/trial_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto config = edmips::parse_trial_config(
        edmips::parse_json_text(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json"), "fuzz.json");
    (void)edmips::trial_id(config);
  } catch (const edmips::ConfigError&) {
  }
  return 0;
}
