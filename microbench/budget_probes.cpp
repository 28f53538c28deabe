// How many search probes the budget search needs per budget, on many random
// synthetic cost curves (sweep/synthetic_cost.h: sigmoid in log lambda,
// stepwise, noisy), against a log-spaced lambda grid that covers the same
// budgets. Prints figures; asserts nothing.
// Usage: budget_probes [CURVES] [TOLERANCE]   (default 2000 curves, 0.05)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sweep/budget_search.h"
#include "sweep/synthetic_cost.h"

using namespace edmips;

namespace {

struct FamilyRun {
  int probes = 0;   // distinct probes of the family
  int rounds = 0;   // rounds of parallel probes (wall time in probe durations)
  int met = 0, gave_up = 0, impossible = 0;
};

/// Every budget of one family searched together; each round, every budget
/// still searching may start up to `slots` probes, and they all finish
/// before the next round (probes of one round run on different ranks).
FamilyRun run_family(const SyntheticCostCurve& curve, const std::vector<double>& budgets, double tolerance,
                     int slots) {
  FamilyRun run;
  std::vector<BudgetProbe> probes;
  std::vector<bool> done(budgets.size(), false);
  std::vector<int> own(budgets.size(), 0);
  BudgetSearchSettings settings;
  settings.max_parallel = slots;
  for (int round = 0; round < 50; ++round) {
    std::vector<double> started;
    for (size_t b = 0; b < budgets.size(); ++b) {
      if (done[b]) continue;
      const auto d = decide_budget({budgets[b], tolerance}, probes, started, own[b], slots, settings);
      if (d.state != BudgetState::searching) {
        done[b] = true;
        run.met += d.state == BudgetState::met;
        run.gave_up += d.state == BudgetState::gave_up;
        run.impossible += d.state == BudgetState::impossible;
        continue;
      }
      started.insert(started.end(), d.next.begin(), d.next.end());
      own[b] += int(d.next.size());
    }
    if (started.empty()) break;
    ++run.rounds;
    for (double l : started) probes.push_back({l, curve(l), ""});
  }
  run.probes = int(probes.size());
  return run;
}

/// The fewest points of a log-spaced grid over [1e-6, 1e-1] (up to 400) for
/// which every budget has a grid lambda whose cost lies in its window.
int grid_points_needed(const SyntheticCostCurve& curve, const std::vector<double>& budgets, double tolerance) {
  for (int n = 2; n <= 400; ++n) {
    std::vector<double> costs;
    for (int i = 0; i < n; ++i) costs.push_back(curve(std::pow(10.0, -6 + 5.0 * i / (n - 1))));
    bool all = true;
    for (double b : budgets) {
      bool any = false;
      for (double c : costs) any = any || meets_budget({b, tolerance}, c);
      all = all && any;
    }
    if (all) return n;
  }
  return 401;
}

}  // namespace

int main(int argc, char** argv) {
  const int curves = argc > 1 ? std::atoi(argv[1]) : 2000;
  const double tolerance = argc > 2 ? std::atof(argv[2]) : 0.05;
  std::printf("budget search on %d random cost curves, 3 budgets each (20%%, 50%%, 80%% of the way from the floor),"
              " tolerance %.3g\n",
              curves, tolerance);
  std::printf("%-34s %14s %14s %10s %10s %10s\n", "mode", "probes/budget", "rounds/family", "met", "gave up",
              "impossible");
  for (int slots : {1, 2, 3}) {
    for (bool together : {false, true}) {
      long probes = 0, rounds = 0, met = 0, gave_up = 0, impossible = 0, budgets_total = 0;
      for (int c = 1; c <= curves; ++c) {
        const auto curve = SyntheticCostCurve::random(uint64_t(c));
        std::vector<double> budgets;
        for (double f : {0.2, 0.5, 0.8}) budgets.push_back(curve.floor + f * (curve.top - curve.floor));
        if (together) {
          const auto r = run_family(curve, budgets, tolerance, slots);
          probes += r.probes;
          rounds += r.rounds;
          met += r.met, gave_up += r.gave_up, impossible += r.impossible;
        } else {
          for (double b : budgets) {
            const auto r = run_family(curve, {b}, tolerance, slots);
            probes += r.probes;
            rounds += r.rounds;
            met += r.met, gave_up += r.gave_up, impossible += r.impossible;
          }
        }
        budgets_total += long(budgets.size());
      }
      char mode[64];
      std::snprintf(mode, sizeof mode, "%s, %d in flight per budget", together ? "budgets share probes" : "each budget alone",
                    slots);
      std::printf("%-34s %14.2f %14.2f %9.1f%% %9.1f%% %9.1f%%\n", mode, double(probes) / double(budgets_total),
                  double(rounds) / (together ? curves : double(budgets_total)),
                  100.0 * double(met) / double(budgets_total), 100.0 * double(gave_up) / double(budgets_total),
                  100.0 * double(impossible) / double(budgets_total));
    }
  }
  long grid = 0;
  std::vector<int> sizes;
  for (int c = 1; c <= curves; ++c) {
    const auto curve = SyntheticCostCurve::random(uint64_t(c));
    std::vector<double> budgets;
    for (double f : {0.2, 0.5, 0.8}) budgets.push_back(curve.floor + f * (curve.top - curve.floor));
    const int n = grid_points_needed(curve, budgets, tolerance);
    grid += n;
    sizes.push_back(n);
  }
  std::sort(sizes.begin(), sizes.end());
  std::printf("lambda grid over [1e-6, 1e-1] that puts a point in all 3 windows: mean %.1f searches per curve"
              " (%.2f per budget), median %d, 90th percentile %d\n",
              double(grid) / curves, double(grid) / (3.0 * curves), sizes[sizes.size() / 2],
              sizes[sizes.size() * 9 / 10]);
  return 0;
}
