// data: image classification datasets held in memory as tensors, their
// loaders (IDX for MNIST/Fashion-MNIST, CIFAR-10 binary batches) and batch
// assembly with optional augmentation. Depends on LibTorch and models/ for
// ModelInput.
#pragma once

#include <torch/types.h>

#include <random>
#include <string>
#include <vector>

#include <memory>
#include <optional>

#include "data/dataset_config.h"
#include "data/image_folder.h"
#include "models/network.h"

namespace edmips {

/// A loaded, normalised dataset: in memory (IDX, CIFAR-10), or an image
/// folder streamed from disk (only its file list is held).
struct Dataset {
  std::string name;
  torch::Tensor train_images;  ///< float [N, C, H, W], normalised per channel (in-memory datasets)
  torch::Tensor train_labels;  ///< int64 [N]
  torch::Tensor test_images;
  torch::Tensor test_labels;
  torch::Tensor validation_images;  ///< held back from training (dataset.validation_subset); undefined without
  torch::Tensor validation_labels;
  std::shared_ptr<FolderData> folder;  ///< image-folder datasets
  ModelInput input;
  /// What a deployed network must do to its input, per channel: (x / 255 - mean) / std.
  std::vector<double> channel_mean, channel_std;

  int64_t train_size() const { return folder ? folder->size(true) : train_images.size(0); }
  int64_t test_size() const { return folder ? folder->size(false) : test_images.size(0); }
  int64_t validation_size() const { return validation_images.defined() ? validation_images.size(0) : 0; }
  /// The same data with the validation images as its test split (for evaluating on them).
  Dataset validation_view() const;
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

/// The batches of one epoch of either kind of dataset. In memory: as
/// EpochBatches. A folder: decoded ahead by `threads` threads (pinned host
/// memory when `pinned`), the order shuffled from `seed`, each sample's crop
/// and flip from (seed, its index). Batches are asked for in order from
/// `first_batch`.
class BatchStream {
 public:
  BatchStream(const Dataset& data, bool train, int64_t batch_size, const DatasetConfig& config, uint64_t seed,
              bool shuffle, bool augment, int64_t first_batch, int threads, bool pinned);
  int64_t batch_count() const;
  std::pair<torch::Tensor, torch::Tensor> batch(int64_t index);
  /// Seconds spent waiting for decoded batches (0 for in-memory data).
  double waited_s() const { return folder_ ? folder_->waited_s() : 0.0; }

 private:
  std::optional<EpochBatches> memory_;
  std::unique_ptr<FolderBatches> folder_;
};

}  // namespace edmips
