// bench: measures training-step cost of the same model in four forms
// (float, search with the composite convolution, naive |W|x|A| search, derived
// fixed precision), interleaved, with peak memory. No LibTorch in the header.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace edmips {

struct StepBenchmarkOptions {
  std::string model = "resnet20";
  int64_t batch = 128;
  int64_t channels = 3, height = 32, width = 32, classes = 10;
  std::vector<int> weight_bits = {1, 2, 3, 4};
  std::vector<int> activation_bits = {2, 3, 4};
  int steps = 20;   ///< measured steps per form (after warm-up)
  int warmup = 3;
  int threads = 2;
  bool naive = true;  ///< also measure the naive search (slow)
  std::string device = "cpu";  ///< "cpu" or "cuda" (GPU 0; CUDA_VISIBLE_DEVICES picks it)
  std::string onnx;  ///< non-empty: also this imported network's float and search forms, beside the model's
};

struct StepTiming {
  std::string form;
  double median_ms = 0;
  double ratio_to_float = 0;
  double peak_memory_mib = 0;        ///< see print_step_table's note (CUDA: the caching allocator's peak)
  double memory_ratio_to_float = 0;
  double batch_assembly_ms = 0;
};

/// Runs the benchmark; returns one row per form.
std::vector<StepTiming> run_step_benchmark(const StepBenchmarkOptions& options);

/// Prints rows as a Markdown table.
void print_step_table(std::ostream& out, const StepBenchmarkOptions& options, const std::vector<StepTiming>& rows);

}  // namespace edmips
