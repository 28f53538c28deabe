#include "data/image_folder.h"

// jpeglib.h needs FILE and size_t declared first.
#include <cstddef>
#include <cstdio>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include <csetjmp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/files.h"
#include "core/stable_id.h"

namespace edmips {
namespace fs = std::filesystem;

namespace {

constexpr const char* kCacheMagic = "edmips-folder-index 1";
constexpr size_t kMaxImageBytes = size_t(256) << 20;  // one image file
constexpr float kMean[3] = {0.485f, 0.456f, 0.406f};
constexpr float kStd[3] = {0.229f, 0.224f, 0.225f};

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

/// Modification time of a directory in nanoseconds (adding or removing an
/// entry changes it), or -1.
int64_t mtime_ns(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return -1;
  return int64_t(st.st_mtim.tv_sec) * 1000000000 + int64_t(st.st_mtim.tv_nsec);
}

std::vector<std::string> sorted_subdirectories(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// The directories whose modification times stamp a cached index.
std::vector<fs::path> stamped_directories(const fs::path& root, const std::vector<std::string>& classes) {
  std::vector<fs::path> dirs = {root / "train", root / "val"};
  for (const char* split : {"train", "val"}) {
    for (const auto& c : classes) {
      if (fs::is_directory(root / split / c)) dirs.push_back(root / split / c);
    }
  }
  return dirs;
}

std::vector<FolderSample> scan_split(const fs::path& root, const char* split, const std::vector<std::string>& classes,
                                     bool every_class_required) {
  std::vector<FolderSample> samples;
  const fs::path dir = root / split;
  std::map<std::string, int64_t> label_of;
  for (size_t i = 0; i < classes.size(); ++i) label_of[classes[i]] = int64_t(i);
  for (const auto& name : sorted_subdirectories(dir)) {
    const auto label = label_of.find(name);
    if (label == label_of.end()) {
      if (every_class_required) continue;  // beyond the class limit
      throw DataError((dir / name).string() + ": a class folder train/ does not have (val/ may only hold train/'s classes)");
    }
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir / name)) {
      if (entry.is_regular_file() && is_image_name(entry.path())) files.push_back(entry.path().filename().string());
    }
    if (files.empty()) {
      throw DataError((dir / name).string() + ": class folder without images (.jpg, .jpeg or .png)");
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) samples.push_back({name + "/" + f, label->second});
  }
  if (samples.empty()) throw DataError(dir.string() + ": no class folders with images");
  return samples;
}

std::optional<FolderIndex> read_cache(const fs::path& file, const fs::path& root, int64_t class_limit) {
  std::istringstream in;
  try {
    in.str(read_text_file(file));  // a FIFO or a device in its place is refused, not waited on
  } catch (const Error&) {
    return std::nullopt;  // no usable cache: scan the folders
  }
  std::string line;
  if (!std::getline(in, line) || line != kCacheMagic) return std::nullopt;
  if (!std::getline(in, line) || line != root.string()) return std::nullopt;
  if (!std::getline(in, line) || line != std::to_string(class_limit)) return std::nullopt;
  size_t stamps = 0;
  if (!(in >> stamps)) return std::nullopt;
  std::getline(in, line);
  for (size_t i = 0; i < stamps; ++i) {
    if (!std::getline(in, line)) return std::nullopt;
    const auto tab = line.find('\t');
    if (tab == std::string::npos) return std::nullopt;
    if (std::to_string(mtime_ns(line.substr(tab + 1))) != line.substr(0, tab)) return std::nullopt;  // changed
  }
  FolderIndex index;
  index.root = root;
  size_t n = 0;
  if (!(in >> n)) return std::nullopt;
  std::getline(in, line);
  for (size_t i = 0; i < n; ++i) {
    if (!std::getline(in, line)) return std::nullopt;
    index.classes.push_back(line);
  }
  for (auto* split : {&index.train, &index.val}) {
    if (!(in >> n)) return std::nullopt;
    std::getline(in, line);
    split->reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (!std::getline(in, line)) return std::nullopt;
      const auto tab = line.find('\t');
      if (tab == std::string::npos) return std::nullopt;
      split->push_back({line.substr(tab + 1), std::atoll(line.substr(0, tab).c_str())});
    }
  }
  // The stamps cover train/, val/ and the class folders, so a file added or
  // removed anywhere invalidates the list.
  return index;
}

void write_cache(const fs::path& file, const FolderIndex& index, int64_t class_limit) {
  std::ostringstream out;
  out << kCacheMagic << "\n" << index.root.string() << "\n" << class_limit << "\n";
  const auto dirs = stamped_directories(index.root, index.classes);
  out << dirs.size() << "\n";
  for (const auto& d : dirs) out << mtime_ns(d) << "\t" << d.string() << "\n";
  out << index.classes.size() << "\n";
  for (const auto& c : index.classes) out << c << "\n";
  for (const auto* split : {&index.train, &index.val}) {
    out << split->size() << "\n";
    for (const auto& s : *split) out << s.label << "\t" << s.path << "\n";
  }
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  try {
    write_file_atomically(file, out.str(), Durability::replaceable);
  } catch (const std::exception&) {
    // A cache that cannot be written costs the next start a scan, nothing else.
  }
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::string text;
  try {
    text = read_text_file(path, kMaxImageBytes);  // a FIFO or a device is refused, never waited on
  } catch (const Error& e) {
    throw DataError(e.what());
  }
  if (text.empty()) throw DataError(path.string() + ": empty image file");
  return std::vector<uint8_t>(text.begin(), text.end());
}

bool is_png(const std::vector<uint8_t>& b) { return b.size() >= 8 && png_sig_cmp(b.data(), 0, 8) == 0; }
bool is_jpeg(const std::vector<uint8_t>& b) { return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }

/// A TurboJPEG decompressor per thread.
struct JpegDecoder {
  tjhandle handle = tjInitDecompress();
  ~JpegDecoder() {
    if (handle) tjDestroy(handle);
  }
};
tjhandle jpeg_decoder() {
  thread_local JpegDecoder decoder;
  if (!decoder.handle) throw Error("libjpeg-turbo: cannot create a decompressor");
  return decoder.handle;
}

struct JpegHeader {
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
};

/// Whether a JPEG's data ends: its end-of-image marker (FF D9) comes after
/// its last start-of-scan (FF DA). Entropy-coded data never holds FF D9
/// (an FF there is followed by 00 or a restart marker), so a file cut short
/// has none after its last scan; libjpeg would make up the missing rows.
bool jpeg_complete(const std::vector<uint8_t>& b) {
  auto last = [&b](uint8_t marker) -> std::ptrdiff_t {
    for (size_t i = b.size(); i-- > 1;) {
      if (b[i - 1] == 0xFF && b[i] == marker) return std::ptrdiff_t(i);
    }
    return -1;
  };
  return last(0xD9) > last(0xDA);
}

JpegHeader jpeg_header(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (!jpeg_complete(bytes)) {
    throw DataError(name + ": corrupt JPEG (truncated: no end-of-image marker after its last scan)");
  }
  JpegHeader h;
  if (tjDecompressHeader3(jpeg_decoder(), bytes.data(), static_cast<unsigned long>(bytes.size()), &h.width,
                          &h.height, &h.subsampling, &h.colorspace) != 0 ||
      h.width <= 0 || h.height <= 0) {
    throw DataError(name + ": corrupt JPEG (" + tjGetErrorStr2(jpeg_decoder()) + ")");
  }
  return h;
}

png_image png_header(const std::vector<uint8_t>& bytes, const std::string& name) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    const std::string message = image.message;
    png_image_free(&image);
    throw DataError(name + ": corrupt PNG (" + message + ")");
  }
  return image;
}

/// Weights of a triangle (bilinear, antialiased when shrinking) filter: for
/// each output position its first source index and weights.
struct FilterTaps {
  std::vector<int> first;
  std::vector<std::vector<float>> weights;
};

FilterTaps filter_taps(double start, double length, int source_size, int out_size) {
  FilterTaps taps;
  const double scale = length / out_size;
  const double support = std::max(1.0, scale);
  for (int o = 0; o < out_size; ++o) {
    const double centre = start + (o + 0.5) * scale;
    int lo = int(std::floor(centre - support));
    int hi = int(std::ceil(centre + support));
    lo = std::max(lo, 0);
    hi = std::min(hi, source_size - 1);
    std::vector<float> w;
    double total = 0;
    for (int s = lo; s <= hi; ++s) {
      const double d = std::abs((s + 0.5) - centre) / support;
      const double weight = std::max(0.0, 1.0 - d);
      w.push_back(float(weight));
      total += weight;
    }
    if (total <= 0) {  // the centre lies outside the image: nearest edge pixel
      const int s = std::clamp(int(std::floor(centre)), 0, source_size - 1);
      lo = s;
      w.assign(1, 1.0f);
      total = 1;
    }
    for (auto& x : w) x = float(x / total);
    taps.first.push_back(lo);
    taps.weights.push_back(std::move(w));
  }
  return taps;
}

/// libjpeg's errors end in a longjmp back to the decoder; so do its warnings
/// (corrupt data, a premature end), whose pixels libjpeg would make up,
/// except extraneous bytes before a marker, which leave the image intact.
struct JpegError {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* error = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, error->message);
  std::longjmp(error->jump, 1);
}

void jpeg_warning_is_error(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code != JWRN_EXTRANEOUS_DATA) jpeg_error_exit(cinfo);
}

/// Decodes only the rows and columns of a JPEG that `box` (plus `margin`
/// pixels of filter support) needs, at `scale_num`/8 of its size (libjpeg's
/// DCT scaling, jpeg_crop_scanline and jpeg_skip_scanlines). `out` gets the
/// region (RGB, or CMYK in 4 channels when `cmyk`); `x_offset` and
/// `y_offset` where it starts in the scaled image. Returns false with
/// `message` set on a corrupt file. No C++ object lives in this frame across
/// the setjmp.
bool decode_jpeg_region(const std::vector<uint8_t>& bytes, int scale_num, const CropBox& box, double margin,
                        bool cmyk, std::vector<uint8_t>& out, int& width, int& height, int& x_offset, int& y_offset,
                        char* message) {
  jpeg_decompress_struct cinfo;
  JpegError error;
  cinfo.err = jpeg_std_error(&error.manager);
  error.manager.error_exit = jpeg_error_exit;
  error.manager.emit_message = jpeg_warning_is_error;
  if (setjmp(error.jump)) {
    std::snprintf(message, JMSG_LENGTH_MAX, "%s", error.message);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  cinfo.scale_num = unsigned(scale_num);
  cinfo.scale_denom = 8;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  cinfo.dct_method = JDCT_IFAST;
  cinfo.do_fancy_upsampling = FALSE;
  jpeg_start_decompress(&cinfo);
  const int full_width = int(cinfo.output_width), full_height = int(cinfo.output_height);
  const double sx = double(full_width) / double(cinfo.image_width);
  const double sy = double(full_height) / double(cinfo.image_height);
  int x0 = std::clamp(int(std::floor(box.x * sx - margin)), 0, full_width - 1);
  int x1 = std::clamp(int(std::ceil((box.x + box.width) * sx + margin)), x0 + 1, full_width);
  const int y0 = std::clamp(int(std::floor(box.y * sy - margin)), 0, full_height - 1);
  const int y1 = std::clamp(int(std::ceil((box.y + box.height) * sy + margin)), y0 + 1, full_height);
  JDIMENSION crop_x = JDIMENSION(x0), crop_width = JDIMENSION(x1 - x0);
  if (crop_width < JDIMENSION(full_width)) jpeg_crop_scanline(&cinfo, &crop_x, &crop_width);
  const int channels = int(cinfo.output_components);
  width = int(cinfo.output_width);  // the cropped width (whole iMCUs)
  height = y1 - y0;
  x_offset = int(crop_x);
  y_offset = y0;
  out.resize(size_t(width) * size_t(height) * size_t(channels));
  if (y0 > 0) jpeg_skip_scanlines(&cinfo, JDIMENSION(y0));
  while (int(cinfo.output_scanline) < y1) {
    JSAMPROW row = out.data() + size_t(int(cinfo.output_scanline) - y0) * size_t(width) * size_t(channels);
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_abort_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

}  // namespace

fs::path default_cache_dir() {
  if (const char* dir = std::getenv("EDMIPS_CACHE_DIR"); dir && *dir) return dir;
  if (const char* dir = std::getenv("XDG_CACHE_HOME"); dir && *dir) return fs::path(dir) / "edmips";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "edmips";
  return fs::temp_directory_path() / "edmips-cache";
}

FolderIndex scan_image_folder(const fs::path& root_in, int64_t class_limit, const fs::path& cache_dir) {
  std::error_code ec;
  const fs::path root = fs::absolute(root_in, ec).lexically_normal();
  for (const char* split : {"train", "val"}) {
    if (!fs::is_directory(root / split)) {
      throw DataError((root / split).string() + ": missing (an image folder holds train/ and val/, one folder per class)");
    }
  }
  const fs::path cache_file = cache_dir / ("folder-" + stable_id(root.string() + "\n" + std::to_string(class_limit)) + ".txt");
  if (auto cached = read_cache(cache_file, root, class_limit)) return *cached;

  FolderIndex index;
  index.root = root;
  index.classes = sorted_subdirectories(root / "train");
  if (index.classes.empty()) throw DataError((root / "train").string() + ": no class folders");
  if (class_limit > int64_t(index.classes.size())) {
    throw ConfigError("dataset.classes: " + std::to_string(class_limit) + " classes asked for, but " +
                      (root / "train").string() + " has " + std::to_string(index.classes.size()) +
                      " class folders (0 or no \"classes\" takes them all)");
  }
  if (class_limit > 0) index.classes.resize(size_t(class_limit));
  const bool limited = class_limit > 0;
  index.train = scan_split(root, "train", index.classes, true);
  index.val = scan_split(root, "val", index.classes, limited);
  write_cache(cache_file, index, class_limit);
  return index;
}

CropBox random_resized_crop(int width, int height, std::mt19937_64& rng) {
  const double area = double(width) * double(height);
  std::uniform_real_distribution<double> scale(0.08, 1.0);
  std::uniform_real_distribution<double> log_ratio(std::log(3.0 / 4.0), std::log(4.0 / 3.0));
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * scale(rng);
    const double ratio = std::exp(log_ratio(rng));
    const double w = std::round(std::sqrt(target * ratio));
    const double h = std::round(std::sqrt(target / ratio));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      std::uniform_int_distribution<int> x(0, width - int(w)), y(0, height - int(h));
      const double left = x(rng), top = y(rng);
      return {left, top, w, h};
    }
  }
  // Fallback: the centre crop, aspect clamped to [3/4, 4/3].
  const double ratio = double(width) / double(height);
  double w = width, h = height;
  if (ratio < 3.0 / 4.0) h = std::round(w / (3.0 / 4.0));
  else if (ratio > 4.0 / 3.0) w = std::round(h * (4.0 / 3.0));
  return {(width - w) / 2, (height - h) / 2, w, h};
}

CropBox centre_crop(int width, int height) {
  // Shorter side resized to size * 256 / 224, then the centre size x size:
  // in the original image, a square of side min(w, h) * 224 / 256.
  const double side = std::min(width, height) * 224.0 / 256.0;
  return {(width - side) / 2, (height - side) / 2, side, side};
}

std::pair<int, int> image_dimensions(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (is_jpeg(bytes)) {
    const auto h = jpeg_header(bytes, name);
    return {h.width, h.height};
  }
  if (is_png(bytes)) {
    auto image = png_header(bytes, name);
    const std::pair<int, int> dims{int(image.width), int(image.height)};
    png_image_free(&image);
    return dims;
  }
  throw DataError(name + ": not a JPEG or PNG image");
}

RgbImage decode_image(const std::vector<uint8_t>& bytes, const std::string& name, CropBox& box, int size) {
  RgbImage out;
  if (is_jpeg(bytes)) {
    const auto h = jpeg_header(bytes, name);
    // The largest reduction that keeps the crop at least `size` pixels wide
    // and high: decoding at 1/2, 1/4 or 1/8 skips most of the IDCT work.
    int scale_num = 8;
    for (int num = 1; num < 8; ++num) {
      if (box.width * num / 8 >= size && box.height * num / 8 >= size) {
        scale_num = num;
        break;
      }
    }
    // Only the crop's rows and columns are decoded, with the resampling
    // filter's reach around them.
    const double margin = std::max(1.0, std::max(box.width, box.height) * scale_num / 8.0 / size) + 2;
    const bool cmyk = h.colorspace == TJCS_CMYK || h.colorspace == TJCS_YCCK;
    std::vector<uint8_t> decoded;
    int x_offset = 0, y_offset = 0;
    char message[JMSG_LENGTH_MAX] = "";
    if (!decode_jpeg_region(bytes, scale_num, box, margin, cmyk, decoded, out.width, out.height, x_offset, y_offset,
                            message)) {
      throw DataError(name + ": corrupt JPEG (" + message + ")");
    }
    if (cmyk) {
      // Adobe CMYK JPEGs store inverted ink values: R = C' K' / 255.
      out.pixels.resize(size_t(out.width) * size_t(out.height) * 3);
      for (size_t p = 0, n = size_t(out.width) * size_t(out.height); p < n; ++p) {
        const unsigned k = decoded[4 * p + 3];
        for (int c = 0; c < 3; ++c) out.pixels[3 * p + size_t(c)] = uint8_t((decoded[4 * p + size_t(c)] * k + 127) / 255);
      }
    } else {
      out.pixels = std::move(decoded);
    }
    // The box in the decoded region's coordinates.
    const double sx = double((h.width * scale_num + 7) / 8) / h.width;
    const double sy = double((h.height * scale_num + 7) / 8) / h.height;
    box = {box.x * sx - x_offset, box.y * sy - y_offset, box.width * sx, box.height * sy};
    return out;
  }
  if (is_png(bytes)) {
    auto image = png_header(bytes, name);
    image.format = PNG_FORMAT_RGB;  // greyscale, palette and alpha converted (alpha composited on black)
    out.width = int(image.width);
    out.height = int(image.height);
    out.pixels.resize(PNG_IMAGE_SIZE(image));
    if (!png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr)) {
      const std::string message = image.message;
      png_image_free(&image);
      throw DataError(name + ": corrupt PNG (" + message + ")");
    }
    return out;
  }
  throw DataError(name + ": not a JPEG or PNG image");
}

void crop_resize_normalise(const RgbImage& image, const CropBox& box, int size, bool flip, float* out) {
  const auto xs = filter_taps(box.x, box.width, image.width, size);
  const auto ys = filter_taps(box.y, box.height, image.height, size);
  // Only the columns the horizontal taps read take part in the vertical pass.
  int x0 = image.width, x1 = 0;
  for (int ox = 0; ox < size; ++ox) {
    x0 = std::min(x0, xs.first[size_t(ox)]);
    x1 = std::max(x1, xs.first[size_t(ox)] + int(xs.weights[size_t(ox)].size()));
  }
  const size_t span = size_t(x1 - x0) * 3;
  // Vertical pass: the rows each output row needs, into floats (a buffer
  // kept per thread: no page faults per image).
  thread_local std::vector<float> rows;
  rows.resize(size_t(size) * span);
  const size_t stride = size_t(image.width) * 3;
  for (int oy = 0; oy < size; ++oy) {
    float* row = rows.data() + size_t(oy) * span;
    const auto& w = ys.weights[size_t(oy)];
    const uint8_t* src = image.pixels.data() + size_t(ys.first[size_t(oy)]) * stride + size_t(x0) * 3;
    const float w0 = w[0];
    for (size_t i = 0; i < span; ++i) row[i] = w0 * float(src[i]);
    for (size_t k = 1; k < w.size(); ++k) {
      const float wk = w[k];
      const uint8_t* s = src + k * stride;
      for (size_t i = 0; i < span; ++i) row[i] += wk * float(s[i]);
    }
  }
  // Horizontal pass, then normalisation, written channel-major.
  const size_t plane = size_t(size) * size_t(size);
  float scale[3], shift[3];
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.0f / (255.0f * kStd[c]);
    shift[c] = -kMean[c] / kStd[c];
  }
  for (int oy = 0; oy < size; ++oy) {
    const float* row = rows.data() + size_t(oy) * span;
    float* r = out + size_t(oy) * size_t(size);
    float* g = r + plane;
    float* b = g + plane;
    for (int ox = 0; ox < size; ++ox) {
      float rgb[3] = {0, 0, 0};
      const auto& w = xs.weights[size_t(ox)];
      const float* src = row + size_t(xs.first[size_t(ox)] - x0) * 3;
      for (size_t k = 0; k < w.size(); ++k) {
        rgb[0] += w[k] * src[3 * k];
        rgb[1] += w[k] * src[3 * k + 1];
        rgb[2] += w[k] * src[3 * k + 2];
      }
      const size_t x = size_t(flip ? size - 1 - ox : ox);
      r[x] = rgb[0] * scale[0] + shift[0];
      g[x] = rgb[1] * scale[1] + shift[1];
      b[x] = rgb[2] * scale[2] + shift[2];
    }
  }
}

FolderData::FolderData(FolderIndex index, const DatasetConfig& config)
    : index_(std::move(index)), size_(config.image_size), skip_corrupt_(config.skip_corrupt) {
  if (config.train_subset > 0 && config.train_subset < int64_t(index_.train.size())) {
    // A seeded subset, the same on every machine (as for the other datasets).
    std::vector<size_t> order(index_.train.size());
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(config.subset_seed);
    std::shuffle(order.begin(), order.end(), rng);
    order.resize(size_t(config.train_subset));
    std::sort(order.begin(), order.end());
    std::vector<FolderSample> subset;
    for (size_t i : order) subset.push_back(index_.train[i]);
    index_.train = std::move(subset);
  }
  if (config.test_subset > 0 && config.test_subset < int64_t(index_.val.size())) {
    index_.val.resize(size_t(config.test_subset));
  }
}

bool FolderData::load_one(bool train, int64_t i, uint64_t seed, int epoch, bool augment, float* out) const {
  const auto& sample = (train ? index_.train : index_.val)[size_t(i)];
  const fs::path path = index_.root / (train ? "train" : "val") / sample.path;
  try {
    const auto bytes = read_bytes(path);
    std::seed_seq seeds{uint32_t(seed), uint32_t(seed >> 32), uint32_t(epoch), uint32_t(i), uint32_t(uint64_t(i) >> 32)};
    std::mt19937_64 rng(seeds);
    const auto [width, height] = image_dimensions(bytes, path.string());
    CropBox box = augment ? random_resized_crop(width, height, rng) : centre_crop(width, height);
    const bool flip = augment && std::bernoulli_distribution(0.5)(rng);
    const auto image = decode_image(bytes, path.string(), box, size_);
    crop_resize_normalise(image, box, size_, flip, out);
    return true;
  } catch (const DataError&) {
    if (!skip_corrupt_) throw;
    std::lock_guard<std::mutex> lock(mutex_);
    skipped_.insert(path.string());
    return false;
  }
}

int64_t FolderData::load(bool train, int64_t i, uint64_t seed, int epoch, bool augment, float* out) const {
  const int64_t n = size(train);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t j = (i + k) % n;
    if (load_one(train, j, seed, epoch, augment, out)) return label(train, j);
  }
  throw DataError(index_.root.string() + ": no image of " + (train ? "train/" : "val/") + " decodes");
}

std::vector<std::string> FolderData::skipped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {skipped_.begin(), skipped_.end()};
}

struct FolderBatches::Impl {
  Impl(const FolderData& data_, bool train_, std::vector<int64_t> order_, int64_t batch_size_, uint64_t seed_,
       int epoch_, bool augment_, bool pinned_, int64_t depth_)
      : data(data_), train(train_), order(std::move(order_)), batch_size(batch_size_), seed(seed_), epoch(epoch_),
        augment(augment_), pinned(pinned_), depth(depth_) {}
  const FolderData& data;
  bool train;
  std::vector<int64_t> order;
  int64_t batch_size;
  uint64_t seed;
  int epoch;
  bool augment;
  bool pinned;
  int64_t depth;

  struct Slot {
    torch::Tensor images, labels;
    int64_t size = 0, done = 0;
    std::exception_ptr error;
  };
  std::mutex mutex;
  std::condition_variable work_cv, ready_cv;
  std::map<int64_t, Slot> slots;
  int64_t next_sample = 0;   // next position in `order` to decode
  int64_t consumed = 0;      // batches handed out so far (the first index not yet asked for)
  bool stopping = false;
  std::vector<std::thread> threads;

  int64_t batches() const { return (int64_t(order.size()) + batch_size - 1) / batch_size; }

  Slot& slot_for(int64_t b) {
    auto it = slots.find(b);
    if (it != slots.end()) return it->second;
    Slot s;
    s.size = std::min(batch_size, int64_t(order.size()) - b * batch_size);
    const int size = data.image_size();
    auto options = torch::TensorOptions().dtype(torch::kFloat).pinned_memory(pinned);
    s.images = torch::empty({s.size, 3, size, size}, options);
    s.labels = torch::empty({s.size}, torch::TensorOptions().dtype(torch::kLong).pinned_memory(pinned));
    return slots.emplace(b, std::move(s)).first->second;
  }

  void work() {
    const int size = data.image_size();
    const size_t per_image = size_t(3) * size_t(size) * size_t(size);
    while (true) {
      int64_t position, b;
      float* out;
      Slot* slot;
      {
        std::unique_lock<std::mutex> lock(mutex);
        work_cv.wait(lock, [&] {
          return stopping || next_sample >= int64_t(order.size()) || next_sample / batch_size < consumed + depth;
        });
        if (stopping || next_sample >= int64_t(order.size())) return;
        position = next_sample++;
        b = position / batch_size;
        slot = &slot_for(b);
        out = slot->images.data_ptr<float>() + size_t(position - b * batch_size) * per_image;
      }
      std::exception_ptr error;
      int64_t label = 0;
      try {
        label = data.load(train, order[size_t(position)], seed, epoch, augment, out);
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex);
      slot->labels.data_ptr<int64_t>()[position - b * batch_size] = label;
      if (error && !slot->error) slot->error = error;
      if (++slot->done == slot->size) ready_cv.notify_all();
    }
  }
};

FolderBatches::FolderBatches(const FolderData& data, bool train, std::vector<int64_t> order, int64_t batch_size,
                             uint64_t seed, int epoch, bool augment, int threads, int64_t first_batch, bool pinned,
                             int depth)
    : impl_(std::make_unique<Impl>(data, train, std::move(order), batch_size, seed, epoch, augment, pinned,
                                   depth > 0 ? depth : std::max(2, threads))) {
  impl_->consumed = first_batch;
  impl_->next_sample = std::min<int64_t>(first_batch * batch_size, int64_t(impl_->order.size()));
  for (int t = 0; t < std::max(1, threads); ++t) impl_->threads.emplace_back([this] { impl_->work(); });
}

FolderBatches::~FolderBatches() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->work_cv.notify_all();
  for (auto& t : impl_->threads) t.join();
}

int64_t FolderBatches::batch_count() const { return impl_->batches(); }

std::pair<torch::Tensor, torch::Tensor> FolderBatches::batch(int64_t index) {
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(impl_->mutex);
  if (index != impl_->consumed) {
    throw Error("FolderBatches: batch " + std::to_string(index) + " asked for out of order (next is " +
                std::to_string(impl_->consumed) + ")");
  }
  auto& slot = impl_->slot_for(index);  // may still be empty: the decoders fill it
  impl_->ready_cv.wait(lock, [&] { return slot.done == slot.size; });
  waited_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto result = std::make_pair(slot.images, slot.labels);
  const auto error = slot.error;
  impl_->slots.erase(index);
  impl_->consumed = index + 1;
  lock.unlock();
  impl_->work_cv.notify_all();
  if (error) std::rethrow_exception(error);
  return result;
}

}  // namespace edmips
