// bench: the image-folder data path's speed. Decoded + augmented images per
// second with 1 thread and with every core, side by side with torchvision's
// ImageFolder + DataLoader on the same files (Debian's python3-torchvision,
// an anchor only), and the share of a search step (ResNet-18 by default)
// spent waiting for data when the loader feeds the trainer on the same cores.
#pragma once

#include <iosfwd>
#include <string>

namespace edmips {

struct DataBenchmarkOptions {
  std::string folder;       ///< an image folder (train/ is read)
  bool generate = false;    ///< write a synthetic ImageNet-like folder there first when it has no train/
  int generate_images = 1000;  ///< images of the generated train/ (10 classes, 500x375, quality 90)
  int images = 512;         ///< images decoded per measurement
  int batch = 64;
  int size = 224;
  int threads = 0;          ///< "all cores": 0 = the machine's
  bool torchvision = true;  ///< also run the torchvision anchor (skipped with a note when it is missing)
  std::string step_model = "resnet18";  ///< "" = no step measurement
  int step_batch = 32;
  int steps = 6;
};

/// Runs the benchmark and prints its table; returns 0.
int run_data_benchmark(std::ostream& out, const DataBenchmarkOptions& options);

}  // namespace edmips
