#include "benchmarks/data_benchmark.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <ostream>
#include <thread>

#include <unistd.h>

#include "core/error.h"
#include "core/process.h"
#include "data/image_folder.h"
#include "data/synthetic_folder.h"
#include "models/network.h"
#include "nn/precision.h"

namespace edmips {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// Decoded + augmented training images per second with `threads` decoders.
double edmips_images_per_second(const FolderData& data, const DataBenchmarkOptions& o, int threads) {
  std::vector<int64_t> order;
  std::mt19937_64 rng(7);
  while (int(order.size()) < o.images) order.push_back(int64_t(rng() % uint64_t(data.size(true))));
  // One warm-up batch, then the measured ones.
  {
    FolderBatches warm(data, true, std::vector<int64_t>(order.begin(), order.begin() + std::min(o.batch, o.images)),
                       o.batch, 1, 0, true, threads, 0, false);
    warm.batch(0);
  }
  FolderBatches batches(data, true, order, o.batch, 2, 0, true, threads, 0, false);
  const auto start = Clock::now();
  for (int64_t b = 0; b < batches.batch_count(); ++b) batches.batch(b);
  return double(o.images) / seconds_since(start);
}

/// torchvision's figure on the same files, or a negative number (with why) when it cannot run.
double torchvision_images_per_second(const DataBenchmarkOptions& o, int workers, std::string& why) {
  const auto script = find_share_file("analysis/torchvision_data_bench.py");
  if (!script) {
    why = "analysis/torchvision_data_bench.py not found";
    return -1;
  }
  const std::string command = "/usr/bin/python3 '" + script->string() + "' '" + o.folder + "' " +
                              std::to_string(o.images) + " " + std::to_string(o.batch) + " " +
                              std::to_string(o.size) + " " + std::to_string(workers) + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) {
    why = "cannot start /usr/bin/python3";
    return -1;
  }
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  const int status = ::pclose(pipe);
  const auto at = output.rfind("images_per_second ");
  if (status != 0 || at == std::string::npos) {
    why = "torchvision did not run (Debian: apt-get install python3-torchvision): " +
          output.substr(0, std::min<size_t>(output.size(), 300));
    return -1;
  }
  return std::atof(output.c_str() + at + 18);
}

}  // namespace

int run_data_benchmark(std::ostream& out, const DataBenchmarkOptions& o) {
  if (o.generate && !fs::is_directory(fs::path(o.folder) / "train")) {
    SyntheticFolderOptions g;
    g.classes = 10;
    g.train_per_class = std::max(1, o.generate_images / 10);
    g.val_per_class = 10;
    g.width = 500;
    g.height = 375;
    g.quality = 90;
    g.vary_sizes = true;
    out << "writing a synthetic folder of " << g.classes * g.train_per_class << " training JPEGs (about 500x375, "
        << "quality 90) to " << o.folder << std::endl;
    write_synthetic_folder(o.folder, g);
  }
  const int cores = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  DatasetConfig config;
  config.name = "image-folder";
  config.path = o.folder;
  config.image_size = o.size;
  // The file list: a scan (a fresh cache directory), then read from that cache.
  char line[256];
  double scan_s = 0, cached_s = 0;
  FolderIndex index;
  {
    const auto cache = fs::temp_directory_path() / ("edmips-bench-cache-" + std::to_string(::getpid()));
    auto start = Clock::now();
    index = scan_image_folder(o.folder, 0, cache);
    scan_s = seconds_since(start);
    start = Clock::now();
    index = scan_image_folder(o.folder, 0, cache);
    cached_s = seconds_since(start);
    std::error_code ec;
    fs::remove_all(cache, ec);
  }
  std::snprintf(line, sizeof line, "file list of %zu images in %zu classes: scanned in %.3f s, read from its cache in %.3f s\n",
                index.train.size() + index.val.size(), index.classes.size(), scan_s, cached_s);
  out << line;
  FolderData data(std::move(index), config);
  std::snprintf(line, sizeof line,
                "data benchmark: %s/train (%lld images), %d decoded per row, batch %d, %dx%d random resized crops + "
                "flips, ImageNet normalisation\n\n",
                o.folder.c_str(), static_cast<long long>(data.size(true)), o.images, o.batch, o.size, o.size);
  out << line << "| loader | threads / workers | images/s | images/s per core |\n|---|---:|---:|---:|\n";
  std::vector<int> thread_counts = {1};
  if (cores > 1) thread_counts.push_back(cores);
  double edmips_per_core = 0, torchvision_per_core = 0;
  for (int t : thread_counts) {
    torch::set_num_threads(1);
    const double rate = edmips_images_per_second(data, o, t);
    if (t == 1) edmips_per_core = rate;
    std::snprintf(line, sizeof line, "| edmips (libjpeg-turbo, DCT scaling) | %d | %.1f | %.1f |\n", t, rate, rate / t);
    out << line << std::flush;
  }
  if (o.torchvision) {
    for (int t : thread_counts) {
      std::string why;
      const double rate = torchvision_images_per_second(o, t, why);
      if (rate < 0) {
        out << "| torchvision ImageFolder + DataLoader | " << t << " | - | - |\n\n(" << why << ")\n";
        break;
      }
      if (t == 1) torchvision_per_core = rate;
      std::snprintf(line, sizeof line, "| torchvision ImageFolder + DataLoader | %d | %.1f | %.1f |\n", t, rate,
                    rate / t);
      out << line << std::flush;
    }
    if (torchvision_per_core > 0) {
      std::snprintf(line, sizeof line, "\nper core: edmips %.2fx torchvision\n", edmips_per_core / torchvision_per_core);
      out << line;
    }
  }

  if (!o.step_model.empty()) {
    // The loader feeding a search step on the same cores: how long the step
    // waits for data.
    torch::set_num_threads(cores);
    NetworkPrecision precision;
    precision.mode = PrecisionMode::search;
    precision.weight_candidates = {1, 2, 3, 4};
    precision.activation_candidates = {2, 3, 4};
    ModelInput input{3, o.size, o.size, int64_t(data.index().classes.size())};
    auto net = make_network(o.step_model, input, precision);
    torch::optim::SGD weights(net->weight_parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
    torch::optim::Adam arch(net->arch_parameters(), torch::optim::AdamOptions(3e-4));
    std::vector<int64_t> order;
    std::mt19937_64 rng(9);
    while (int(order.size()) < o.step_batch * (o.steps + 1)) order.push_back(int64_t(rng() % uint64_t(data.size(true))));
    FolderBatches batches(data, true, order, o.step_batch, 3, 0, true, cores, 0, false);
    auto step = [&](int64_t b) {
      auto [x, y] = batches.batch(b);
      const auto loss = torch::nn::functional::cross_entropy(net->forward(x), y) +
                        1e-3 * net->complexity_loss(ComplexityNormaliser::first_layer);
      weights.zero_grad();
      arch.zero_grad();
      loss.backward();
      weights.step();
      arch.step();
    };
    step(0);  // warm-up (allocations, the first batch's decoding)
    const double waited_before = batches.waited_s();
    const auto start = Clock::now();
    for (int64_t b = 1; b <= o.steps; ++b) step(b);
    const double total = seconds_since(start);
    const double waited = batches.waited_s() - waited_before;
    std::snprintf(line, sizeof line,
                  "\n%s search step, batch %d, %dx%d, %d threads (decoders on the same cores): %.2f s per step, "
                  "waiting for data %.3f s of it (%.1f%%) over %d steps\n",
                  o.step_model.c_str(), o.step_batch, o.size, o.size, cores, total / o.steps, waited / o.steps,
                  100.0 * waited / total, o.steps);
    out << line;
  }
  return 0;
}

}  // namespace edmips
