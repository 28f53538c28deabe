#include <catch2/catch.hpp>
#include <algorithm>
#include <iterator>
#include <torch/torch.h>

#include "core/error.h"
#include "data/dataset.h"
#include "core/files.h"
#include "test_support.h"

using namespace edmips;
using edmips::testing::TempDir;
using edmips::testing::idx_images;
using edmips::testing::idx_labels;
using edmips::testing::write_gzip;
using edmips::testing::write_mnist;

namespace {

DatasetConfig config_for(const TempDir& dir, const std::string& name = "mnist") {
  DatasetConfig c;
  c.name = name;
  c.path = dir.path().string();
  return c;
}

}  // namespace

TEST_CASE("IDX files load from gzip and raw files alike, normalised per channel", "[data]") {
  TempDir dir;
  write_mnist(dir);
  const auto d = load_dataset(config_for(dir));
  CHECK(d.train_images.sizes() == torch::IntArrayRef({20, 1, 6, 5}));
  CHECK(d.test_images.sizes() == torch::IntArrayRef({10, 1, 6, 5}));
  CHECK(d.train_labels[13].item<int64_t>() == 3);
  CHECK(d.train_images.mean().item<double>() == Approx(0.0).margin(1e-4));
  CHECK(d.train_images.std().item<double>() == Approx(1.0).epsilon(0.01));
  CHECK(d.input.channels == 1);
  CHECK(d.input.height == 6);
  CHECK(d.input.width == 5);
}

TEST_CASE("a missing dataset file is named in the error", "[data][errors]") {
  TempDir dir;
  write_mnist(dir);
  std::filesystem::remove(dir / "t10k-labels-idx1-ubyte");
  CHECK_THROWS_AS(load_dataset(config_for(dir)), DataError);
  CHECK_THROWS_WITH(load_dataset(config_for(dir)), Catch::Contains("t10k-labels-idx1-ubyte") &&
                                                       Catch::Contains("not found"));
}

TEST_CASE("a wrong magic number is reported with the file", "[data][errors]") {
  TempDir dir;
  write_mnist(dir);
  write_gzip(dir / "train-images-idx3-ubyte.gz", idx_images(20, 6, 5, 0x801));
  CHECK_THROWS_WITH(load_dataset(config_for(dir)),
                    Catch::Contains("train-images-idx3-ubyte.gz") && Catch::Contains("wrong magic number"));
}

TEST_CASE("a truncated IDX file is reported, not read past its end", "[data][errors]") {
  TempDir dir;
  write_mnist(dir);
  auto images = idx_images(10, 6, 5);
  images.resize(images.size() - 7);
  edmips::testing::write_file(dir / "t10k-images-idx3-ubyte", images);
  CHECK_THROWS_WITH(load_dataset(config_for(dir)),
                    Catch::Contains("t10k-images-idx3-ubyte") && Catch::Contains("truncated"));
}

TEST_CASE("image and label counts that disagree are reported", "[data][errors]") {
  TempDir dir;
  write_mnist(dir);
  write_gzip(dir / "train-labels-idx1-ubyte.gz", idx_labels(19));
  CHECK_THROWS_WITH(load_dataset(config_for(dir)), Catch::Contains("20 images but") && Catch::Contains("19 labels"));
}

TEST_CASE("CIFAR-10 binary batches load, and truncated or short batches are reported", "[data][errors]") {
  TempDir dir;
  auto batch = [](int n) {
    std::string s;
    s.reserve(size_t(n) * 3073);
    for (int i = 0; i < n; ++i) {
      s.push_back(char(i % 10));
      for (int k = 0; k < 3072; ++k) s.push_back(char((i + k) % 256));
    }
    return s;
  };
  const auto full = batch(10000);
  for (int i = 1; i <= 5; ++i) edmips::testing::write_file(dir / ("data_batch_" + std::to_string(i) + ".bin"), full);
  edmips::testing::write_file(dir / "test_batch.bin", full);
  auto c = config_for(dir, "cifar10");
  c.train_subset = 100;
  c.test_subset = 30;
  const auto d = load_dataset(c);
  CHECK(d.train_images.sizes() == torch::IntArrayRef({100, 3, 32, 32}));
  CHECK(d.test_labels.size(0) == 30);
  auto truncated = full;
  truncated.pop_back();
  edmips::testing::write_file(dir / "test_batch.bin", truncated);
  CHECK_THROWS_WITH(load_dataset(c), Catch::Contains("test_batch.bin") && Catch::Contains("truncated"));
  // Cut at a record boundary: 5000 whole records still make a valid-looking file.
  edmips::testing::write_file(dir / "test_batch.bin", full);
  edmips::testing::write_file(dir / "data_batch_3.bin", full.substr(0, 5000 * 3073));
  CHECK_THROWS_WITH(load_dataset(c), Catch::Contains("data_batch_3.bin") && Catch::Contains("holds 5000 images") &&
                                         Catch::Contains("10000"));
}

TEST_CASE("an IDX header promising more than a file can hold is a data error, not an allocation", "[data][errors]") {
  TempDir dir;
  write_mnist(dir);
  std::string header = {0, 0, 8, 3};
  for (uint32_t v : {4000000000u, 60000u, 60000u}) {
    for (int shift = 24; shift >= 0; shift -= 8) header.push_back(char((v >> shift) & 0xff));
  }
  edmips::testing::write_file(dir / "train-images-idx3-ubyte", header + std::string(100, '\0'));
  std::filesystem::remove(dir / "train-images-idx3-ubyte.gz");
  CHECK_THROWS_AS(load_dataset(config_for(dir)), DataError);
  CHECK_THROWS_WITH(load_dataset(config_for(dir)),
                    Catch::Contains("train-images-idx3-ubyte") && Catch::Contains("4000000000 x 60000 x 60000"));
}

TEST_CASE("an IDX file reshaped by its header, or longer than it promises, is a data error", "[data][errors][hardening]") {
  TempDir dir;
  write_mnist(dir, 20, 10);
  // The test images' header says 1x30 where the data is 6x5 (the same bytes).
  const auto reshaped = [](uint32_t count, uint32_t rows, uint32_t cols) {
    std::string header = {0, 0, 8, 3};
    for (uint32_t v : {count, rows, cols}) {
      for (int shift = 24; shift >= 0; shift -= 8) header.push_back(char((v >> shift) & 0xff));
    }
    return header;
  };
  const auto path = dir / "t10k-images-idx3-ubyte";
  const auto original = read_text_file(path);
  edmips::testing::write_file(path, reshaped(10, 1, 30) + original.substr(16));
  CHECK_THROWS_AS(load_dataset(config_for(dir)), DataError);
  CHECK_THROWS_WITH(load_dataset(config_for(dir)), Catch::Contains(path.string()) && Catch::Contains("1x30") &&
                                                       Catch::Contains("6x5"));
  edmips::testing::write_file(path, original + "x");
  CHECK_THROWS_WITH(load_dataset(config_for(dir)), Catch::Contains(path.string()) &&
                                                       Catch::Contains("more data than its header promises"));
  edmips::testing::write_file(path, original);
  CHECK_NOTHROW(load_dataset(config_for(dir)));
}

TEST_CASE("subsets larger than the dataset are refused, naming the setting and the count", "[data][hardening]") {
  TempDir dir;
  write_mnist(dir, 20, 10);
  auto c = config_for(dir);
  c.test_subset = 11;
  CHECK_THROWS_AS(load_dataset(c), ConfigError);
  CHECK_THROWS_WITH(load_dataset(c), Catch::Contains("dataset.test_subset") && Catch::Contains("has 10"));
  c.test_subset = 10;
  c.train_subset = 21;
  CHECK_THROWS_WITH(load_dataset(c), Catch::Contains("dataset.train_subset") && Catch::Contains("has 20"));
  c.train_subset = 20;
  CHECK(load_dataset(c).train_images.size(0) == 20);
}

TEST_CASE("the training subset is the same for the same subset seed and differs for another", "[data]") {
  TempDir dir;
  write_mnist(dir, 50, 10);
  auto c = config_for(dir);
  c.train_subset = 12;
  const auto a = load_dataset(c), b = load_dataset(c);
  CHECK(a.train_images.size(0) == 12);
  CHECK(torch::equal(a.train_labels, b.train_labels));
  CHECK(torch::equal(a.train_images, b.train_images));
  c.subset_seed = 7;
  const auto other = load_dataset(c);
  CHECK_FALSE(torch::equal(a.train_images, other.train_images));
}

TEST_CASE("epoch batches cover every sample once, reproducibly, and augmentation keeps shapes",
          "[data]") {
  const auto images = torch::arange(10 * 1 * 4 * 4, torch::kFloat).reshape({10, 1, 4, 4});
  const auto labels = torch::arange(10, torch::kLong);
  DatasetConfig aug;
  aug.crop_padding = 1;
  aug.horizontal_flip = true;
  EpochBatches first(images, labels, 4, aug, 42, true, true), second(images, labels, 4, aug, 42, true, true);
  REQUIRE(first.batch_count() == 3);
  std::vector<int64_t> seen;
  for (int64_t b = 0; b < first.batch_count(); ++b) {
    auto [x1, y1] = first.batch(b);
    auto [x2, y2] = second.batch(b);
    CHECK(torch::equal(x1, x2));
    CHECK(x1.sizes() == torch::IntArrayRef({y1.size(0), 1, 4, 4}));
    for (int64_t i = 0; i < y1.size(0); ++i) seen.push_back(y1[i].item<int64_t>());
  }
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("the real Fashion-MNIST files load: 60000 train and 10000 test images of 28x28", "[data][fashion]") {
  if (!edmips::testing::fashion_mnist_available()) EDMIPS_SKIP("Fashion-MNIST not installed (scripts/install-deps.sh installs it)");
  DatasetConfig c;
  c.path = FASHION_MNIST_DIR;
  const auto d = load_dataset(c);
  CHECK(d.train_images.sizes() == torch::IntArrayRef({60000, 1, 28, 28}));
  CHECK(d.test_images.size(0) == 10000);
  CHECK(d.train_labels.bincount().min().item<int64_t>() == 6000);
}

TEST_CASE("a validation split is held back from the training images, seeded, disjoint and the same every time",
          "[data][validation]") {
  TempDir dir;
  write_mnist(dir, 200, 10);  // each image's first pixel differs from every other's
  auto config = config_for(dir);
  auto first_pixels = [](const torch::Tensor& images) {
    std::vector<float> out;
    const auto flat = images.flatten(1).select(1, 0).contiguous();
    out.assign(flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel());
    std::sort(out.begin(), out.end());
    return out;
  };
  const auto all = load_dataset(config);
  CHECK(all.validation_size() == 0);

  config.validation_subset = 50;
  const auto d = load_dataset(config);
  CHECK(d.validation_size() == 50);
  CHECK(d.train_size() == 150);
  auto train = first_pixels(d.train_images), validation = first_pixels(d.validation_images);
  std::vector<float> common;
  std::set_intersection(train.begin(), train.end(), validation.begin(), validation.end(), std::back_inserter(common));
  CHECK(common.empty());
  CHECK(std::adjacent_find(train.begin(), train.end()) == train.end());
  CHECK(torch::equal(load_dataset(config).validation_images, d.validation_images));  // seeded: the same again
  CHECK(d.validation_view().test_size() == 50);

  // A training subset comes from what validation leaves.
  config.train_subset = 100;
  const auto both = load_dataset(config);
  CHECK(both.train_size() == 100);
  // The same images (normalised by the smaller training set's statistics).
  CHECK(torch::equal(both.validation_labels, d.validation_labels));
  CHECK(torch::equal(both.validation_images.argsort(int64_t(0), false), d.validation_images.argsort(int64_t(0), false)));

  // A fraction, and a split that leaves nothing to train on.
  config.train_subset = 0;
  config.validation_subset = 0;
  config.validation_fraction = 0.1;
  CHECK(load_dataset(config).validation_size() == 20);
  config.validation_fraction = 0;
  config.validation_subset = 200;
  CHECK_THROWS_WITH(load_dataset(config), Catch::Contains("validation_subset") && Catch::Contains("none of the 200"));
}
