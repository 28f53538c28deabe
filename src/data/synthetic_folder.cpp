#include "data/synthetic_folder.h"

#include <png.h>
#include <turbojpeg.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "core/error.h"
#include "core/files.h"

namespace edmips {
namespace fs = std::filesystem;

namespace {

/// RGB pixels: a class colour field with stripes at a class angle, a soft
/// blob, and noise.
std::vector<uint8_t> synthetic_rgb(int width, int height, int label, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> noise(0, 6);
  const double hue = label * 2.399;  // golden angle: classes far apart in colour
  const double base[3] = {128 + 80 * std::cos(hue), 128 + 80 * std::cos(hue + 2.094), 128 + 80 * std::cos(hue + 4.189)};
  const double angle = label * 0.785 + 0.3 * (u(rng) - 0.5);
  const double period = 12 + 20 * u(rng);
  const double bx = u(rng) * width, by = u(rng) * height, radius = (0.15 + 0.2 * u(rng)) * std::min(width, height);
  std::vector<uint8_t> rgb(size_t(width) * size_t(height) * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const double stripe = 30 * std::sin((x * std::cos(angle) + y * std::sin(angle)) * 6.283 / period);
      const double d = std::hypot(x - bx, y - by) / radius;
      const double blob = d < 1 ? 50 * (1 - d * d) : 0;
      for (int c = 0; c < 3; ++c) {
        const double v = base[c] + stripe + (c == label % 3 ? blob : -blob / 2) + noise(rng);
        rgb[(size_t(y) * size_t(width) + size_t(x)) * 3 + size_t(c)] = uint8_t(std::clamp(v, 0.0, 255.0));
      }
    }
  }
  return rgb;
}

std::vector<uint8_t> jpeg(const std::vector<uint8_t>& pixels, int width, int height, int pixel_format, int subsampling,
                          int quality) {
  tjhandle handle = tjInitCompress();
  if (!handle) throw Error("libjpeg-turbo: cannot create a compressor");
  unsigned char* out = nullptr;
  unsigned long size = 0;
  const int status = tjCompress2(handle, pixels.data(), width, 0, height, pixel_format, &out, &size, subsampling,
                                 quality, 0);
  std::vector<uint8_t> bytes;
  if (status == 0) bytes.assign(out, out + size);
  const std::string message = status == 0 ? "" : tjGetErrorStr2(handle);
  tjFree(out);
  tjDestroy(handle);
  if (status != 0) throw Error("libjpeg-turbo: " + message);
  return bytes;
}

}  // namespace

std::vector<uint8_t> synthetic_image(int width, int height, int label, uint64_t seed, SyntheticFormat format,
                                     int quality) {
  const auto rgb = synthetic_rgb(width, height, label, seed);
  const size_t n = size_t(width) * size_t(height);
  switch (format) {
    case SyntheticFormat::rgb_jpeg: return jpeg(rgb, width, height, TJPF_RGB, TJSAMP_420, quality);
    case SyntheticFormat::grey_jpeg: {
      std::vector<uint8_t> grey(n);
      for (size_t p = 0; p < n; ++p) grey[p] = uint8_t((rgb[3 * p] * 77 + rgb[3 * p + 1] * 150 + rgb[3 * p + 2] * 29) >> 8);
      return jpeg(grey, width, height, TJPF_GRAY, TJSAMP_GRAY, quality);
    }
    case SyntheticFormat::cmyk_jpeg: {
      // Inverted (Adobe) CMYK: K' = max(R, G, B), C' = R * 255 / K', ...
      std::vector<uint8_t> cmyk(n * 4);
      for (size_t p = 0; p < n; ++p) {
        const unsigned k = std::max({rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2]});
        for (int c = 0; c < 3; ++c) cmyk[4 * p + size_t(c)] = uint8_t(k ? rgb[3 * p + size_t(c)] * 255 / k : 0);
        cmyk[4 * p + 3] = uint8_t(k);
      }
      return jpeg(cmyk, width, height, TJPF_CMYK, TJSAMP_444, quality);
    }
    case SyntheticFormat::png: {
      png_image image;
      std::memset(&image, 0, sizeof image);
      image.version = PNG_IMAGE_VERSION;
      image.width = png_uint_32(width);
      image.height = png_uint_32(height);
      image.format = PNG_FORMAT_RGB;
      png_alloc_size_t size = 0;
      if (!png_image_write_to_memory(&image, nullptr, &size, 0, rgb.data(), 0, nullptr)) {
        throw Error(std::string("libpng: ") + image.message);
      }
      std::vector<uint8_t> bytes(size);
      if (!png_image_write_to_memory(&image, bytes.data(), &size, 0, rgb.data(), 0, nullptr)) {
        throw Error(std::string("libpng: ") + image.message);
      }
      bytes.resize(size);
      return bytes;
    }
  }
  return {};
}

void write_synthetic_folder(const fs::path& root, const SyntheticFolderOptions& o) {
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> factor(0.5, 1.5);
  for (const char* split : {"train", "val"}) {
    const int per_class = std::string(split) == "train" ? o.train_per_class : o.val_per_class;
    for (int c = 0; c < o.classes; ++c) {
      char name[32];
      std::snprintf(name, sizeof name, "class_%02d", c);
      const fs::path dir = root / split / name;
      fs::create_directories(dir);
      for (int i = 0; i < per_class; ++i) {
        int w = o.width, h = o.height;
        if (o.vary_sizes) {
          w = std::max(32, int(o.width * factor(rng)));
          h = std::max(32, int(o.height * factor(rng)));
          if (i % 3 == 1) std::swap(w, h);  // portrait
        }
        auto format = SyntheticFormat::rgb_jpeg;
        if (o.odd_formats && i < 3) format = i == 0 ? SyntheticFormat::grey_jpeg : i == 1 ? SyntheticFormat::cmyk_jpeg
                                                                                          : SyntheticFormat::png;
        const auto bytes = synthetic_image(w, h, c, rng(), format, o.quality);
        char file[48];
        std::snprintf(file, sizeof file, "img_%05d.%s", i, format == SyntheticFormat::png ? "png" : "jpg");
        std::ofstream out(dir / file, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
        if (!out) throw IoError((dir / file).string() + ": cannot write");
      }
    }
  }
}

}  // namespace edmips
