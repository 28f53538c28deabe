// libFuzzer harness: bytes as an ONNX model file through the reader
// (protobuf parse, ONNX's checker, conversion to typed nodes and tensors).
// Only ConfigError (exit 2) may escape: never a crash, a hang or another error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "onnx/onnx_graph.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto graph = edmips::onnx::parse_graph(std::string(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
    for (const auto& [name, tensor] : graph.initializers) {
      int64_t count = 1;
      for (auto d : tensor.dims) count *= d;
      if (count != tensor.element_count()) __builtin_trap();  // the reader promised this
    }
  } catch (const edmips::ConfigError&) {
  }
  return 0;
}
