#include "data/file_formats.h"

#include <cstdio>

#include "core/error.h"

namespace edmips {

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"fashion-mnist", "mnist", "cifar10", "image-folder"};
  return names;
}

namespace {
uint32_t big_endian(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
}  // namespace

IdxHeader parse_idx_header(const unsigned char* header, size_t size, int dimensions, const std::string& source) {
  if (size < idx_header_size(dimensions)) throw DataError(source + ": truncated IDX header");
  const uint32_t magic = big_endian(header);
  const uint32_t expected_magic = 0x800u + uint32_t(dimensions);
  if (magic != expected_magic) {
    char buffer[128];
    std::snprintf(buffer, sizeof buffer, ": wrong magic number 0x%08x (expected 0x%08x, an IDX %s file)", magic,
                  expected_magic, dimensions == 1 ? "label" : "image");
    throw DataError(source + buffer);
  }
  IdxHeader h;
  h.bytes = 1;
  // A damaged or hostile header must not make us allocate what it promises.
  constexpr int64_t kMaxIdxBytes = int64_t(1) << 32;
  for (int i = 0; i < dimensions; ++i) {
    h.dims.push_back(big_endian(header + 4 + 4 * i));
    if (h.dims.back() == 0 || h.bytes > kMaxIdxBytes / h.dims.back()) {
      std::string shape;
      for (int k = 0; k < dimensions; ++k) shape += (k ? " x " : "") + std::to_string(big_endian(header + 4 + 4 * k));
      throw DataError(source + ": IDX header promises " + shape + " values, " +
                      (h.dims.back() == 0 ? std::string("an empty dataset")
                                          : "more than the 4 GiB an IDX file may hold"));
    }
    h.bytes *= h.dims.back();
  }
  return h;
}

int64_t cifar_batch_images(uint64_t file_bytes, const std::string& source) {
  constexpr int64_t kImagesPerBatch = 10000;
  if (file_bytes == 0 || file_bytes % uint64_t(kCifarRecordBytes) != 0) {
    throw DataError(source + ": truncated or not a CIFAR-10 binary batch (" + std::to_string(file_bytes) +
                    " bytes is not a multiple of " + std::to_string(kCifarRecordBytes) + ")");
  }
  // Every CIFAR-10 batch file holds 10000 images: one cut at a record
  // boundary would otherwise train on a silently smaller set.
  const int64_t n = int64_t(file_bytes / uint64_t(kCifarRecordBytes));
  if (n != kImagesPerBatch) {
    throw DataError(source + ": holds " + std::to_string(n) + " images; every CIFAR-10 batch file holds " +
                    std::to_string(kImagesPerBatch) + " (" + std::to_string(kImagesPerBatch * kCifarRecordBytes) +
                    " bytes): truncated or not CIFAR-10");
  }
  return n;
}

}  // namespace edmips
