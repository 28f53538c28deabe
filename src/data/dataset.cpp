#include "data/dataset.h"

#include "data/file_formats.h"

#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <memory>
#include <torch/torch.h>

#include "core/error.h"
#include "core/files.h"

namespace edmips {
namespace fs = std::filesystem;

namespace {

/// A gzip or plain file opened through zlib (which reads both).
class ZFile {
 public:
  explicit ZFile(const std::string& path) : path_(path) {
    int fd = -1;
    try {
      fd = open_regular_file(path);  // a FIFO or a device is refused, never waited on
    } catch (const Error& e) {
      throw DataError(e.what());
    }
    file_ = gzdopen(fd, "rb");
    if (!file_) {
      ::close(fd);
      throw DataError(path + ": cannot open (" + std::strerror(errno) + ")");
    }
  }
  ~ZFile() { gzclose(file_); }
  ZFile(const ZFile&) = delete;
  ZFile& operator=(const ZFile&) = delete;
  /// Reads up to `size` bytes; returns how many were read.
  size_t read(void* buffer, size_t size) {
    size_t total = 0;
    while (total < size) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(size - total, 1u << 30));
      const int n = gzread(file_, static_cast<char*>(buffer) + total, chunk);
      if (n < 0) {
        int code = 0;
        throw DataError(path_ + ": corrupt file (" + gzerror(file_, &code) + ")");
      }
      if (n == 0) break;
      total += static_cast<size_t>(n);
    }
    return total;
  }

 private:
  std::string path_;
  gzFile file_;
};

std::string find_file(const fs::path& dir, const std::string& stem) {
  for (const auto& candidate : {dir / (stem + ".gz"), dir / stem}) {
    if (fs::exists(candidate)) return candidate.string();
  }
  throw DataError((dir / (stem + ".gz")).string() + ": file not found (nor " + (dir / stem).string() + ")");
}

torch::Tensor read_cifar_batches(const std::vector<std::string>& paths, torch::Tensor& labels_out) {
  constexpr int64_t record = kCifarRecordBytes;
  std::vector<torch::Tensor> images, labels;
  for (const auto& path : paths) {
    ZFile file(path);
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec) throw DataError(path + ": file not found");
    const int64_t n = cifar_batch_images(size, path);
    auto raw = torch::empty({n, record}, torch::kUInt8);
    if (file.read(raw.data_ptr<uint8_t>(), size_t(raw.numel())) != size_t(raw.numel())) {
      throw DataError(path + ": truncated file");
    }
    auto batch_labels = raw.select(1, 0).to(torch::kLong);
    if (batch_labels.max().item<int64_t>() > 9) throw DataError(path + ": label outside 0..9");
    labels.push_back(batch_labels);
    images.push_back(raw.narrow(1, 1, record - 1).reshape({n, 3, 32, 32}));
  }
  labels_out = torch::cat(labels);
  return torch::cat(images);
}

void normalise(Dataset& d) {
  // Per-channel statistics of the training images, applied to both splits.
  const auto mean = d.train_images.mean({0, 2, 3}, true);
  const auto std = d.train_images.std({0, 2, 3}, true, true).clamp_min(1e-6);
  d.train_images = ((d.train_images - mean) / std).contiguous();
  d.test_images = ((d.test_images - mean) / std).contiguous();
  if (d.validation_images.defined()) d.validation_images = ((d.validation_images - mean) / std).contiguous();
  const auto m = mean.flatten().to(torch::kDouble).contiguous(), s = std.flatten().to(torch::kDouble).contiguous();
  d.channel_mean.assign(m.data_ptr<double>(), m.data_ptr<double>() + m.numel());
  d.channel_std.assign(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
}

}  // namespace

Dataset Dataset::validation_view() const {
  Dataset v = *this;
  v.test_images = validation_images;
  v.test_labels = validation_labels;
  return v;
}

torch::Tensor read_idx_file(const std::string& path, int expected_dimensions) {
  ZFile file(path);
  unsigned char header[16];
  const size_t header_size = idx_header_size(expected_dimensions);
  const size_t got_header = file.read(header, header_size);
  const auto parsed = parse_idx_header(header, got_header, expected_dimensions, path);
  const auto& dims = parsed.dims;
  const int64_t total = parsed.bytes;
  auto data = torch::empty(dims, torch::kUInt8);
  const size_t got = file.read(data.data_ptr<uint8_t>(), size_t(total));
  if (got != size_t(total)) {
    throw DataError(path + ": truncated: header promises " + std::to_string(total) + " bytes of data, file has " +
                    std::to_string(got));
  }
  unsigned char extra = 0;
  if (file.read(&extra, 1) != 0) {
    throw DataError(path + ": more data than its header promises (" + std::to_string(total) +
                    " bytes): a damaged or concatenated file");
  }
  return data;
}

Dataset load_dataset(const DatasetConfig& config) {
  Dataset d;
  d.name = config.name;
  const fs::path dir = config.path;
  if (!fs::is_directory(dir)) throw DataError(config.path + ": dataset directory not found");
  if (config.name == "mnist" || config.name == "fashion-mnist") {
    auto load_split = [&](const std::string& prefix, torch::Tensor& images, torch::Tensor& labels) {
      const auto image_path = find_file(dir, prefix + "-images-idx3-ubyte");
      const auto label_path = find_file(dir, prefix + "-labels-idx1-ubyte");
      images = read_idx_file(image_path, 3).unsqueeze(1);
      labels = read_idx_file(label_path, 1).to(torch::kLong);
      if (images.size(0) != labels.size(0)) {
        throw DataError(image_path + ": has " + std::to_string(images.size(0)) + " images but " + label_path +
                        " has " + std::to_string(labels.size(0)) + " labels");
      }
      if (labels.numel() > 0 && labels.max().item<int64_t>() > 9) throw DataError(label_path + ": label outside 0..9");
    };
    load_split("train", d.train_images, d.train_labels);
    load_split("t10k", d.test_images, d.test_labels);
    // A header that reshapes the same bytes (28x28 as 1x784) would train and
    // test on scrambled pixels without a word: both splits must agree.
    if (d.train_images.sizes().slice(1) != d.test_images.sizes().slice(1)) {
      const auto dims = [](const torch::Tensor& t) { return std::to_string(t.size(2)) + "x" + std::to_string(t.size(3)); };
      throw DataError(find_file(dir, "t10k-images-idx3-ubyte") + ": " + dims(d.test_images) + " images, but " +
                      find_file(dir, "train-images-idx3-ubyte") + " holds " + dims(d.train_images) +
                      " ones: a damaged header");
    }
    d.input.classes = 10;
  } else if (config.name == "cifar10") {
    const fs::path base = fs::exists(dir / "cifar-10-batches-bin") ? dir / "cifar-10-batches-bin" : dir;
    std::vector<std::string> train_paths;
    for (int i = 1; i <= 5; ++i) train_paths.push_back((base / ("data_batch_" + std::to_string(i) + ".bin")).string());
    d.train_images = read_cifar_batches(train_paths, d.train_labels);
    d.test_images = read_cifar_batches({(base / "test_batch.bin").string()}, d.test_labels);
    d.input.classes = 10;
  } else if (config.name == "image-folder") {
    d.folder = std::make_shared<FolderData>(scan_image_folder(dir, config.classes, default_cache_dir()), config);
    d.input = {3, config.image_size, config.image_size, int64_t(d.folder->index().classes.size())};
    d.channel_mean = {0.485, 0.456, 0.406};  // ImageNet's, as image_folder.cpp applies them
    d.channel_std = {0.229, 0.224, 0.225};
    return d;
  } else {
    throw ConfigError("unknown dataset \"" + config.name + "\"");
  }
  if (d.train_images.size(0) == 0 || d.test_images.size(0) == 0) {
    throw DataError(config.path + ": dataset has no images");
  }
  const int64_t total = d.train_images.size(0);
  const int64_t validation = config.validation_subset > 0 ? config.validation_subset
                                                          : int64_t(std::llround(config.validation_fraction * double(total)));
  if (validation >= total) {
    throw ConfigError("dataset.validation_subset: " + std::to_string(validation) + " validation images leave none of the " +
                      std::to_string(total) + " training images of " + config.path + " to train on");
  }
  if (validation > 0 || (config.train_subset > 0 && config.train_subset < total)) {
    // One seeded permutation, the same on every machine (our own generator,
    // not torch's): the validation images first, the training subset from
    // the rest. Without validation this is the training subset as before.
    std::vector<int64_t> order(static_cast<size_t>(total));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(config.subset_seed);
    std::shuffle(order.begin(), order.end(), rng);
    auto take = [&](size_t from, size_t count, torch::Tensor& images, torch::Tensor& labels) {
      std::vector<int64_t> part(order.begin() + std::ptrdiff_t(from), order.begin() + std::ptrdiff_t(from + count));
      std::sort(part.begin(), part.end());
      const auto index = torch::tensor(part, torch::kLong);
      images = d.train_images.index_select(0, index);
      labels = d.train_labels.index_select(0, index);
    };
    const size_t held = size_t(validation);
    size_t train = size_t(total) - held;
    if (config.train_subset > 0 && size_t(config.train_subset) < train) train = size_t(config.train_subset);
    torch::Tensor train_images, train_labels;
    if (held > 0) take(0, held, d.validation_images, d.validation_labels);
    take(held, train, train_images, train_labels);
    d.train_images = train_images;
    d.train_labels = train_labels;
  }
  const int64_t trainable = total - validation;
  if (config.train_subset > trainable) {
    throw ConfigError("dataset.train_subset: " + std::to_string(config.train_subset) + " training images asked for, but " +
                      config.path + " has " + std::to_string(trainable) +
                      (validation > 0 ? " besides the validation images" : "") + " (0 takes them all)");
  }
  if (config.test_subset > d.test_images.size(0)) {
    throw ConfigError("dataset.test_subset: " + std::to_string(config.test_subset) + " test images asked for, but " +
                      config.path + " has " + std::to_string(d.test_images.size(0)) + " (0 takes them all)");
  }
  if (config.test_subset > 0 && config.test_subset < d.test_images.size(0)) {
    d.test_images = d.test_images.narrow(0, 0, config.test_subset);
    d.test_labels = d.test_labels.narrow(0, 0, config.test_subset);
  }
  d.train_images = d.train_images.to(torch::kFloat).div_(255.0);
  d.test_images = d.test_images.to(torch::kFloat).div_(255.0);
  if (d.validation_images.defined()) d.validation_images = d.validation_images.to(torch::kFloat).div_(255.0);
  normalise(d);
  d.input.channels = d.train_images.size(1);
  d.input.height = d.train_images.size(2);
  d.input.width = d.train_images.size(3);
  return d;
}

EpochBatches::EpochBatches(const torch::Tensor& images, const torch::Tensor& labels, int64_t batch_size,
                           const DatasetConfig& augmentation, uint64_t seed, bool shuffle, bool augment)
    : images_(images), labels_(labels), batch_size_(batch_size), augmentation_(augmentation),
      augment_(augment && (augmentation.crop_padding > 0 || augmentation.horizontal_flip)), seed_(seed) {
  const int64_t n = images.size(0);
  if (shuffle) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(seed_);
    std::shuffle(order.begin(), order.end(), rng);
    order_ = torch::tensor(order, torch::kLong);
  } else {
    order_ = torch::arange(n, torch::kLong);
  }
}

std::pair<torch::Tensor, torch::Tensor> EpochBatches::batch(int64_t index) {
  const int64_t start = index * batch_size_;
  const int64_t size = std::min(batch_size_, order_.size(0) - start);
  const auto ids = order_.narrow(0, start, size);
  auto images = images_.index_select(0, ids);
  auto labels = labels_.index_select(0, ids);
  if (!augment_) return {images, labels};
  const int64_t pad = augmentation_.crop_padding;
  const int64_t h = images.size(2), w = images.size(3);
  auto padded = pad > 0 ? torch::constant_pad_nd(images, {pad, pad, pad, pad}, 0.0) : images;
  auto out = torch::empty_like(images);
  std::seed_seq seeds{uint32_t(seed_), uint32_t(seed_ >> 32), uint32_t(index)};
  std::mt19937_64 rng(seeds);
  std::uniform_int_distribution<int64_t> offset(0, 2 * pad);
  std::bernoulli_distribution flip(0.5);
  for (int64_t i = 0; i < size; ++i) {
    const int64_t dy = pad > 0 ? offset(rng) : 0, dx = pad > 0 ? offset(rng) : 0;
    auto crop = padded[i].narrow(1, dy, h).narrow(2, dx, w);
    if (augmentation_.horizontal_flip && flip(rng)) crop = crop.flip({2});
    out[i].copy_(crop);
  }
  return {out, labels};
}

}  // namespace edmips

namespace edmips {

BatchStream::BatchStream(const Dataset& data, bool train, int64_t batch_size, const DatasetConfig& config,
                         uint64_t seed, bool shuffle, bool augment, int64_t first_batch, int threads, bool pinned) {
  if (!data.folder) {
    memory_.emplace(train ? data.train_images : data.test_images, train ? data.train_labels : data.test_labels,
                    batch_size, config, seed, shuffle, augment);
    return;
  }
  std::vector<int64_t> order(size_t(data.folder->size(train)));
  std::iota(order.begin(), order.end(), 0);
  if (shuffle) {
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
  }
  folder_ = std::make_unique<FolderBatches>(*data.folder, train, std::move(order), batch_size, seed, 0, augment,
                                            threads, first_batch, pinned);
}

int64_t BatchStream::batch_count() const { return folder_ ? folder_->batch_count() : memory_->batch_count(); }

std::pair<torch::Tensor, torch::Tensor> BatchStream::batch(int64_t index) {
  return folder_ ? folder_->batch(index) : memory_->batch(index);
}

}  // namespace edmips
