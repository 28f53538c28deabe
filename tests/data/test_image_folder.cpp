// Image folders: generated folders of varied JPEGs (greyscale, CMYK), PNGs and
// a corrupt file; labels, shapes, reproducibility, augmentation ranges,
// errors, the file-list cache, and an end-to-end trial.
#include <catch2/catch.hpp>
#include <fstream>

#include "core/error.h"
#include "core/files.h"
#include "core/json_reader.h"
#include "data/dataset.h"
#include "data/image_folder.h"
#include "data/synthetic_folder.h"
#include "trial/trial.h"
#include "test_support.h"

using namespace edmips;
using edmips::testing::TempDir;
namespace fs = std::filesystem;

namespace {

SyntheticFolderOptions small_folder() {
  SyntheticFolderOptions o;
  o.classes = 3;
  o.train_per_class = 6;
  o.val_per_class = 2;
  o.width = 120;
  o.height = 90;
  o.vary_sizes = true;
  o.odd_formats = true;
  return o;
}

DatasetConfig folder_config(const fs::path& root, int size = 64) {
  DatasetConfig c;
  c.name = "image-folder";
  c.path = root.string();
  c.image_size = size;
  return c;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

}  // namespace

TEST_CASE("an image folder's classes are train/'s sorted folders and labels their indices", "[data][folder]") {
  TempDir dir, cache;
  write_synthetic_folder(dir.path(), small_folder());
  const auto index = scan_image_folder(dir.path(), 0, cache.path());
  REQUIRE(index.classes == std::vector<std::string>{"class_00", "class_01", "class_02"});
  CHECK(index.train.size() == 18);
  CHECK(index.val.size() == 6);
  for (const auto& s : index.train) CHECK(s.path.rfind(index.classes[size_t(s.label)] + "/", 0) == 0);
  // PNGs and every JPEG kind are listed; other files are not.
  write_bytes(dir / "train/class_00/notes.txt", "not an image");
  const auto again = scan_image_folder(dir.path(), 0, cache.path());
  CHECK(again.train.size() == 18);
  size_t png = 0;
  for (const auto& s : again.train) png += s.path.size() > 4 && s.path.substr(s.path.size() - 4) == ".png";
  CHECK(png == 3);
  // The first N classes only.
  const auto two = scan_image_folder(dir.path(), 2, cache.path());
  CHECK(two.classes.size() == 2);
  CHECK(two.train.size() == 12);
  CHECK(two.val.size() == 4);
}

TEST_CASE("the file list is cached and rescanned when a folder changes", "[data][folder]") {
  TempDir dir, cache;
  write_synthetic_folder(dir.path(), small_folder());
  scan_image_folder(dir.path(), 0, cache.path());
  size_t cached_files = 0;
  for (const auto& e : fs::directory_iterator(cache.path())) cached_files += e.path().extension() == ".txt";
  CHECK(cached_files == 1);
  // A new image: the class folder's time changes, the list is read again.
  fs::copy_file(dir / "train/class_01/img_00003.jpg", dir / "train/class_01/img_99999.jpg");
  const auto index = scan_image_folder(dir.path(), 0, cache.path());
  CHECK(index.train.size() == 19);
  CHECK(index.train.back().path == "class_02/img_00005.jpg");
}

TEST_CASE("JPEGs in grey, RGB and CMYK and PNGs decode to RGB, JPEGs at a reduced DCT size when the crop allows",
          "[data][folder]") {
  const int w = 400, h = 300;
  for (auto format : {SyntheticFormat::rgb_jpeg, SyntheticFormat::grey_jpeg, SyntheticFormat::cmyk_jpeg,
                      SyntheticFormat::png}) {
    const auto bytes = synthetic_image(w, h, 1, 7, format, 95);
    CHECK(image_dimensions(bytes, "x") == std::pair<int, int>{w, h});
    CropBox box{0, 0, double(w), double(h)};
    const auto image = decode_image(bytes, "x", box, 300);
    CHECK(image.width == w);  // the crop must stay >= 300 pixels high: no reduction
    CHECK(image.pixels.size() == size_t(w) * h * 3);
    double mean[3] = {0, 0, 0};
    for (size_t p = 0; p < size_t(w) * h; ++p) {
      for (int c = 0; c < 3; ++c) mean[c] += image.pixels[3 * p + size_t(c)];
    }
    if (format == SyntheticFormat::grey_jpeg) {
      CHECK(mean[0] == mean[1]);
      CHECK(mean[1] == mean[2]);
    }
    if (format == SyntheticFormat::cmyk_jpeg) {
      // The same picture as the RGB JPEG, within JPEG's error.
      CropBox rgb_box{0, 0, double(w), double(h)};
      const auto rgb = decode_image(synthetic_image(w, h, 1, 7, SyntheticFormat::rgb_jpeg, 95), "y", rgb_box, 300);
      for (int c = 0; c < 3; ++c) {
        double other = 0;
        for (size_t p = 0; p < size_t(w) * h; ++p) other += rgb.pixels[3 * p + size_t(c)];
        CHECK(mean[c] / (w * h) == Approx(other / (w * h)).margin(4.0));
      }
    }
  }
  // A 64-pixel crop of a 400x300 JPEG decodes at 1/4 (the image would be
  // 100x75), and only the crop's region of it; the box follows.
  const auto bytes = synthetic_image(w, h, 2, 3, SyntheticFormat::rgb_jpeg, 90);
  CropBox box{40, 20, 300, 280};
  const auto region = decode_image(bytes, "x", box, 64);
  CHECK(region.width <= 100);
  CHECK(region.height <= 75);
  CHECK(box.width == Approx(75));
  CHECK(box.height == Approx(70));
  CHECK(box.x >= 0);
  CHECK(box.y >= 0);
  CHECK(box.x + box.width <= region.width);
  CHECK(box.y + box.height <= region.height);
  // The same pixels as decoding the whole image at that scale and cropping.
  CropBox whole{0, 0, double(w), double(h)};
  const auto full = decode_image(bytes, "x", whole, 64);
  REQUIRE(full.width == 100);
  REQUIRE(full.height == 75);
  std::vector<float> a(3 * 64 * 64), b(3 * 64 * 64);
  crop_resize_normalise(region, box, 64, false, a.data());
  crop_resize_normalise(full, CropBox{10, 5, 75, 70}, 64, false, b.data());
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  CHECK(worst < 0.05f);
}

TEST_CASE("random resized crops stay in the image with torchvision's area and aspect ranges", "[data][folder]") {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 2000; ++i) {
    const int w = 50 + int(rng() % 800), h = 50 + int(rng() % 800);
    const auto b = random_resized_crop(w, h, rng);
    CHECK(b.x >= 0);
    CHECK(b.y >= 0);
    CHECK(b.x + b.width <= w + 1e-9);
    CHECK(b.y + b.height <= h + 1e-9);
    const double area = b.width * b.height / (double(w) * h);
    const double aspect = b.width / b.height;
    CHECK(aspect >= 0.74);
    CHECK(aspect <= 1.35);
    CHECK(area >= 0.07);
  }
  const auto c = centre_crop(500, 375);
  CHECK(c.width == Approx(375 * 224.0 / 256.0));
  CHECK(c.x == Approx((500 - c.width) / 2));
}

TEST_CASE("folder batches have the right shapes and labels, and do not depend on threads or resuming",
          "[data][folder]") {
  TempDir dir, cache;
  write_synthetic_folder(dir.path(), small_folder());
  FolderData data(scan_image_folder(dir.path(), 0, cache.path()), folder_config(dir.path(), 48));
  std::vector<int64_t> order(18);
  std::iota(order.begin(), order.end(), 0);
  std::reverse(order.begin(), order.end());
  auto epoch = [&](int threads, int64_t first) {
    FolderBatches batches(data, true, order, 5, 42, 0, true, threads, first, false);
    REQUIRE(batches.batch_count() == 4);
    std::vector<std::pair<torch::Tensor, torch::Tensor>> out;
    for (int64_t b = first; b < batches.batch_count(); ++b) out.push_back(batches.batch(b));
    return out;
  };
  const auto one = epoch(1, 0);
  const auto three = epoch(3, 0);
  const auto resumed = epoch(2, 2);
  REQUIRE(one.size() == 4);
  CHECK(one[0].first.sizes() == torch::IntArrayRef({5, 3, 48, 48}));
  CHECK(one[3].first.size(0) == 3);
  for (size_t b = 0; b < 4; ++b) {
    CHECK(torch::equal(one[b].first, three[b].first));
    CHECK(torch::equal(one[b].second, three[b].second));
    for (int64_t i = 0; i < one[b].second.size(0); ++i) {
      CHECK(one[b].second[i].item<int64_t>() == data.label(true, order[b * 5 + size_t(i)]));
    }
  }
  CHECK(torch::equal(resumed[0].first, one[2].first));
  // Normalised with ImageNet's mean and std: values of a few units around 0.
  CHECK(one[0].first.abs().max().item<float>() < 3.0f);
  CHECK(std::abs(one[0].first.mean().item<float>()) < 1.5f);
  // Another epoch seed crops differently; evaluation crops do not depend on it.
  FolderBatches other(data, true, order, 5, 43, 0, true, 1, 0, false);
  CHECK(!torch::equal(other.batch(0).first, one[0].first));
  FolderBatches eval_a(data, false, {0, 1, 2}, 3, 1, 0, false, 1, 0, false);
  FolderBatches eval_b(data, false, {0, 1, 2}, 3, 2, 0, false, 2, 0, false);
  CHECK(torch::equal(eval_a.batch(0).first, eval_b.batch(0).first));
}

TEST_CASE("a missing split, a class without images and a corrupt image are exit-3 errors naming the path",
          "[data][folder]") {
  TempDir dir, cache;
  write_synthetic_folder(dir.path(), small_folder());
  fs::rename(dir / "val", dir / "validation");
  CHECK_THROWS_WITH(scan_image_folder(dir.path(), 0, cache.path()), Catch::Contains((dir / "val").string()) &&
                                                                        Catch::Contains("missing"));
  fs::rename(dir / "validation", dir / "val");
  fs::create_directories(dir / "train/class_03");
  CHECK_THROWS_WITH(scan_image_folder(dir.path(), 0, cache.path()),
                    Catch::Contains("class_03") && Catch::Contains("without images"));
  try {
    scan_image_folder(dir.path(), 0, cache.path());
  } catch (const DataError& e) {
    CHECK(e.code() == ExitCode::data_error);
  }
  fs::remove(dir / "train/class_03");
  // A corrupt JPEG: a stop naming the file, or (skip_corrupt) counted and replaced.
  write_bytes(dir / "train/class_01/img_00004.jpg", std::string("\xFF\xD8\xFF\xE0 garbage", 13));
  auto config = folder_config(dir.path(), 32);
  FolderData strict(scan_image_folder(dir.path(), 0, cache.path()), config);
  std::vector<int64_t> all(18);
  std::iota(all.begin(), all.end(), 0);
  {
    FolderBatches batches(strict, true, all, 18, 1, 0, true, 2, 0, false);
    CHECK_THROWS_WITH(batches.batch(0), Catch::Contains("img_00004.jpg") && Catch::Contains("corrupt JPEG"));
  }
  config.skip_corrupt = true;
  FolderData lenient(scan_image_folder(dir.path(), 0, cache.path()), config);
  FolderBatches batches(lenient, true, all, 18, 1, 0, true, 2, 0, false);
  const auto [x, y] = batches.batch(0);
  CHECK(x.size(0) == 18);
  REQUIRE(lenient.skipped().size() == 1);
  CHECK(lenient.skipped()[0].find("img_00004.jpg") != std::string::npos);
  // Not an image at all.
  CHECK_THROWS_WITH(image_dimensions(std::vector<uint8_t>{'h', 'i'}, "a.jpg"), Catch::Contains("not a JPEG or PNG"));
}

TEST_CASE("a JPEG cut short, or whose data ends before its rows, is corrupt: its pixels are never made up",
          "[data][folder][hardening]") {
  TempDir dir, cache;
  write_synthetic_folder(dir.path(), small_folder());
  fs::path victim;
  for (const auto& entry : fs::directory_iterator(dir / "train/class_00")) {
    if (entry.path().extension() == ".jpg" && (victim.empty() || entry.path() < victim)) victim = entry.path();
  }
  REQUIRE(!victim.empty());
  const auto whole = read_text_file(victim);
  const std::string cut = whole.substr(0, whole.size() * 3 / 10);
  // Cut, then given an end-of-image marker: the decoder runs out of data
  // mid-image, a warning libjpeg would ignore and fill with grey rows.
  const std::string ended = whole.substr(0, whole.size() * 6 / 10) + "\xFF\xD9";
  std::vector<int64_t> all(18);
  std::iota(all.begin(), all.end(), 0);
  for (const auto* variant : {&cut, &ended}) {
    INFO((variant == &cut ? "cut to 30%" : "60% and an end marker"));
    write_bytes(victim, *variant);
    auto config = folder_config(dir.path(), 32);
    FolderData strict(scan_image_folder(dir.path(), 0, cache.path()), config);
    {
      FolderBatches batches(strict, true, all, 18, 1, 0, false, 1, 0, false);
      CHECK_THROWS_WITH(batches.batch(0), Catch::Contains(victim.filename().string()) && Catch::Contains("corrupt JPEG"));
    }
    config.skip_corrupt = true;
    FolderData lenient(scan_image_folder(dir.path(), 0, cache.path()), config);
    FolderBatches batches(lenient, true, all, 18, 1, 0, false, 1, 0, false);
    CHECK(batches.batch(0).first.size(0) == 18);
    CHECK(lenient.skipped().size() == 1);
  }
}

TEST_CASE("more classes than an image folder has are refused, naming the folder", "[data][folder][hardening]") {
  TempDir dir, cache;
  write_synthetic_folder(dir.path(), small_folder());
  CHECK_THROWS_AS(scan_image_folder(dir.path(), 4, cache.path()), ConfigError);
  CHECK_THROWS_WITH(scan_image_folder(dir.path(), 4, cache.path()),
                    Catch::Contains("dataset.classes") && Catch::Contains((dir / "train").string()) &&
                        Catch::Contains("has 3"));
  CHECK(scan_image_folder(dir.path(), 3, cache.path()).classes.size() == 3);
}

TEST_CASE("a trial runs end to end on an image folder and reports its data", "[data][folder][trial]") {
  TempDir dir, out;
  auto options = small_folder();
  options.train_per_class = 10;
  write_synthetic_folder(dir.path(), options);
  // A corrupt image, skipped.
  write_bytes(dir / "train/class_02/img_00007.jpg", "corrupt");
  const nlohmann::json config = {
      {"seed", 3},
      {"threads", 2},
      {"dataset", {{"name", "image-folder"}, {"path", dir.path().string()}, {"image_size", 32},
                   {"skip_corrupt", true}}},
      {"model", {{"name", "simple-cnn"}}},
      {"search", {{"epochs", 1}, {"batch_size", 8}, {"complexity_penalty", 0.001}}},
      {"train", {{"epochs", 1}, {"batch_size", 8}}}};
  const auto parsed = parse_trial_config(config, "folder.json");
  CHECK(parsed.dataset.image_size == 32);
  TrialRunner runner;
  TrialRunOptions run_options;
  const auto result = runner.run(parsed, out.path(), run_options);
  CHECK(result.at("top1").get<double>() >= 0.0);
  CHECK(result.at("data").at("skipped_corrupt_images") == 1);
  const auto history = parse_json_text(read_text_file(out / "history.json"), "history");
  CHECK(history[0].contains("data_wait_s"));
  // image-folder options are refused for other datasets.
  auto wrong = config;
  wrong["dataset"]["name"] = "cifar10";
  CHECK_THROWS_WITH(parse_trial_config(wrong, "folder.json"), Catch::Contains("image_size"));
}
