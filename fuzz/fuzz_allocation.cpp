// libFuzzer harness: an allocation.json's text through bit_allocation_from_json.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/json_reader.h"
#include "nn/precision.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto allocation = edmips::bit_allocation_from_json(
        edmips::parse_json_text(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json"), "fuzz.json");
    (void)edmips::to_json(allocation).dump();
  } catch (const edmips::ConfigError&) {
  }
  return 0;
}
