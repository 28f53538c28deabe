// data: writes synthetic image folders (the ImageFolder layout) for tests,
// the data benchmark and the small example sweep: photo-like JPEGs (smooth
// colour fields, edges and noise, so they compress like photographs) whose
// colour and stripe direction depend on the class, so a network can learn
// them. Also the odd files a real folder has: greyscale and CMYK JPEGs, PNGs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace edmips {

struct SyntheticFolderOptions {
  int classes = 4;
  int train_per_class = 8;
  int val_per_class = 2;
  int width = 500, height = 375;  ///< ImageNet's typical size
  int quality = 90;
  bool vary_sizes = false;        ///< sizes from 0.5x to 1.5x, some portrait
  bool odd_formats = false;       ///< in each class: one greyscale JPEG, one CMYK JPEG, one PNG
  uint64_t seed = 1;
};

/// Writes root/train/class_NN/*.jpg and root/val/... (creating them).
void write_synthetic_folder(const std::filesystem::path& root, const SyntheticFolderOptions& options);

enum class SyntheticFormat { rgb_jpeg, grey_jpeg, cmyk_jpeg, png };

/// One synthetic image of `label`, encoded.
std::vector<uint8_t> synthetic_image(int width, int height, int label, uint64_t seed, SyntheticFormat format,
                                     int quality);

}  // namespace edmips
