// pareto: what a user reads after a sweep. Collects finished trials from one
// or more sweep directories (also while a sweep runs), averages seeds per
// configuration, computes each group's front and hypervolume and the
// dominance of mixed precision over uniform baselines, and writes
// pareto.csv, pareto.json and report.md. No LibTorch, no MPI.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pareto/front.h"

namespace edmips {

/// Which measure is the cost on the front.
enum class CostMeasure { bitops, normalised_bits, weight_memory_bits };
CostMeasure parse_cost_measure(const std::string& text);  ///< ConfigError on anything else
std::string to_string(CostMeasure measure);

struct ParetoOptions {
  std::vector<std::filesystem::path> directories;
  CostMeasure cost = CostMeasure::bitops;
  std::optional<ParetoPoint> reference;  ///< default: 1.1 x the largest cost, the lowest accuracy
};

/// One configuration (a trial config without its seed), seeds averaged.
struct Configuration {
  std::string configuration_id;
  std::string group;
  std::string kind;  ///< "search", "uniform" or "budget" (a budget's retrained allocation)
  std::string model, dataset, weight_bits, activation_bits;
  std::optional<double> complexity_penalty;
  std::vector<nlohmann::json> trials;  ///< id, seed, top1, bitops, normalised_bits, allocation
  double top1_mean = 0, top1_std = 0;
  double bitops_mean = 0, normalised_bits_mean = 0, weight_memory_bits_mean = 0;
  std::optional<double> expected_normalised_bits_mean;
  double cost = 0;  ///< the chosen measure's mean
  bool on_front = false;
  /// Search trials whose search ended with every layer decided / not so
  /// (trials of engines that did not record it count in neither).
  int decided_trials = 0, undecided_trials = 0;
  bool undecided() const { return undecided_trials > 0; }
  std::optional<double> budget;  ///< kind "budget": the budget (in budget_cost)
  std::string budget_cost;
  std::optional<double> probes_mean;  ///< kind "budget": probes each seed's budget started
};

/// One budget of a sweep (one seed): what the budget search decided and,
/// once retrained, how the allocation performs.
struct BudgetResult {
  std::string group, configuration_id, source;
  std::string model, dataset, weight_bits, activation_bits, cost;
  uint64_t seed = 0;
  double budget = 0, tolerance = 0;
  std::string state;  ///< met, gave_up, impossible, failed
  std::string reason;
  std::optional<double> lambda, chosen_cost;
  int own_probes = 0, family_probes = 0;
  std::string retrain;  ///< the retraining's trial ID (met, gave_up)
  std::optional<double> top1;  ///< once retrained
  std::string allocation;  ///< "w/a" per layer, once decided
};

struct Group {
  std::string name;
  std::string kind, model, dataset, weight_bits, activation_bits;
  std::vector<size_t> configurations;  ///< indices into ParetoReport::configurations
  std::vector<size_t> front;           ///< front configurations, by increasing cost
  double hypervolume = 0;
};

/// For one uniform baseline and one mixed group of the same model and dataset.
struct Dominance {
  size_t baseline;  ///< configuration index
  std::string mixed_group;
  std::optional<size_t> best_mixed;  ///< most accurate mixed configuration with BitOps <= the baseline's
  std::optional<double> accuracy_gain;  ///< best_mixed top1 - baseline top1
  std::optional<double> front_accuracy_at_baseline;  ///< mixed front interpolated at the baseline's BitOps
  std::optional<double> front_gain;
};

struct ParetoReport {
  CostMeasure cost = CostMeasure::bitops;
  ParetoPoint reference;
  std::vector<std::string> sources;
  size_t trials = 0;
  size_t probes = 0;  ///< search-only budget probes (not points: nothing was evaluated)
  std::vector<Configuration> configurations;
  std::vector<BudgetResult> budgets;  ///< by budget, model, bits, seed
  std::vector<Group> groups;
  std::vector<Dominance> dominance;
};

/// Reads every directory's journal (finished trials only) and analyses them.
/// Error when a directory holds no sweep journal or no finished trial.
ParetoReport analyse_sweeps(const ParetoOptions& options);

nlohmann::json to_json(const ParetoReport& report);
void print_report(std::ostream& out, const ParetoReport& report);
/// Writes pareto.csv, pareto.json and report.md into `directory`.
void write_report_files(const ParetoReport& report, const std::filesystem::path& directory);

}  // namespace edmips
