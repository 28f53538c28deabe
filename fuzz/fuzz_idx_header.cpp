// libFuzzer harness: the first bytes of an IDX file (images or labels) and a
// CIFAR-10 batch's size through their header checks. Only DataError may escape.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "data/file_formats.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (int dimensions : {1, 3}) {
    try {
      const auto header = edmips::parse_idx_header(data, size, dimensions, "fuzz.idx");
      if (header.bytes <= 0 || header.dims.size() != size_t(dimensions)) __builtin_trap();
    } catch (const edmips::DataError&) {
    }
  }
  if (size >= 8) {
    uint64_t bytes = 0;
    std::memcpy(&bytes, data, sizeof bytes);
    try {
      if (edmips::cifar_batch_images(bytes, "fuzz.bin") != 10000) __builtin_trap();
    } catch (const edmips::DataError&) {
    }
  }
  return 0;
}
