#include <catch2/catch.hpp>
#include <fstream>

#include "core/error.h"
#include "pareto/analysis.h"
#include "sweep/journal.h"
#include "test_support.h"

using namespace edmips;
using edmips::testing::TempDir;

namespace {

nlohmann::json finished(const std::string& id, const std::string& configuration, const std::string& kind, int seed,
                        double penalty, double top1, double bitops, const std::string& bits = "1|2|3|4") {
  nlohmann::json summary = {{"kind", kind}, {"configuration_id", configuration}, {"model", "simple-cnn"},
                            {"dataset", "fashion-mnist"}, {"seed", seed},
                            {"complexity_penalty", kind == "search" ? nlohmann::json(penalty) : nlohmann::json()},
                            {"weight_bits", kind == "search" ? bits : "2"},
                            {"activation_bits", kind == "search" ? std::string("2|3|4") : "2"}};
  return {{"event", "trial_finished"}, {"trial", id}, {"rank", 0}, {"attempt", 1}, {"duration_s", 1.0},
          {"summary", summary},
          {"result", {{"top1", top1}, {"bitops", bitops}, {"normalised_bits", std::sqrt(bitops / 1e6)},
                      {"weight_memory_bits", bitops / 10}, {"allocation", {{"layers", nlohmann::json::array()}}}}}};
}

void write_sweep(const TempDir& dir) {
  Journal journal(dir / "journal.jsonl");
  // lambda 0.01 with two seeds, lambda 0.1 with one, a uniform W2A2 baseline with two seeds.
  journal.append(finished("a1", "A", "search", 1, 0.01, 80, 4e6));
  journal.append(finished("a2", "A", "search", 2, 0.01, 82, 4e6));
  journal.append(finished("b1", "B", "search", 1, 0.1, 75, 1e6));
  journal.append(finished("u1", "U", "uniform", 1, 0, 77, 4e6));
  journal.append(finished("u2", "U", "uniform", 2, 0, 79, 4e6));
}

}  // namespace

TEST_CASE("seeds of one configuration are averaged with their standard deviation", "[pareto][analysis]") {
  TempDir dir;
  write_sweep(dir);
  const auto report = analyse_sweeps({{dir.path()}, CostMeasure::bitops, std::nullopt});
  CHECK(report.trials == 5);
  REQUIRE(report.configurations.size() == 3);
  const auto& a = *std::find_if(report.configurations.begin(), report.configurations.end(),
                                [](const Configuration& c) { return c.configuration_id == "A"; });
  CHECK(a.top1_mean == Approx(81));
  CHECK(a.top1_std == Approx(std::sqrt(2.0)));
  CHECK(a.trials.size() == 2);
  CHECK(report.groups.size() == 2);  // the mixed group and the uniform group
}

TEST_CASE("dominance compares each baseline with the best mixed configuration at no more BitOps", "[pareto][analysis]") {
  TempDir dir;
  write_sweep(dir);
  const auto report = analyse_sweeps({{dir.path()}, CostMeasure::bitops, std::nullopt});
  REQUIRE(report.dominance.size() == 1);
  const auto& d = report.dominance[0];
  REQUIRE(d.best_mixed);
  CHECK(report.configurations[*d.best_mixed].configuration_id == "A");
  CHECK(*d.accuracy_gain == Approx(81 - 78));
  REQUIRE(d.front_accuracy_at_baseline);
  CHECK(*d.front_accuracy_at_baseline == Approx(81));  // the baseline's BitOps is the front's end
  // The reference point is stated and shared: 1.1 x the largest cost, the lowest accuracy.
  CHECK(report.reference.cost == Approx(4.4e6));
  CHECK(report.reference.accuracy == Approx(75));
}

TEST_CASE("the report files are written and a sweep still running can be analysed", "[pareto][analysis]") {
  TempDir dir;
  write_sweep(dir);
  {
    std::ofstream torn(dir / "journal.jsonl", std::ios::app);
    torn << "{\"event\": \"trial_fini";  // a write in progress
  }
  const auto report = analyse_sweeps({{dir.path()}, CostMeasure::normalised_bits, std::nullopt});
  write_report_files(report, dir.path());
  for (const char* f : {"pareto.csv", "pareto.json", "report.md"}) CHECK(std::filesystem::exists(dir / f));
  const auto json = to_json(report);
  CHECK(json.at("cost") == "normalised_bits");
  CHECK(json.at("groups").size() == 2);
}

TEST_CASE("a directory without a journal is a clear error", "[pareto][analysis]") {
  TempDir dir;
  CHECK_THROWS_WITH(analyse_sweeps({{dir.path()}, CostMeasure::bitops, std::nullopt}),
                    Catch::Contains("journal.jsonl") && Catch::Contains("not a sweep output directory"));
}
