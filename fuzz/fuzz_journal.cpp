// libFuzzer harness: journal text (JSON lines) through the replay that every
// sweep start and `edmips pareto` run. Only IoError (a corrupt line) may escape.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "sweep/journal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto state =
        edmips::parse_journal_text(std::string(reinterpret_cast<const char*>(data), size), "fuzz.jsonl");
    for (const auto& [id, event] : state.finished) {
      if (event.contains("result")) (void)edmips::result_row(event);
    }
  } catch (const edmips::IoError&) {
  }
  return 0;
}
