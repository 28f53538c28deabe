// The budgets axis of a sweep file and the coordinator's budget planner,
// driven by a simulated coordinator: probes "finish" with the cost of a
// synthetic noisy stepwise curve, retrainings with their allocation's cost.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "sweep/budget_planner.h"
#include "sweep/synthetic_cost.h"

using namespace edmips;

namespace {

nlohmann::json budget_sweep(const std::string& budgets = R"({"values": [2.0, 2.5, 3.0]})") {
  auto j = nlohmann::json::parse(R"({
    "name": "b",
    "base": {"dataset": {"train_subset": 100}, "search": {"epochs": 1}, "train": {"epochs": 1}},
    "axes": {"seeds": [1, 2]},
    "baselines": [[2, 2]]
  })");
  j["axes"]["budgets"] = nlohmann::json::parse(budgets);
  return j;
}

/// An allocation of 50 layers whose mean bits are `cost` (0.02 steps).
BitAllocation allocation_costing(double cost) {
  BitAllocation a;
  a.model = "simple-cnn";
  const int step = int(std::lround(cost * 50));
  for (int i = 0; i < 50; ++i) {
    const int b = step / 50 + (i < step % 50 ? 1 : 0);
    a.layers.push_back({"l" + std::to_string(i), b, b});
  }
  return a;
}

/// Plays the coordinator: runs what the planner starts (all of it at once,
/// then one round later the next), journaling like the real one does.
struct Simulation {
  explicit Simulation(const SweepDefinition& s) : sweep(s) {}
  const SweepDefinition& sweep;
  std::map<std::string, nlohmann::json> finished;
  std::map<std::string, int> runs;  // trial -> times run
  JournalState journal;
  int rounds = 0;

  double cost_of(const PlannedTrial& t) const {
    if (t.kind == TrialKind::probe) return SyntheticCostCurve::random(t.config.seed + 1)(t.config.search.complexity_penalty);
    double sum = 0;
    for (const auto& l : t.config.allocation.layers) sum += l.weight_bits;
    return sum / double(t.config.allocation.layers.size());
  }

  void finish(const PlannedTrial& t) {
    ++runs[t.id];
    const double cost = cost_of(t);
    nlohmann::json result = {{"top1", t.kind == TrialKind::probe ? nlohmann::json() : nlohmann::json(80.0)},
                             {"normalised_bits", cost},
                             {"bitops", cost * cost * 1e6},
                             {"weight_memory_bits", cost * 1e5},
                             {"allocation", to_json(t.kind == TrialKind::probe ? allocation_costing(cost) : t.config.allocation)}};
    finished[t.id] = {{"event", "trial_finished"}, {"trial", t.id}, {"summary", t.summary}, {"result", result}};
    journal.finished[t.id] = finished[t.id];
  }

  /// Runs rounds until nothing is left, or `stop_after` rounds (a crash: the
  /// started trials of the last round never finish).
  void run(BudgetPlanner& planner, int stop_after = 1000) {
    std::set<std::string> in_flight;
    for (int round = 0; round < stop_after; ++round) {
      auto step = planner.plan(finished, in_flight, {});
      for (auto& e : step.events) journal.budgets[e.at("group").get<std::string>()] = e;
      for (const auto* t : step.start) {
        journal.started.insert(t->id);
        journal.started_summaries[t->id] = t->summary;
      }
      if (step.start.empty()) return;
      ++rounds;
      if (round + 1 == stop_after) return;  // crash with these in flight
      for (const auto* t : step.start) finish(*t);
    }
  }
};

}  // namespace

TEST_CASE("a budgets axis makes one budget per value, seed and bit set, with stable IDs", "[sweep][budget]") {
  const auto sweep = parse_sweep(budget_sweep(), "b.json");
  REQUIRE(sweep.budgets.size() == 3 * 2);
  CHECK(sweep.trials.size() == 2);  // the baselines; budgets' trials are chosen while the sweep runs
  std::set<std::string> ids, families, configurations;
  for (const auto& g : sweep.budgets) {
    ids.insert(g.id);
    families.insert(g.family);
    configurations.insert(g.summary.at("configuration_id").get<std::string>());
    CHECK(g.cost == CostMeasure::normalised_bits);
    CHECK(g.target.tolerance == Approx(0.05));
    CHECK(!g.probe.search.retrain);
    CHECK(g.retrain.search.retrain);
  }
  CHECK(ids.size() == 6);
  CHECK(families.size() == 2);        // one per seed: its budgets share probes
  CHECK(configurations.size() == 3);  // one per budget: seeds are averaged
  // IDs do not depend on the order of the values, or on the search settings of the budget search.
  const auto again = parse_sweep(budget_sweep(R"({"values": [3.0, 2.0, 2.5], "max_probes": 5})"), "b.json");
  std::set<std::string> again_ids;
  for (const auto& g : again.budgets) again_ids.insert(g.id);
  CHECK(again_ids == ids);
  CHECK(again.budget_settings.max_probes == 5);
}

TEST_CASE("probes are search-only trials whose ID ignores retraining; equal allocations share a retraining",
          "[sweep][budget]") {
  const auto sweep = parse_sweep(budget_sweep(), "b.json");
  const auto& g = sweep.budgets.front();
  const auto probe = make_budget_probe(g, 1e-3);
  CHECK(probe.kind == TrialKind::probe);
  CHECK(probe.dynamic);
  CHECK(!probe.config.search.retrain);
  CHECK(probe.config.search.complexity_penalty == 1e-3);
  CHECK(probe.summary.at("family") == g.family);
  // Another budget of the same family makes the same probe at the same lambda.
  CHECK(make_budget_probe(sweep.budgets[1], 1e-3).id == probe.id);
  // A different retraining schedule does not change a probe.
  auto longer = g;
  longer.probe.train.epochs = 50;
  CHECK(make_budget_probe(longer, 1e-3).id == probe.id);
  const auto a = make_budget_retrain(g, allocation_costing(2.0), 1e-3, 3);
  const auto b = make_budget_retrain(sweep.budgets[1], allocation_costing(2.0), 2e-3, 5);
  CHECK(a.kind == TrialKind::budget);
  CHECK(a.config.mode == TrialMode::allocation);
  CHECK(a.id == b.id);
  CHECK(make_budget_retrain(g, allocation_costing(2.1), 1e-3, 3).id != a.id);
  CHECK(a.summary.at("probes") == 3);
  CHECK(a.summary.at("budget") == g.target.value);
}

TEST_CASE("a budgets axis is refused with a lambda axis, a fixed lambda or bad values", "[sweep][budget]") {
  auto with_penalties = budget_sweep();
  with_penalties["axes"]["complexity_penalty"] = {0.1};
  CHECK_THROWS_WITH(parse_sweep(with_penalties, "b.json"),
                    Catch::Contains("/axes/budgets") && Catch::Contains("not both"));
  auto fixed = budget_sweep();
  fixed["base"]["search"]["complexity_penalty"] = 0.01;
  CHECK_THROWS_WITH(parse_sweep(fixed, "b.json"), Catch::Contains("/base/search/complexity_penalty"));
  CHECK_THROWS_WITH(parse_sweep(budget_sweep(R"({"values": [2, -1]})"), "b.json"),
                    Catch::Contains("/axes/budgets/values/1"));
  CHECK_THROWS_WITH(parse_sweep(budget_sweep(R"({"values": []})"), "b.json"), Catch::Contains("/axes/budgets/values"));
  CHECK_THROWS_WITH(parse_sweep(budget_sweep(R"({"values": [2], "cost": "bitopps"})"), "b.json"),
                    Catch::Contains("bitops"));
  CHECK_THROWS_WITH(parse_sweep(budget_sweep(R"({"values": [2], "tolerance": 1.5})"), "b.json"),
                    Catch::Contains("/axes/budgets/tolerance"));
  CHECK_THROWS_WITH(parse_sweep(budget_sweep(R"({"values": [2], "tolerence": 0.1})"), "b.json"),
                    Catch::Contains("tolerance"));
}

TEST_CASE("the planner lands every budget in its window and retrains each exactly once", "[sweep][budget]") {
  const auto sweep = parse_sweep(budget_sweep(R"({"values": [1.8, 2.2, 2.6, 3.0], "tolerance": 0.05})"), "b.json");
  Simulation sim{sweep};
  BudgetPlanner planner(sweep, sim.journal);
  sim.run(planner);
  CHECK(planner.done() == sweep.budgets.size());
  CHECK(planner.failed() == 0);
  size_t probes = 0;
  for (const auto& [id, n] : sim.runs) {
    CHECK(n == 1);
    probes += sim.finished.at(id).at("summary").at("kind") == "probe";
  }
  REQUIRE(sim.journal.budgets.size() == sweep.budgets.size());
  for (const auto& [group, e] : sim.journal.budgets) {
    const auto state = e.at("state").get<std::string>();
    REQUIRE((state == "met" || state == "gave_up"));
    const double cost = e.at("chosen_cost");
    CHECK(cost <= e.at("budget").get<double>());
    // The retraining is of the allocation the probe derived, so it costs the same.
    const auto& retrained = sim.finished.at(e.at("retrain").get<std::string>());
    CHECK(retrained.at("result").at("allocation") == e.at("allocation"));
    CHECK(retrained.at("result").at("normalised_bits").get<double>() == Approx(cost));
  }
  // The four budgets of a seed share one family's probes.
  CHECK(double(probes) / double(sweep.budgets.size()) < 6.0);
  // Nothing more to do.
  CHECK(planner.plan(sim.finished, {}, {}).start.empty());
}

TEST_CASE("with two probes in flight per budget the planner still lands every budget once", "[sweep][budget]") {
  const auto sweep =
      parse_sweep(budget_sweep(R"({"values": [1.8, 2.4, 3.0], "tolerance": 0.05, "parallel": 2})"), "b.json");
  CHECK(sweep.budget_settings.max_parallel == 2);
  Simulation sim{sweep};
  BudgetPlanner planner(sweep, sim.journal);
  sim.run(planner);
  CHECK(planner.done() == sweep.budgets.size());
  for (const auto& [id, n] : sim.runs) CHECK(n == 1);
  for (const auto& [group, e] : sim.journal.budgets) CHECK(e.at("chosen_cost").get<double>() <= e.at("budget").get<double>());
}

TEST_CASE("after a crash the planner resumes the probes in flight and keeps journaled decisions", "[sweep][budget]") {
  const auto sweep = parse_sweep(budget_sweep(R"({"values": [2.0, 2.8]})"), "b.json");
  // Uninterrupted, for reference.
  Simulation whole{sweep};
  {
    BudgetPlanner planner(sweep, whole.journal);
    whole.run(planner);
  }
  for (int crash_round = 1; crash_round <= whole.rounds; ++crash_round) {
    Simulation sim{sweep};
    {
      BudgetPlanner planner(sweep, sim.journal);
      sim.run(planner, crash_round);
    }
    // What was in flight at the crash.
    std::set<std::string> in_flight;
    for (const auto& id : sim.journal.started) {
      if (!sim.finished.count(id)) in_flight.insert(id);
    }
    const auto decided_before = sim.journal.budgets;
    BudgetPlanner resumed(sweep, sim.journal);
    auto first = resumed.plan(sim.finished, {}, {});
    std::set<std::string> restarted;
    for (const auto* t : first.start) restarted.insert(t->id);
    // Every probe or retraining cut short is started again (from its checkpoint).
    for (const auto& id : in_flight) CHECK(restarted.count(id) == 1);
    // A decision journaled before the crash is not taken again.
    for (const auto& e : first.events) CHECK(decided_before.count(e.at("group").get<std::string>()) == 0);
    for (const auto* t : first.start) sim.finish(*t);
    sim.run(resumed);
    CHECK(resumed.done() == sweep.budgets.size());
    for (const auto& [id, n] : sim.runs) CHECK(n == 1);
    // The same decisions as the uninterrupted run.
    for (const auto& [group, e] : whole.journal.budgets) {
      CHECK(sim.journal.budgets.at(group).at("retrain") == e.at("retrain"));
    }
  }
}

TEST_CASE("a failed probe fails its budget; an impossible budget says so and retrains nothing", "[sweep][budget]") {
  const auto sweep = parse_sweep(budget_sweep(R"({"values": [0.5, 2.5]})"), "b.json");
  Simulation sim{sweep};
  BudgetPlanner planner(sweep, sim.journal);
  auto step = planner.plan(sim.finished, {}, {});
  REQUIRE(!step.start.empty());
  // The first probe of seed 1's family fails for good.
  const PlannedTrial* failing = nullptr;
  for (const auto* t : step.start) {
    if (t->config.seed == 1) failing = t;
  }
  REQUIRE(failing);
  std::set<std::string> in_flight;
  for (const auto* t : step.start) {
    if (t != failing) sim.finish(*t);
  }
  step = planner.plan(sim.finished, in_flight, {failing->id});
  size_t failed_events = 0;
  for (const auto& e : step.events) failed_events += e.at("state") == "failed";
  CHECK(failed_events == 2);  // both budgets of seed 1
  CHECK(planner.failed() == 2);
  for (const auto* t : step.start) sim.finish(*t);
  sim.run(planner);
  CHECK(planner.done() == 2);  // seed 2: budget 2.5 met or given up, budget 0.5 impossible
  bool impossible = false;
  for (const auto& [group, e] : sim.journal.budgets) {
    if (e.at("budget") == 0.5 && e.at("summary").at("seed") == 2) {
      impossible = e.at("state") == "impossible";
      CHECK(!e.contains("retrain"));
    }
  }
  CHECK(impossible);
}
