// data: ImageNet-style image folders (root/train/<class>/*.jpg, root/val/...,
// the torchvision ImageFolder layout), read as a stream: the file list (cached
// between runs), decoding (JPEG through libjpeg-turbo with DCT scaling, PNG
// through libpng), the standard augmentation and a pool of decode threads
// that fills a bounded queue of ready batches. No image is held longer than
// its batch. Depends on LibTorch for the batch tensors only.
#pragma once

#include <torch/types.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "data/dataset_config.h"

namespace edmips {

/// One image of a folder dataset.
struct FolderSample {
  std::string path;  ///< relative to the split's folder
  int64_t label = 0;
};

/// The file list of a folder dataset: classes are train/'s sorted folder
/// names (the first `classes` of them when limited), labels their indices.
struct FolderIndex {
  std::filesystem::path root;
  std::vector<std::string> classes;
  std::vector<FolderSample> train, val;
};

/// Scans (or reads from the cache in `cache_dir`, when the folders'
/// modification times still match) the file list of `root`. DataError (exit
/// 3) naming the folder when train/ or val/ is missing or empty, or a class
/// folder holds no image; val/ may hold only classes train/ has.
FolderIndex scan_image_folder(const std::filesystem::path& root, int64_t class_limit,
                              const std::filesystem::path& cache_dir);

/// Where the file lists are cached: $EDMIPS_CACHE_DIR, else
/// $XDG_CACHE_HOME/edmips, else ~/.cache/edmips.
std::filesystem::path default_cache_dir();

/// A decoded image, 8-bit RGB, rows of width x 3 bytes.
struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
};

/// A region of an image in its own pixel coordinates.
struct CropBox {
  double x = 0, y = 0, width = 0, height = 0;
};

/// torchvision's RandomResizedCrop box: area 8%-100%, aspect 3/4-4/3 (log
/// uniform), ten tries, then the centre crop of the clamped aspect.
CropBox random_resized_crop(int width, int height, std::mt19937_64& rng);
/// Evaluation: the shorter side resized to size x 256/224, then the centre
/// size x size; as a box of the original image (a centred square of side
/// min(width, height) x 224/256, whatever the size).
CropBox centre_crop(int width, int height);

/// Decodes a JPEG (greyscale, RGB, CMYK or YCCK) or PNG held in `bytes`
/// (`name` in errors). For a JPEG, the largest DCT scaling (1/8 .. 1) is used
/// that keeps `box` at least `size` pixels wide and high, and `box` is scaled
/// to the decoded image. DataError when the file is not a readable image.
RgbImage decode_image(const std::vector<uint8_t>& bytes, const std::string& name, CropBox& box, int size);

/// Reads the header only: width and height (DataError when unreadable).
std::pair<int, int> image_dimensions(const std::vector<uint8_t>& bytes, const std::string& name);

/// Bilinear resampling of `box` of `image` to size x size, optionally
/// mirrored, normalised with the ImageNet mean and std, into `out` (CHW float).
void crop_resize_normalise(const RgbImage& image, const CropBox& box, int size, bool flip, float* out);

/// A folder dataset as a trial uses it: the index, the transform settings,
/// and the corrupt images seen (when they are skipped).
class FolderData {
 public:
  FolderData(FolderIndex index, const DatasetConfig& config);
  const FolderIndex& index() const { return index_; }
  int image_size() const { return size_; }
  int64_t size(bool train) const { return int64_t(train ? index_.train.size() : index_.val.size()); }
  int64_t label(bool train, int64_t i) const { return (train ? index_.train : index_.val)[size_t(i)].label; }

  /// Writes sample `i` (training: random crop and flip from (seed, epoch, i);
  /// evaluation: centre crop) into `out`; returns its label. A corrupt image
  /// is a DataError naming it, or, with skip_corrupt, is counted and replaced
  /// by the next image of the split that decodes.
  int64_t load(bool train, int64_t i, uint64_t seed, int epoch, bool augment, float* out) const;
  /// Corrupt images skipped so far (distinct files).
  std::vector<std::string> skipped() const;

 private:
  bool load_one(bool train, int64_t i, uint64_t seed, int epoch, bool augment, float* out) const;
  FolderIndex index_;
  int size_;
  bool skip_corrupt_;
  mutable std::mutex mutex_;
  mutable std::set<std::string> skipped_;
};

/// The batches of one epoch of a folder dataset, decoded ahead by `threads`
/// threads into a queue of at most `depth` ready batches. Batch i holds the
/// samples order[i*B .. (i+1)*B); each sample's crop and flip depend only on
/// (seed, epoch, its index), so results do not depend on thread timing and a
/// resumed epoch is identical.
class FolderBatches {
 public:
  FolderBatches(const FolderData& data, bool train, std::vector<int64_t> order, int64_t batch_size, uint64_t seed,
                int epoch, bool augment, int threads, int64_t first_batch, bool pinned, int depth = 0);
  ~FolderBatches();
  FolderBatches(const FolderBatches&) = delete;
  FolderBatches& operator=(const FolderBatches&) = delete;

  int64_t batch_count() const;
  /// Batch `index` (images [B, 3, size, size], labels [B]); batches must be
  /// asked for in order from `first_batch`. Rethrows a decode error.
  std::pair<torch::Tensor, torch::Tensor> batch(int64_t index);
  /// Seconds batch() spent waiting for the decoders so far.
  double waited_s() const { return waited_s_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  double waited_s_ = 0;
};

}  // namespace edmips
