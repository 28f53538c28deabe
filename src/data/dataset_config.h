// data: which dataset a trial uses and how, without LibTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edmips {

/// Dataset formats this project reads (defined in data/file_formats.cpp).
const std::vector<std::string>& dataset_names();  // fashion-mnist, mnist, cifar10, image-folder

struct DatasetConfig {
  std::string name = "fashion-mnist";
  std::string path = "/usr/share/datasets/fashion-mnist";  ///< directory holding the files
  int64_t train_subset = 0;   ///< 0 = all training images; else a seeded random subset
  int64_t test_subset = 0;    ///< 0 = all test images; else the first N
  uint64_t subset_seed = 0;   ///< seed of the training subset (independent of the trial seed)
  /// Images held back from the training set for validation (seeded by
  /// subset_seed, disjoint from the training images): a count, or a fraction
  /// of the training set; 0 = none. The pareto report chooses fronts and
  /// recommendations on validation when every trial has it.
  int64_t validation_subset = 0;
  double validation_fraction = 0;
  int crop_padding = 0;       ///< random crop after zero-padding by this many pixels (0 = off)
  bool horizontal_flip = false;
  // image-folder only (data/image_folder.h):
  int image_size = 224;       ///< network input: random-resized crops (training), centre crops (evaluation)
  int64_t classes = 0;        ///< 0 = every class folder; else the first N (sorted names)
  bool skip_corrupt = false;  ///< count and replace unreadable images instead of stopping with exit 3
  int loader_threads = 0;     ///< decode threads; 0 = the trial's threads (not part of the trial ID)
};

}  // namespace edmips
