#include <algorithm>
#include <catch2/catch.hpp>
#include <random>

#include "sweep/budget_search.h"
#include "sweep/synthetic_cost.h"

using namespace edmips;

namespace {

struct Outcome {
  BudgetDecision decision;
  std::vector<BudgetProbe> probes;
};

/// Runs one budget's search to its end against `cost`, one probe at a time
/// (or `slots` at once: every proposal of a round finishes before the next).
template <class Cost>
Outcome run_search(const BudgetTarget& target, const Cost& cost, int slots = 1,
                   std::vector<BudgetProbe> probes = {}, const BudgetSearchSettings& settings = {}) {
  int own = 0;
  for (int round = 0; round < 100; ++round) {
    auto d = decide_budget(target, probes, {}, own, slots, settings);
    if (d.state != BudgetState::searching) return {d, probes};
    REQUIRE(!d.next.empty());  // nothing in flight, so a searching budget must propose
    REQUIRE(int(d.next.size()) <= slots);
    for (double l : d.next) probes.push_back({l, cost(l), "p" + std::to_string(probes.size())});
    own += int(d.next.size());
  }
  FAIL("the budget search did not end");
  return {};
}

BudgetSearchSettings three() {
  BudgetSearchSettings s;
  s.max_parallel = 3;
  return s;
}

}  // namespace

TEST_CASE("a budget search starts at the documented guess, one step either side when it may run more",
          "[sweep][budget]") {
  const BudgetTarget target{2.0, 0.05};
  auto one = decide_budget(target, {}, {}, 0, 1);
  CHECK(one.state == BudgetState::searching);
  REQUIRE(one.next.size() == 1);
  CHECK(one.next[0] == Approx(1e-3));
  BudgetSearchSettings three_at_once;
  three_at_once.max_parallel = 3;
  auto three = decide_budget(target, {}, {}, 0, 8, three_at_once);
  REQUIRE(three.next.size() == 3);
  CHECK(three.next[1] == Approx(1e-4));
  CHECK(three.next[2] == Approx(1e-2));
  CHECK(decide_budget(target, {}, {}, 0, 8).next.size() == 1);  // the default max_parallel
  // Probes already in flight are not proposed again.
  auto busy = decide_budget(target, {}, {1e-3, 1e-4}, 2, 8, three_at_once);
  REQUIRE(busy.next.size() == 1);
  CHECK(busy.next[0] == Approx(1e-2));
  // No free slot: still searching, nothing proposed, no give-up.
  auto full = decide_budget(target, {}, {1e-3}, 1, 0);
  CHECK(full.state == BudgetState::searching);
  CHECK(full.next.empty());
}

TEST_CASE("a probe inside the window meets the budget; the one closest to the budget wins", "[sweep][budget]") {
  const BudgetTarget target{2.0, 0.05};
  const std::vector<BudgetProbe> probes = {{1e-4, 2.5, "a"}, {3e-4, 1.92, "b"}, {4e-4, 1.97, "c"}, {1e-3, 1.5, "d"}};
  const auto d = decide_budget(target, probes, {}, 0, 1);
  REQUIRE(d.state == BudgetState::met);
  CHECK(d.chosen->trial == "c");
  // The budget is a hard upper bound: 2.0001 is outside.
  CHECK(!meets_budget(target, 2.0001));
  CHECK(meets_budget(target, 1.9));
  CHECK(!meets_budget(target, 1.899));
}

TEST_CASE("a bracketed budget is narrowed by interpolation inside the bracket", "[sweep][budget]") {
  const BudgetTarget target{2.0, 0.05};
  const std::vector<BudgetProbe> probes = {{1e-4, 2.69, "a"}, {1e-3, 1.54, "b"}};
  const auto d = decide_budget(target, probes, {}, 0, 1);
  REQUIRE(d.state == BudgetState::searching);
  REQUIRE(d.next.size() == 1);
  // log-log interpolation towards 1.95: 1e-4 * 10^0.578, inside the middle 80%.
  CHECK(d.next[0] == Approx(3.78e-4).epsilon(0.02));
  // With two more slots, the remaining gaps are bisected, never duplicated.
  const auto d3 = decide_budget(target, probes, {}, 0, 3, three());
  REQUIRE(d3.next.size() == 3);
  for (double l : d3.next) {
    CHECK(l > 1e-4);
    CHECK(l < 1e-3);
  }
  CHECK(std::adjacent_find(d3.next.begin(), d3.next.end()) == d3.next.end());
}

TEST_CASE("a budget search converges on smooth, stepwise and noisy curves, never over the budget",
          "[sweep][budget]") {
  int met = 0, searches = 0;
  size_t probes = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    const auto curve = SyntheticCostCurve::random(seed);
    for (double fraction : {0.2, 0.5, 0.8}) {
      const double value = curve.floor + fraction * (curve.top - curve.floor);
      const BudgetTarget target{value, 0.05};
      const auto outcome = run_search(target, curve);
      ++searches;
      probes += outcome.probes.size();
      CHECK(int(outcome.probes.size()) <= BudgetSearchSettings{}.max_probes);
      if (outcome.decision.state == BudgetState::met) ++met;
      if (outcome.decision.chosen) CHECK(outcome.decision.chosen->cost <= value);
      CHECK(outcome.decision.state != BudgetState::impossible);  // the floor is under every budget here
    }
  }
  // Most budgets land in their 5% window; the rest give up with a flagged allocation under the budget.
  CHECK(met >= searches * 9 / 10);
  CHECK(double(probes) / searches <= 5.0);
}

TEST_CASE("a window that the cost jumps over (a plateau edge) ends with the closest allocation under it",
          "[sweep][budget]") {
  // Cost 2.6 up to lambda 3e-4, then 1.5: nothing between, so no lambda meets [1.9, 2.0].
  auto cliff = [](double lambda) { return lambda < 3e-4 ? 2.6 : 1.5; };
  const BudgetTarget target{2.0, 0.05};
  const auto outcome = run_search(target, cliff);
  REQUIRE(outcome.decision.state == BudgetState::gave_up);
  CHECK(outcome.decision.chosen->cost == 1.5);
  CHECK(outcome.decision.reason.find("the closest allocation under the budget") != std::string::npos);
  CHECK(int(outcome.probes.size()) <= BudgetSearchSettings{}.max_probes);
}

TEST_CASE("budgets above the largest cost or below the floor end, flagged or impossible", "[sweep][budget]") {
  SyntheticCostCurve curve;
  curve.noise = 0;
  SECTION("above the cost at lambda -> 0: the most expensive allocation, flagged") {
    const auto outcome = run_search(BudgetTarget{5.0, 0.05}, curve);
    REQUIRE(outcome.decision.state == BudgetState::gave_up);
    CHECK(outcome.decision.chosen->cost == Approx(curve.top).margin(0.05));
  }
  SECTION("below the floor: nothing to retrain") {
    const auto outcome = run_search(BudgetTarget{1.0, 0.05}, curve);
    CHECK(outcome.decision.state == BudgetState::impossible);
    CHECK(!outcome.decision.chosen);
    CHECK(outcome.decision.reason.find("no probe's allocation is under the budget") != std::string::npos);
  }
}

TEST_CASE("the decision depends only on the probes, not on their order", "[sweep][budget]") {
  std::vector<BudgetProbe> probes = {{1e-5, 3.3, "a"}, {1e-4, 2.7, "b"}, {1e-2, 1.45, "c"}, {3e-3, 1.42, "d"}};
  const auto reference = decide_budget({2.0, 0.05}, probes, {}, 0, 3, three());
  std::mt19937 random(7);
  for (int i = 0; i < 10; ++i) {
    std::shuffle(probes.begin(), probes.end(), random);
    const auto d = decide_budget({2.0, 0.05}, probes, {}, 0, 3, three());
    CHECK(d.next == reference.next);
    CHECK(d.state == reference.state);
  }
}

TEST_CASE("probes of a family are shared: a second budget reuses the first one's probes", "[sweep][budget]") {
  SyntheticCostCurve curve;
  const auto first = run_search(BudgetTarget{2.0, 0.05}, curve);
  REQUIRE(first.decision.state == BudgetState::met);
  // The same budget again needs no new probe at all.
  const auto again = run_search(BudgetTarget{2.0, 0.05}, curve, 1, first.probes);
  CHECK(again.probes.size() == first.probes.size());
  // A new budget starts from what is known and needs fewer probes than alone.
  const auto alone = run_search(BudgetTarget{2.6, 0.05}, curve);
  const auto shared = run_search(BudgetTarget{2.6, 0.05}, curve, 1, first.probes);
  CHECK(shared.probes.size() - first.probes.size() <= alone.probes.size());
}

TEST_CASE("bad budgets are refused", "[sweep][budget]") {
  CHECK_THROWS_AS(decide_budget({0, 0.05}, {}, {}, 0, 1), std::invalid_argument);
  CHECK_THROWS_AS(decide_budget({2, 1.0}, {}, {}, 0, 1), std::invalid_argument);
  CHECK_THROWS_AS(decide_budget({2, -0.1}, {}, {}, 0, 1), std::invalid_argument);
}
