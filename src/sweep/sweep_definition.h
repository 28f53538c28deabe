// sweep: a sweep file parsed into the list of trials it stands for (the
// cartesian product of its axes plus uniform baselines), each with a stable
// ID. No LibTorch and no MPI here: validate and plan use it as is.
#pragma once

#include <filesystem>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sweep/budget_search.h"
#include "sweep/kinds.h"
#include "trial/trial_config.h"

namespace edmips {

/// One trial of a sweep.
struct PlannedTrial {
  std::string id;
  TrialConfig config;
  TrialKind kind = TrialKind::search;
  double expected_cost = 0;    ///< relative; larger runs first
  nlohmann::json summary;      ///< flat description for plan tables and CSVs
  bool dynamic = false;        ///< made while the sweep runs (budgets): workers get its config with the trial
};

/// One budget of a "budgets" axis for one model x fields x seed x bit set:
/// the coordinator runs search-only probes (the `probe` config with lambdas
/// it chooses, docs/budgets.md) until a derived allocation's cost meets the
/// budget, then retrains that allocation (an allocation trial made from
/// `retrain`) as the budget's result.
struct BudgetGroup {
  std::string id;          ///< stable: the family, the cost measure, the value and the tolerance
  std::string family;      ///< the probes' family: trial ID of the probe config at lambda 0
  std::string siblings;    ///< the family with seed 0: families that differ only in their seed share it
  CostMeasure cost = CostMeasure::normalised_bits;  ///< what the budget bounds (its name is the result key)
  BudgetTarget target;
  TrialConfig probe;       ///< search-only; the lambda is set per probe
  TrialConfig retrain;     ///< the search trial the budget stands for (its train schedule retrains)
  nlohmann::json summary;  ///< flat description (kind "budget") for plan tables, the journal and CSVs
};

struct SweepDefinition {
  std::string name;
  std::string source;          ///< file it came from
  int max_retries = 1;
  /// Ranks that run each trial together (data parallel); every trial's
  /// config carries it as data_parallel.ranks.
  int ranks_per_trial = 1;
  nlohmann::json slurm;        ///< optional "slurm" section, as given (null if absent)
  std::vector<PlannedTrial> trials;  ///< in plan order (search trials, then baselines)
  std::vector<BudgetGroup> budgets;  ///< from the "budgets" axis (its trials are chosen while the sweep runs)
  BudgetSearchSettings budget_settings;
};

/// The search-only probe of `group` at `lambda`, as a planned trial (kind
/// "probe"; its summary names the family and the group that started it).
PlannedTrial make_budget_probe(const BudgetGroup& group, double lambda);

/// The retraining of the allocation a budget chose (kind "budget"): an
/// allocation trial of the group's model, data, seed and train schedule.
/// Two budgets that choose the same allocation share it (same ID).
PlannedTrial make_budget_retrain(const BudgetGroup& group, const BitAllocation& allocation, double lambda,
                                 int probes);

/// The most trials one sweep file may stand for (axes multiplied out, plus
/// baselines). A larger product is refused before anything is expanded.
constexpr double kMaxSweepTrials = 100000;

/// Parses and validates a sweep; ConfigError names the file and JSON path.
/// Relative ONNX model paths resolve against `relative_to` (load_sweep_file:
/// the sweep file's folder).
SweepDefinition parse_sweep(const nlohmann::json& j, const std::string& source,
                            const std::filesystem::path& relative_to = {});
SweepDefinition load_sweep_file(const std::string& path);

/// Values of a {"from", "to", "num", "scale"} range (scale "log" or "linear").
std::vector<double> expand_range(double from, double to, int num, const std::string& scale);

}  // namespace edmips
