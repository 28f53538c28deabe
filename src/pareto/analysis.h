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
#include "sweep/kinds.h"

namespace edmips {

/// Which measure is the cost on the front.
CostMeasure parse_cost_measure(const std::string& text);  ///< ConfigError on anything else
/// The measure as a reader names it: "BitOps", "normalised bits", "weight memory bits",
/// "activation memory bits", "table cost".
std::string cost_title(CostMeasure measure);
/// The unit of a measure's figures: "bit-ops", "bits", or a table's own
/// (`table_unit`); "" for normalised bits (a width, no unit).
std::string cost_unit(CostMeasure measure, const std::string& table_unit);

/// The confidence level of every interval the report states.
constexpr double kConfidence = 0.95;

/// How sure an accuracy is: a 95% interval around the seeds' mean.
struct Uncertainty {
  /// "seeds" (Student's t over n >= 2 seeds' top-1), "test set" (one seed:
  /// the Wilson interval of its test images) or "none" (one seed of an
  /// engine that did not record its test-set size).
  std::string basis = "none";
  double low = 0, high = 0;    ///< the interval, top-1 %
  double half_width = 0;       ///< (high - low) / 2; 0 with basis "none"
};
/// Student's t interval of a mean of `n` values with sample std `std`.
Uncertainty seed_interval(double mean, double std, size_t n);
/// Wilson score interval of `top1` % correct out of `images`.
Uncertainty binomial_interval(double top1, int64_t images);

struct ParetoOptions {
  std::vector<std::filesystem::path> directories;
  CostMeasure cost = CostMeasure::bitops;
  std::optional<ParetoPoint> reference;  ///< default: 1.1 x the largest cost, the lowest accuracy
  /// Each trial's best per-epoch test top-1 (train.eval_every, the released
  /// protocol's figure) instead of its final epoch's; trials without
  /// per-epoch evaluations keep their final epoch.
  bool best_epoch = false;
  /// With cost table: a cost table file (docs/costs.md) that prices every
  /// trial's quantized layers as deployed (result.json's layers). Without
  /// it, `table` reads each trial's own table_cost (searches under a table).
  std::string cost_table{};
};

/// One configuration (a trial config without its seed), seeds averaged.
struct Configuration {
  std::string configuration_id;
  std::string group;
  TrialKind kind = TrialKind::search;  ///< search, uniform or budget (a budget's retrained allocation)
  std::string model, dataset, weight_bits, activation_bits;
  std::optional<double> complexity_penalty;
  std::vector<nlohmann::json> trials;  ///< id, seed, top1, bitops, normalised_bits, allocation
  double top1_mean = 0, top1_std = 0;
  std::optional<int64_t> test_images;  ///< smallest over the seeds; absent from engines that did not record it
  Uncertainty top1_interval;
  /// On the validation images held back from training (dataset.validation_subset), when every seed has them.
  std::optional<double> validation_top1_mean;
  double validation_top1_std = 0;
  std::optional<int64_t> validation_images;
  /// What fronts, dominance and recommendations choose by: the validation
  /// mean when the report selects on validation, else the test mean.
  double selection_top1 = 0;
  Uncertainty selection_interval;
  double bitops_mean = 0, normalised_bits_mean = 0, weight_memory_bits_mean = 0;
  /// Absent where a seed's result has no such figure (results written before
  /// activation memory was recorded; trials without a table cost).
  std::optional<double> activation_memory_bits_mean, table_cost_mean;
  std::optional<double> expected_normalised_bits_mean;
  /// Search: the seeds' mean of (step of the latest choice change / arch steps).
  std::optional<double> settled_fraction_mean;
  double cost = 0;  ///< the chosen measure's mean
  /// A measure's seed mean, whichever was chosen.
  double cost_in(CostMeasure measure) const;
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
  TrialKind kind = TrialKind::search;  ///< search (every mixed configuration) or uniform
  std::string model, dataset, weight_bits, activation_bits;
  std::vector<size_t> configurations;  ///< indices into ParetoReport::configurations
  std::vector<size_t> front;           ///< front configurations, by increasing cost
  double hypervolume = 0;
};

/// What a trained comparison says once its uncertainty is counted.
enum class Verdict { better, tie, worse };
std::string to_string(Verdict verdict);

/// For one uniform baseline and one mixed group of the same model and
/// dataset, in the report's cost measure.
struct Dominance {
  size_t baseline;  ///< configuration index
  std::string mixed_group;
  std::optional<size_t> best_mixed;  ///< most accurate trained mixed configuration with cost <= the baseline's
  std::optional<double> accuracy_gain;  ///< best_mixed top1 - baseline top1 (seed means, test)
  std::optional<double> validation_gain;  ///< the same on validation, when the report selects on it
  /// 95% half-width of the gain: sqrt(h_mixed^2 + h_baseline^2) of the two
  /// configurations' intervals (independent estimates); 0 when neither has one.
  double gain_half_width = 0;
  std::optional<Verdict> verdict;  ///< better / tie (|gain| <= half-width) / worse; absent without best_mixed
  /// The mixed front's accuracy interpolated (log cost) at the baseline's
  /// cost: a network nobody trained, shown as interpolation only (on the
  /// selection accuracy: validation when the report selects on it).
  std::optional<double> front_accuracy_at_baseline;
  std::optional<double> front_gain;
};

/// The network to deploy at one cost limit: the most accurate trained
/// network (mixed or uniform, seed means) at no more cost than the limit,
/// and the cheapest one statistically tied with it, when there is one.
struct Recommendation {
  std::string limit;        ///< "W2A2's BitOps" or "budget 2 normalised_bits"
  std::string mixed_group;
  std::optional<size_t> baseline;   ///< the uniform configuration whose cost is the limit
  double limit_cost = 0;            ///< in `limit_measure`
  CostMeasure limit_measure = CostMeasure::bitops;
  size_t chosen = 0;                ///< configuration index
  std::optional<size_t> cheaper_tie;  ///< a cheaper configuration whose gap is inside the combined interval
  size_t trial = 0;                 ///< index into chosen's trials: its first seed
  std::string why;                  ///< one sentence
};

struct ParetoReport {
  CostMeasure cost = CostMeasure::bitops;
  std::string cost_unit;   ///< cost_unit(cost, the table's unit)
  std::string cost_table;  ///< ParetoOptions::cost_table
  /// True when every configuration has a validation accuracy: fronts,
  /// dominance and recommendations are then chosen on validation and their
  /// accuracies reported on test.
  bool select_on_validation = false;
  bool best_epoch = false;          ///< accuracies are best epochs (ParetoOptions::best_epoch)
  size_t without_best_epoch = 0;    ///< with best_epoch: trials that had no per-epoch evaluation
  ParetoPoint reference;
  std::vector<std::string> sources;
  size_t trials = 0;
  size_t probes = 0;  ///< search-only budget probes (not points: nothing was evaluated)
  std::vector<Configuration> configurations;
  std::vector<BudgetResult> budgets;  ///< by budget, model, bits, seed
  std::vector<Group> groups;
  std::vector<Dominance> dominance;
  std::vector<Recommendation> recommendations;
};

/// The report's cost with its unit, for axes and column headers:
/// "BitOps (bit-ops)", "table cost (microseconds)", "normalised bits".
std::string cost_label(const ParetoReport& report);

/// One comparison in words, the same in `pareto`, `report` and `status`:
/// "tie with W3A3: +0.02 +- 0.91 top-1 points (lambda 5e-05, 5% less BitOps)".
std::string comparison_text(const ParetoReport& report, const Dominance& dominance);
/// A configuration's name in every table: "W2A2", "lambda 0.0004", "budget 2 normalised_bits".
std::string configuration_label(const Configuration& configuration);
/// "86.93 +- 0.95 (95% CI over 3 seeds, std 0.38)" and the like.
std::string accuracy_text(const Configuration& configuration);

/// Reads every directory's journal (finished trials only) and analyses them.
/// Error when a directory holds no sweep journal or no finished trial.
ParetoReport analyse_sweeps(const ParetoOptions& options);

nlohmann::json to_json(const ParetoReport& report);
/// Where a trial's files are: SOURCE/trials/ID.
std::filesystem::path trial_directory(const nlohmann::json& trial);
void print_report(std::ostream& out, const ParetoReport& report);
/// Writes pareto.csv, pareto.json and report.md into `directory`.
void write_report_files(const ParetoReport& report, const std::filesystem::path& directory);

}  // namespace edmips
