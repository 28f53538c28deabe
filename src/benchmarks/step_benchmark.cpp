#include "benchmarks/step_benchmark.h"

#include <c10/core/CPUAllocator.h>
#include <cstdlib>

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <ostream>
#include <torch/torch.h>
#ifdef EDMIPS_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime_api.h>
#endif

#include "core/error.h"
#include "core/torch_compat.h"
#include "data/dataset.h"
#include "models/network.h"
#include "nn/cost_model.h"

namespace edmips {
namespace {

using Clock = std::chrono::steady_clock;

/// Wraps LibTorch's CPU allocator to count the bytes of live tensors and
/// their peak; installed once, before any model is built.
class CountingAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) EDMIPS_ALLOCATE_CONST override {
    // A 64-byte header (keeps c10's alignment) remembers the size.
    const size_t total = (bytes + kHeader + kHeader - 1) / kHeader * kHeader;
    auto* base = static_cast<char*>(std::aligned_alloc(kHeader, total));
    if (!base) throw std::bad_alloc();
    *reinterpret_cast<size_t*>(base) = bytes;
    void* data = base + kHeader;
    const int64_t live = live_.fetch_add(int64_t(bytes)) + int64_t(bytes);
    int64_t peak = peak_.load();
    while (live > peak && !peak_.compare_exchange_weak(peak, live)) {
    }
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
#if EDMIPS_ALLOCATOR_NEEDS_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif
  int64_t live() const { return live_.load(); }
  int64_t peak() const { return peak_.load(); }
  void reset_peak() { peak_.store(live_.load()); }

 private:
  static constexpr size_t kHeader = 64;
  static void release(void* data) {
    char* base = static_cast<char*>(data) - kHeader;
    live_.fetch_sub(int64_t(*reinterpret_cast<size_t*>(base)));
    std::free(base);
  }
  static inline std::atomic<int64_t> live_{0}, peak_{0};
};

CountingAllocator& counting_allocator() {
  static CountingAllocator* allocator = [] {
    auto* a = new CountingAllocator();
    c10::SetCPUAllocator(a, /*priority=*/100);
    return a;
  }();
  return *allocator;
}

/// Bytes of a form's own persistent state: parameters, gradients, momentum.
int64_t state_bytes(const Network& net) {
  int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n * int64_t(sizeof(float)) * 3;
}

/// Live tensor bytes and their peak since the last reset, on the benchmark's
/// device: the counting CPU allocator, or CUDA's caching allocator.
class MemoryMeter {
 public:
  explicit MemoryMeter(torch::Device device) : device_(device) {
    if (device_.is_cpu()) counting_allocator();
  }
  void reset_peak() {
#ifdef EDMIPS_WITH_CUDA
    if (device_.is_cuda()) return c10::cuda::CUDACachingAllocator::resetPeakStats(device_.index());
#endif
    counting_allocator().reset_peak();
  }
  int64_t live() const { return stat(false); }
  int64_t peak() const { return stat(true); }

 private:
  int64_t stat(bool peak) const {
#ifdef EDMIPS_WITH_CUDA
    if (device_.is_cuda()) {
      const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device_.index());
      const auto& bytes = stats.allocated_bytes[0];  // aggregate over pools
      return peak ? bytes.peak : bytes.current;
    }
#endif
    return peak ? counting_allocator().peak() : counting_allocator().live();
  }
  torch::Device device_;
};

void synchronize(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

struct Form {
  std::string name;
  Network net;
  std::unique_ptr<torch::optim::SGD> weights, arch;
  double penalty = 0;
  std::vector<torch::Tensor> cost_matrices;  ///< a table-cost search: its loss prices these
};

/// A cost table for `net`'s searched layers that is not proportional to
/// BitOps (a launch overhead plus MACs at the widths rounded up to 4 or 8
/// bits): the search's loss under it has the table path's full cost.
CostModel synthetic_table(const NetworkImpl& net) {
  auto table = std::make_shared<CostTable>();
  table->path = "(bench: synthetic table)";
  table->unit = "microseconds";
  auto up = [](int bits) { return bits <= 4 ? 4 : 8; };
  for (const auto& layer : net.layers()) {
    if (!layer->searching()) continue;
    const auto in = layer->cost_input();
    for (int w : layer->precision().weight_bits) {
      for (int a : layer->precision().activation_bits) {
        table->layers[in.name][pair_key(w, a)] = 2.0 + 1e-6 * double(in.macs) * up(w) * up(a);
      }
    }
  }
  CostModel model;
  model.measure = CostBasis::table;
  model.table = table;
  return model;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

std::vector<StepTiming> run_step_benchmark(const StepBenchmarkOptions& o) {
  const torch::Device device = o.device == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    throw ConfigError("bench --device cuda: LibTorch " TORCH_VERSION " sees no CUDA device");
  }
  MemoryMeter memory(device);
  torch::set_num_threads(o.threads);
  torch::manual_seed(0);
  const ModelInput input{o.channels, o.height, o.width, o.classes};
  NetworkPrecision fp;
  NetworkPrecision search;
  search.mode = PrecisionMode::search;
  search.weight_candidates = o.weight_bits;
  search.activation_candidates = o.activation_bits;
  NetworkPrecision fixed;
  fixed.mode = PrecisionMode::fixed;
  fixed.fixed_bits = {{"", o.weight_bits[o.weight_bits.size() / 2], o.activation_bits[o.activation_bits.size() / 2]}};

  std::vector<Form> forms;
  auto add = [&](const std::string& name, const NetworkPrecision& p, bool naive, const ModelSpec& model) {
    Form f;
    f.name = name;
    f.net = make_network(model, input, p);
    f.net->to(device);
    f.net->set_naive_search(naive);
    f.weights = std::make_unique<torch::optim::SGD>(f.net->weight_parameters(),
                                                    torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
    if (p.mode == PrecisionMode::search) {
      f.arch = std::make_unique<torch::optim::SGD>(f.net->arch_parameters(),
                                                   torch::optim::SGDOptions(0.01).momentum(0.9));
      f.penalty = 1e-3;
    }
    forms.push_back(std::move(f));
  };
  const ModelSpec builtin{o.model, "", false};
  add("float", fp, false, builtin);
  add("search (composite)", search, false, builtin);
  add("fixed (derived)", fixed, false, builtin);
  add("search (composite, table cost)", search, false, builtin);
  forms.back().cost_matrices =
      forms.back().net->cost_matrices(synthetic_table(*forms.back().net), ComplexityNormaliser::first_layer);
  if (o.naive) add("search (naive |W|x|A|)", search, true, builtin);
  if (!o.onnx.empty()) {
    // The imported network's rows, interleaved with the built-in's like all
    // forms: the step cost of the import itself, at the same shapes.
    const ModelSpec imported{"imported", o.onnx, true};
    add("imported float", fp, false, imported);
    add("imported search (composite)", search, false, imported);
    add("imported fixed (derived)", fixed, false, imported);
  }

  // Batches come from the trainer's own batch assembly (shuffled gather with
  // random crop and flip), over an in-memory dataset of 8 batches.
  const auto data = torch::randn({o.batch * 8, o.channels, o.height, o.width});
  const auto labels = torch::randint(o.classes, {o.batch * 8}, torch::kLong);
  DatasetConfig augmentation;
  augmentation.crop_padding = 4;
  augmentation.horizontal_flip = true;
  EpochBatches batches(data, labels, o.batch, augmentation, 1, true, true);
  std::vector<std::vector<double>> times(forms.size()), assembly(forms.size()), peaks(forms.size());
  for (int step = 0; step < o.warmup + o.steps; ++step) {
    for (size_t i = 0; i < forms.size(); ++i) {  // interleaved, so drift hits every form alike
      auto& f = forms[i];
      synchronize(device);
      memory.reset_peak();
      const int64_t live_before = memory.live();
      const auto t0 = Clock::now();
      auto [x, y] = batches.batch(step % batches.batch_count());
      const auto t1 = Clock::now();
      if (device.is_cuda()) {
        x = x.pin_memory().to(device, /*non_blocking=*/true);
        y = y.pin_memory().to(device, /*non_blocking=*/true);
      }
      auto loss = torch::nn::functional::cross_entropy(f.net->forward(x), y);
      if (f.penalty > 0) {
        loss = loss + f.penalty * (f.cost_matrices.empty() ? f.net->complexity_loss(ComplexityNormaliser::first_layer)
                                                           : f.net->expected_cost(f.cost_matrices));
      }
      f.weights->zero_grad();
      if (f.arch) f.arch->zero_grad();
      loss.backward();
      f.weights->step();
      if (f.arch) f.arch->step();
      (void)loss.item<float>();
      synchronize(device);
      const auto t2 = Clock::now();
      if (step >= o.warmup) {
        times[i].push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
        assembly[i].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        peaks[i].push_back(double(memory.peak() - live_before + state_bytes(f.net)) / (1024.0 * 1024.0));
      }
    }
  }
  std::vector<StepTiming> rows;
  for (size_t i = 0; i < forms.size(); ++i) {
    StepTiming t;
    t.form = forms[i].name;
    t.median_ms = median(times[i]);
    t.batch_assembly_ms = median(assembly[i]);
    t.peak_memory_mib = *std::max_element(peaks[i].begin(), peaks[i].end());
    rows.push_back(t);
  }
  // Each row against the float form of its own network.
  const StepTiming* reference = &rows[0];
  for (auto& r : rows) {
    if (r.form == "imported float") reference = &r;
    r.ratio_to_float = r.median_ms / reference->median_ms;
    r.memory_ratio_to_float = r.peak_memory_mib / reference->peak_memory_mib;
  }
  return rows;
}

namespace {
std::string join(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

/// The machine the figures come from: LibTorch, and the GPU with its driver.
std::string device_description(const StepBenchmarkOptions& o) {
  std::string text = "LibTorch " TORCH_VERSION ", device " + o.device;
#ifdef EDMIPS_WITH_CUDA
  if (o.device == "cuda") {
    cudaDeviceProp properties{};
    int driver = 0, runtime = 0;
    cudaGetDeviceProperties(&properties, 0);
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    text += std::string(" (") + properties.name + ", CUDA driver API " + std::to_string(driver / 1000) + "." +
            std::to_string(driver % 1000 / 10) + ", runtime " + std::to_string(runtime / 1000) + "." +
            std::to_string(runtime % 1000 / 10) + ", fused CUDA quantizers)";
  }
#endif
  return text;
}

}  // namespace

void print_step_table(std::ostream& out, const StepBenchmarkOptions& o, const std::vector<StepTiming>& rows) {
  out << "model " << o.model << ", batch " << o.batch << ", input " << o.channels << "x" << o.height << "x"
      << o.width << ", weights {" << join(o.weight_bits) << "}, activations {" << join(o.activation_bits)
      << "}, threads " << o.threads << ", median of " << o.steps << " steps after " << o.warmup << " warm-up\n"
      << device_description(o) << "\n"
      << "peak MiB: the step's peak of live tensor bytes above what was live before it ("
      << (o.device == "cuda" ? "CUDA caching allocator" : "counting CPU allocator")
      << "), plus the form's parameters, gradients and momentum\n\n";
  if (!o.onnx.empty()) {
    out << "imported: " << o.onnx << " (its rows' \"x\" columns compare with the imported float form)\n\n";
  }
  out << "| form | ms/step | x float | peak MiB | x float | batch assembly ms (% of step) |\n"
      << "|---|---:|---:|---:|---:|---:|\n";
  out << std::fixed;
  for (const auto& r : rows) {
    out << "| " << r.form << " | " << std::setprecision(1) << r.median_ms << " | " << std::setprecision(2)
        << r.ratio_to_float << " | " << std::setprecision(1) << r.peak_memory_mib << " | " << std::setprecision(2)
        << r.memory_ratio_to_float << " | " << std::setprecision(2) << r.batch_assembly_ms << " ("
        << std::setprecision(1) << 100.0 * r.batch_assembly_ms / r.median_ms << "%) |\n";
  }
  // Side by side: the imported network's step against the built-in one's.
  auto find = [&](const std::string& form) {
    const auto it = std::find_if(rows.begin(), rows.end(), [&](const StepTiming& r) { return r.form == form; });
    return it == rows.end() ? nullptr : &*it;
  };
  for (const char* form : {"float", "search (composite)", "fixed (derived)"}) {
    const auto* ours = find(form);
    const auto* imported = find(std::string("imported ") + form);
    if (!ours || !imported) continue;
    out << "\nimported / " << o.model << ", " << form << ": " << std::setprecision(2)
        << imported->median_ms / ours->median_ms << "x time, " << imported->peak_memory_mib / ours->peak_memory_mib
        << "x peak memory";
  }
  if (!o.onnx.empty()) out << "\n";
  // The table cost's price in the search step (docs/costs.md): the same
  // composite search, its loss from the cost matrices instead of BitOps.
  if (const auto* plain = find("search (composite)"), *table = find("search (composite, table cost)"); plain && table) {
    out << "\ntable cost / BitOps search step: " << std::setprecision(3) << table->median_ms / plain->median_ms
        << "x (" << std::showpos << std::setprecision(1) << 100.0 * (table->median_ms / plain->median_ms - 1)
        << std::noshowpos << "%)\n";
  }
}

}  // namespace edmips
