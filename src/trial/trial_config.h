// trial: the typed description of one EdMIPS trial (search -> derive ->
// retrain -> evaluate, or a fixed-precision baseline), parsed once from JSON
// with path-precise errors. No LibTorch: sweeps and validation use it too.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset_config.h"
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

/// The mixed-precision search (the paper's lambda is complexity_penalty).
struct SearchConfig {
  std::vector<int> weight_bits = {1, 2, 3, 4};
  std::vector<int> activation_bits = {2, 3, 4};
  double complexity_penalty = 0.0;
  std::string normaliser = "first-layer";  ///< "first-layer" or "total"
  double arch_lr = 0.01;
  double arch_weight_decay = 1e-4;
  double arch_init = 0.01;
  Schedule schedule;
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
  std::string model = "simple-cnn";
  bool full_precision_first = true;
  bool full_precision_last = true;
  TrialMode mode = TrialMode::search;
  SearchConfig search;                  ///< mode == search
  int uniform_weight_bits = 2;          ///< mode == uniform
  int uniform_activation_bits = 2;      ///< mode == uniform
  BitAllocation allocation;             ///< mode == allocation
  Schedule train;                       ///< retraining of the derived / fixed network
};

/// Parses and validates a trial config; errors name `source` and the JSON path
/// below `pointer`.
TrialConfig parse_trial_config(const nlohmann::json& j, const std::string& source,
                               const std::string& pointer = "");

/// The fully resolved config (every default written out), canonical: the same
/// trial always gives the same JSON.
nlohmann::json to_json(const TrialConfig& config);

/// Stable ID of a trial: hash of its canonical JSON without the fields that do
/// not change what is computed (name, threads, device).
std::string trial_id(const TrialConfig& config);

std::string to_string(TrialMode mode);

}  // namespace edmips
