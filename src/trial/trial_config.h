// trial: the typed description of one EdMIPS trial (search -> derive ->
// retrain -> evaluate, or a fixed-precision baseline), parsed once from JSON
// with path-precise errors. No LibTorch: sweeps and validation use it too.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset_config.h"
#include "nn/cost_model.h"
#include "nn/precision.h"

namespace edmips {

/// An SGD schedule with step learning-rate decay.
struct Schedule {
  int epochs = 1;
  int64_t batch_size = 128;
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 1e-4;
  int lr_step_epochs = 10;  ///< multiply the learning rates by lr_gamma every this many epochs
  double lr_gamma = 0.1;
};

/// How the architecture parameters (the alphas) are optimised. A preset fills
/// every field; fields given beside it override it. docs/search-settings.md
/// says what each preset is for and how lambda's scale relates to each.
struct ArchSettings {
  std::string preset = "scaled";     ///< "paper" (the released code) or "scaled"
  std::string optimizer = "adam";    ///< "sgd" (momentum of the search schedule) or "adam" (betas 0.5, 0.999)
  double lr = 3e-4;                  ///< per step; see reference_steps
  /// When > 0, the lr used is lr * reference_steps / (steps the alphas move),
  /// so the alphas can move as far in a short search as in `reference_steps`
  /// steps at `lr`. 0 uses `lr` as given.
  int64_t reference_steps = 100000;
  bool lr_decay = false;             ///< follow the weights' step decay (the released code does)
  double weight_decay = 0;
  /// Epochs in which only the weights train (alphas frozen, no penalty); -1
  /// (the scaled preset's) means a quarter of the search epochs, rounded down.
  int warmup_epochs = -1;
  double init = 0.01;                ///< every alpha's initial value (equal: uniform probabilities)
  /// Softmax temperature at the search's last step; it falls geometrically
  /// from 1 at the first step the alphas move. 1 keeps the plain softmax.
  double final_temperature = 0.1;
};

/// The named presets' settings ("paper", "scaled"); ConfigError otherwise.
ArchSettings arch_preset(const std::string& name);

/// The mixed-precision search (the paper's lambda is complexity_penalty).
struct SearchConfig {
  std::vector<int> weight_bits = {1, 2, 3, 4};
  std::vector<int> activation_bits = {2, 3, 4};
  double complexity_penalty = 0.0;
  std::string normaliser = "first-layer";  ///< "first-layer" or "total"
  /// What the complexity loss prices (docs/costs.md): BitOps by default.
  CostModel cost;
  ArchSettings arch;
  Schedule schedule;
  /// false: a search-only trial (search + derive, no retraining; the result
  /// has the derived allocation and its cost, top1 null). The budget search
  /// runs these as probes. Its ID ignores the "train" schedule.
  bool retrain = true;
};

enum class TrialMode {
  search,      ///< search, derive, retrain the derived network
  uniform,     ///< same bits everywhere, no search
  allocation,  ///< retrain a given per-layer allocation, no search
};

struct TrialConfig {
  std::string name;     ///< free text, not part of the trial ID
  uint64_t seed = 0;
  int threads = 0;               ///< 0 = all cores; not part of the trial ID
  std::string device = "cpu";    ///< "cpu", "cuda" or "auto"; not part of the trial ID
  DatasetConfig dataset;
  std::string model = "simple-cnn";  ///< a built-in model, or an imported one's display name
  /// An imported model ("model": {"onnx": PATH}): the file, absolute; empty
  /// for a built-in model. Not part of the trial ID: its content is.
  std::string model_onnx;
  /// stable_id of the ONNX file's bytes (part of the trial ID), read at parse.
  std::string model_onnx_content;
  /// Where an imported model's training starts: "imported" (its weights and
  /// BatchNorm statistics, the default) or "scratch" (random, the paper's protocol).
  std::string init = "scratch";
  bool full_precision_first = true;
  bool full_precision_last = true;
  /// How MACs (so BitOps and normalised bits) are counted: "output" or "released".
  std::string cost_convention = "output";
  /// The quantizers' step constants: "computed" (MSE-optimal, the default) or
  /// "released" (the released quant_module.py's table; the default of a
  /// search with the "paper" preset).
  std::string quantizer_steps = "computed";
  TrialMode mode = TrialMode::search;
  SearchConfig search;                  ///< mode == search
  int uniform_weight_bits = 2;          ///< mode == uniform
  int uniform_activation_bits = 2;      ///< mode == uniform
  BitAllocation allocation;             ///< mode == allocation
  Schedule train;                       ///< retraining of the derived / fixed network
  /// Retraining: evaluate on the test set every this many epochs (and at the
  /// last), so result.json has the released protocol's best epoch
  /// (`best_epoch`); 0 evaluates once, at the end.
  int eval_every = 0;
  /// Data parallelism (a sweep's "ranks_per_trial"; "data_parallel" in a
  /// trial config): the ranks that run this trial together, each on its
  /// shard of every global batch, and whether BatchNorm uses the global
  /// batch's statistics (synchronised) or each rank's own (the released
  /// DataParallel's behaviour, the default). Part of the trial ID only where
  /// it changes what is computed: ranks > 1 with per-rank statistics.
  int data_parallel_ranks = 1;
  bool sync_batch_norm = false;
  /// Where the allocation was given ("FILE: /allocation"), for errors found
  /// only when the model is built. Not part of the trial (nor its ID).
  std::string allocation_source;
};

/// Parses and validates a trial config; errors name `source` and the JSON path
/// below `pointer`. A relative "model"/"onnx" path is resolved against
/// `relative_to` (the config or sweep file's folder; the working directory when empty).
TrialConfig parse_trial_config(const nlohmann::json& j, const std::string& source,
                               const std::string& pointer = "",
                               const std::filesystem::path& relative_to = {});

/// The fully resolved config (every default written out), canonical: the same
/// trial always gives the same JSON.
nlohmann::json to_json(const TrialConfig& config);

/// Bumped whenever the same config computes something else (2: the released
/// code's model layouts and the architecture optimiser settings).
constexpr int kEngineVersion = 2;

/// Stable ID of a trial: hash of its canonical JSON without the fields that do
/// not change what is computed (name, threads, device).
std::string trial_id(const TrialConfig& config);

std::string to_string(TrialMode mode);

}  // namespace edmips
