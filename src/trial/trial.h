// trial: runs one trial end to end in a directory it owns, resumably:
// search -> derive -> retrain -> evaluate. Knows nothing of MPI or sweeps;
// the caller passes a stop flag and a progress sink. LibTorch stays in the
// .cpp (pimpl), so sweep code can include this header cheaply.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "trial/trial_config.h"

namespace edmips {

class ProcessGroup;

/// Where a phase stands within its epoch, after each batch (live progress).
struct BatchProgress {
  std::string phase;  ///< "search" or "train"
  int epoch = 0, epochs = 0;  ///< 1-based epoch and the phase's epoch count
  int64_t batch = 0, batches = 0;  ///< batches done in this epoch, and per epoch
  double loss = 0;                ///< running mean loss of the epoch
  double images_per_second = 0;   ///< over this run of the epoch
  double eta_s = 0;               ///< whole trial, from this run's speed
};

/// "search epoch 3/8  batch 120/469  loss 0.4312  1250 img/s  eta 12.3m".
std::string to_string(const BatchProgress& progress);

/// How a trial runs (not what it computes).
struct TrialRunOptions {
  int threads = 0;                                   ///< overrides config.threads when > 0
  const std::atomic<bool>* stop_requested = nullptr; ///< checked after every batch
  std::function<void(const std::string&)> progress;  ///< one line per epoch; none = silent
  std::function<void(const BatchProgress&)> batch_progress;  ///< after every batch; none = not called
  int node_local_rank = 0;  ///< with CUDA: use GPU node_local_rank % device count
  /// The ranks that run this trial together (config.data_parallel_ranks of
  /// them); none = this process alone. Only the group's rank 0 writes files.
  ProcessGroup* group = nullptr;
};

/// Files a trial writes into its directory.
namespace trial_files {
constexpr const char* config = "config.json";
constexpr const char* allocation = "allocation.json";
constexpr const char* history = "history.json";
constexpr const char* checkpoint = "checkpoint.pt";
constexpr const char* result = "result.json";
}  // namespace trial_files

/// What every finished trial's result.json records, whoever ran it (the
/// engine, or the sweep's fake executor in tests): one schema, one builder.
/// Nulls where nothing was evaluated (a search-only budget probe).
struct TrialRecord {
  std::string id;
  std::string mode;  ///< "search", "allocation", "uniform" or "search-only"
  nlohmann::json top1, top5, test_loss, test_images;
  /// {"epoch", "top1", "top5", "test_loss", "evaluated_epochs"}: the best
  /// per-epoch test evaluation (train.eval_every); null without one.
  nlohmann::json best_epoch;
  nlohmann::json validation_top1, validation_loss, validation_images;
  double bitops = 0, normalised_bits = 0, weight_memory_bits = 0;
  double activation_memory_bits = 0;  ///< per image
  /// A search under a cost table: the deployed network's cost in it and the
  /// table's unit; null otherwise (and left out of result.json).
  nlohmann::json table_cost, table_unit;
  int64_t total_macs = 0, quantized_macs = 0;
  nlohmann::json allocation;  ///< {"model", "layers": [...]}
  double search_s = 0, train_s = 0, eval_s = 0, this_run_s = 0;
  int threads = 0;
  std::string device;
  nlohmann::json search_summary;  ///< a search's "search" object
};
/// result.json for `record` of `config`'s trial: the record's fields and the
/// config's (name, model, dataset, seed; a search's penalty and candidates,
/// a uniform trial's bits).
nlohmann::json result_json(const TrialConfig& config, const TrialRecord& record);

/// Runs trials, keeping loaded datasets in memory between them.
class TrialRunner {
 public:
  TrialRunner();
  ~TrialRunner();
  TrialRunner(const TrialRunner&) = delete;
  TrialRunner& operator=(const TrialRunner&) = delete;

  /// Runs (or resumes, or just reads back) the trial in `directory` and
  /// returns its result JSON. Throws Interrupted after checkpointing when a
  /// stop is requested, DivergenceError on a NaN/inf loss, DataError, ...
  nlohmann::json run(const TrialConfig& config, const std::filesystem::path& directory,
                     const TrialRunOptions& options);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Throws ConfigError when `config` asks for device "cuda" and this process
/// sees no CUDA device, naming the host (a sweep checks every trial on every
/// rank before any trial starts).
void check_device_available(const TrialConfig& config);

/// LibTorch's version, whether this build has the fused CUDA kernels, and
/// the CUDA devices this process sees (for `edmips --version`).
std::string torch_description();

class NetworkImpl;
struct Dataset;

/// A finished trial's final network, rebuilt for export: the config it ran
/// with (config.json), its fixed allocation, and its trained weights from
/// the checkpoint (or, with no retraining epochs, its starting weights
/// calibrated as the trial calibrated them). In evaluation mode, on the CPU.
/// ConfigError when `directory` holds no finished trial.
struct TrainedNetwork {
  TrialConfig config;
  std::string trial_id;
  nlohmann::json result;
  std::shared_ptr<NetworkImpl> network;
  /// The dataset it was built for (its shape) and evaluated on (data/dataset.h).
  std::shared_ptr<const Dataset> data;
  /// The input normalisation the network was trained with: {"mean": [...], "std": [...]}.
  nlohmann::json input_normalisation;
};
TrainedNetwork load_trained_network(const std::filesystem::path& directory);

/// The cost table template for `config`'s network (edmips cost-table): every
/// quantized layer of its search network by name with its shape key, MACs,
/// weights and input elements per image, and the (weight, activation) pairs
/// a search and the deployed network can price (candidates rounded up to
/// search.cost's supported widths), each null: to be measured and filled in.
/// Reads the dataset only for the input's shape.
nlohmann::json cost_table_template(const TrialConfig& config);

/// The result of a finished trial in `directory`, if there is one. A result
/// that is not `expected_id`'s (another trial's result.json copied here, or an
/// older engine's) is refused, ConfigError (exit 2) naming both IDs; a damaged
/// one is an IoError (exit 3).
std::optional<nlohmann::json> read_trial_result(const std::filesystem::path& directory,
                                                const std::string& expected_id);

}  // namespace edmips
