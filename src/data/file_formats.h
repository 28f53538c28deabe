// data: the checks on dataset file headers and sizes, apart from the tensors
// (no LibTorch), so they can be tested and fuzzed on their own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace edmips {

/// Dataset formats this project reads.
const std::vector<std::string>& dataset_names();  // fashion-mnist, mnist, cifar10

/// An IDX file's header: its dimensions and the number of data bytes.
struct IdxHeader {
  std::vector<int64_t> dims;
  int64_t bytes = 0;
};
/// Bytes an IDX header of `dimensions` dimensions takes.
inline size_t idx_header_size(int dimensions) { return 4 + 4 * size_t(dimensions); }
/// Parses the header of an IDX file of unsigned bytes with `dimensions`
/// dimensions (DataError naming `source`: wrong magic, no data, over 4 GiB).
IdxHeader parse_idx_header(const unsigned char* header, size_t size, int dimensions, const std::string& source);

/// Bytes of one CIFAR-10 binary record: a label and a 3x32x32 image.
constexpr int64_t kCifarRecordBytes = 1 + 3 * 32 * 32;
/// Images a CIFAR-10 batch file of `file_bytes` holds: every batch holds
/// 10000 (DataError naming `source` otherwise).
int64_t cifar_batch_images(uint64_t file_bytes, const std::string& source);

}  // namespace edmips
