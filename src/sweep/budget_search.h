// sweep: choosing lambda for a cost budget. Given the probes of one search
// family (the same model, data, candidate bits, seed and search settings,
// differing only in lambda) and a budget, it says which lambdas to probe next
// or which probe's allocation meets the budget. It is a pure function of its
// inputs, so a coordinator that replays its journal after a crash makes the
// same decisions again. No LibTorch and no MPI here.
//
// Method (docs/budgets.md): the derived cost falls with lambda, as a noisy
// step function. Probes bracket the budget in log lambda (steps of
// `step_factor`, or a secant step from two probes on one side), then the
// bracket is narrowed by interpolating log cost linearly in log lambda,
// safeguarded to stay inside the bracket's middle 80%. A bracket narrower
// than `min_bracket_decades` is a plateau edge (the cost jumps over the
// window); after `max_probes` probes, or at a plateau edge, the search gives
// up and names the most expensive probe that is still under the budget.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sweep/kinds.h"

namespace edmips {

/// One finished search-only trial: its lambda and its derived allocation's cost.
struct BudgetProbe {
  double lambda = 0;  ///< > 0
  double cost = 0;
  std::string trial;  ///< its trial ID
};

struct BudgetTarget {
  double value = 0;       ///< the budget: a hard upper bound on the cost
  double tolerance = 0.05;  ///< relative: costs in [value x (1 - tolerance), value] meet it
};

struct BudgetSearchSettings {
  double initial_lambda = 1e-3;   ///< first probe when the family has none
  double step_factor = 10;        ///< bracketing step in lambda
  int max_probes = 8;             ///< probes this budget started itself before it gives up
  int max_parallel = 1;           ///< probes of one budget in flight at once (budgets and families run side by side)
  double min_bracket_decades = 0.02;  ///< narrower than this in log10 lambda: a plateau edge
};


struct BudgetDecision {
  BudgetState state = BudgetState::searching;
  std::vector<double> next;           ///< lambdas to start now, best first (at most the free slots)
  std::optional<BudgetProbe> chosen;  ///< met or gave_up
  std::string reason;                 ///< gave_up / impossible: why, in words
};

/// True when `cost` meets the budget's window.
bool meets_budget(const BudgetTarget& target, double cost);

/// The next step for one budget. `finished`: every finished probe of the
/// family (any order, whichever budget or sweep started it); `running`:
/// lambdas of the family's probes in flight; `own_probes`: how many probes
/// this budget has started (finished or running; probes reused from others
/// are free); `free_slots`: how many probes the caller could start now. At
/// most settings.max_parallel probes that can inform this budget (any
/// before the first result, then those beyond the bracketing frontier or
/// inside the bracket, whichever budget started them) are in flight at once.
BudgetDecision decide_budget(const BudgetTarget& target, const std::vector<BudgetProbe>& finished,
                             const std::vector<double>& running, int own_probes, int free_slots,
                             const BudgetSearchSettings& settings = {});

}  // namespace edmips
