// data: image classification datasets held in memory as tensors, their
// loaders (IDX for MNIST/Fashion-MNIST, CIFAR-10 binary batches) and batch
// assembly with optional augmentation. Depends on LibTorch and models/ for
// ModelInput.
#pragma once

#include <torch/types.h>

#include <random>
#include <string>

#include "data/dataset_config.h"
#include "models/network.h"

namespace edmips {

/// A loaded, normalised dataset.
struct Dataset {
  std::string name;
  torch::Tensor train_images;  ///< float [N, C, H, W], normalised per channel
  torch::Tensor train_labels;  ///< int64 [N]
  torch::Tensor test_images;
  torch::Tensor test_labels;
  ModelInput input;
};

/// Loads and normalises the dataset described by `config` (DataError on any
/// missing, truncated or malformed file, naming it).
Dataset load_dataset(const DatasetConfig& config);

/// Reads an IDX file (gzip or raw): images as uint8 [N, rows, cols], labels as uint8 [N].
torch::Tensor read_idx_file(const std::string& path, int expected_dimensions);

/// Yields the batches of one epoch in a seeded shuffled order, with the
/// configured augmentation. Deterministic in `seed`, and each batch
/// independently so (a resumed epoch starting mid-way gets the same batches).
class EpochBatches {
 public:
  EpochBatches(const torch::Tensor& images, const torch::Tensor& labels, int64_t batch_size,
               const DatasetConfig& augmentation, uint64_t seed, bool shuffle, bool augment);
  int64_t batch_count() const { return (order_.size(0) + batch_size_ - 1) / batch_size_; }
  /// The images and labels of batch `index` (0-based, in order).
  std::pair<torch::Tensor, torch::Tensor> batch(int64_t index);

 private:
  torch::Tensor images_, labels_, order_;
  int64_t batch_size_;
  DatasetConfig augmentation_;
  bool augment_;
  uint64_t seed_;
};

}  // namespace edmips
