#include "sweep/executor.h"

#include <chrono>
#include <algorithm>
#include <cmath>
#include <thread>

#include "core/error.h"
#include "core/files.h"
#include "core/json_reader.h"
#include "sweep/synthetic_cost.h"

namespace edmips {
namespace fs = std::filesystem;

namespace {

class RealExecutor : public TrialExecutor {
 public:
  nlohmann::json run(const TrialConfig& config, const fs::path& directory, const TrialRunOptions& options) override {
    return runner_.run(config, directory, options);
  }

 private:
  TrialRunner runner_;
};

/// Sleeps through 10 steps, checkpointing the step count in the trial
/// directory, so a resumed trial continues where it stopped.
class FakeExecutor : public TrialExecutor {
 public:
  explicit FakeExecutor(const FakeExecutorOptions& options) : options_(options) {}
  // A no-op trial (duration 0) still reads and writes its files like a real one.

  nlohmann::json run(const TrialConfig& config, const fs::path& directory, const TrialRunOptions& options) override {
    fs::create_directories(directory);
    if (auto done = read_trial_result(directory, trial_id(config))) return *done;
    const auto progress_path = directory / "fake-progress.json";
    nlohmann::json progress = {{"step", 0}, {"resumed_from_step", 0}, {"attempts", 0}};
    if (fs::exists(progress_path)) progress = load_state_file(progress_path.string());
    progress["attempts"] = progress["attempts"].get<int>() + 1;
    progress["resumed_from_step"] = progress["step"];
    write_file_atomically(progress_path, progress.dump());
    const auto seed = int64_t(config.seed);
    if (seed == options_.fail_always_seed || (seed == options_.fail_once_seed && progress["attempts"] == 1)) {
      throw Error("fake failure injected for seed " + std::to_string(seed));
    }
    // Steps end at fixed deadlines from the (re)start, so a trial lasts its
    // duration whatever its own file writes cost.
    const auto step_time = std::chrono::duration<double>(options_.duration_s / 10.0);
    const auto begin = std::chrono::steady_clock::now();
    const int first_step = progress["step"];
    for (int step = first_step; step < 10 && options_.duration_s > 0; ++step) {
      const auto until = begin + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                     step_time * double(step + 1 - first_step));
      if (options_.busy) {
        // Keep one core busy, as a real trial's thread would.
        volatile double sink = 1.0;
        while (std::chrono::steady_clock::now() < until) {
          for (int k = 0; k < 1000; ++k) sink = sink * 1.0000001 + 1e-9;
        }
      } else {
        std::this_thread::sleep_until(until);
      }
      progress["step"] = step + 1;
      write_file_atomically(progress_path, progress.dump());
      if (options.stop_requested && options.stop_requested->load() && step + 1 < 10) {
        throw Interrupted("fake trial stopped at step " + std::to_string(step + 1));
      }
    }
    // A plausible trade-off: more penalty, fewer bits, a little less accuracy.
    const double penalty = config.mode == TrialMode::search ? config.search.complexity_penalty : 0.0;
    const bool search_only = config.mode == TrialMode::search && !config.search.retrain;
    double bits = config.mode == TrialMode::uniform
                      ? std::sqrt(double(config.uniform_weight_bits * config.uniform_activation_bits))
                      : 1.5 + 2.0 / (1.0 + 100.0 * penalty);
    nlohmann::json allocation = {{"model", config.model},
                                 {"layers", {{{"layer", "conv2"}, {"weight_bits", 2}, {"activation_bits", 2}}}}};
    if (search_only) {
      // Budget probes: a noisy stepwise cost(lambda), one random curve per
      // seed, and an allocation of 50 layers whose mean bits are that cost,
      // so retraining it (below) costs exactly what the probe said.
      bits = SyntheticCostCurve::random(config.seed + 1)(penalty);
      const int step = int(std::llround(bits * 50));
      nlohmann::json layers = nlohmann::json::array();
      for (int i = 0; i < 50; ++i) {
        const int b = step / 50 + (i < step % 50 ? 1 : 0);
        layers.push_back({{"layer", "fake" + std::to_string(i)}, {"weight_bits", b}, {"activation_bits", b}});
      }
      allocation["layers"] = layers;
    } else if (config.mode == TrialMode::allocation) {
      allocation = to_json(config.allocation);
      double sum = 0;
      for (const auto& l : config.allocation.layers) sum += std::sqrt(double(l.weight_bits * l.activation_bits));
      bits = sum / double(std::max<size_t>(1, config.allocation.layers.size()));
    }
    TrialRecord record;
    record.id = trial_id(config);
    record.mode = search_only ? "search-only" : to_string(config.mode);
    if (!search_only) {
      record.top1 = 80.0 + 3.0 * std::log2(bits) + 0.1 * double(config.seed % 5);
      record.top5 = std::min(100.0, record.top1.get<double>() + 12.0);
      record.test_loss = 0.5;
    }
    record.bitops = bits * bits * 1e6;
    record.normalised_bits = bits;
    record.weight_memory_bits = bits * 1e5;
    record.activation_memory_bits = bits * 2e4;
    record.total_macs = 1200000;
    record.quantized_macs = 1000000;
    record.allocation = allocation;
    record.train_s = options_.duration_s;
    record.device = "fake";
    if (config.mode == TrialMode::search) record.search_summary = {{"expected_normalised_bits", bits}};
    auto result = result_json(config, record);
    result["fake"] = true;
    result["resumed_from_step"] = progress["resumed_from_step"];
    write_file_atomically(directory / trial_files::result, result.dump(2) + "\n");
    return result;
  }

 private:
  FakeExecutorOptions options_;
};

}  // namespace

std::unique_ptr<TrialExecutor> make_trial_executor() { return std::make_unique<RealExecutor>(); }

std::unique_ptr<TrialExecutor> make_fake_executor(const FakeExecutorOptions& options) {
  return std::make_unique<FakeExecutor>(options);
}

}  // namespace edmips
