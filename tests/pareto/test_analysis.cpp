#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "pareto/analysis.h"
#include "sweep/journal.h"
#include "test_support.h"

using namespace edmips;
using edmips::testing::TempDir;

namespace {

nlohmann::json finished(const std::string& id, const std::string& configuration, const std::string& kind, int seed,
                        double penalty, double top1, double bitops, const std::string& bits = "1|2|3|4",
                        const nlohmann::json& more = nlohmann::json::object()) {
  nlohmann::json summary = {{"kind", kind}, {"configuration_id", configuration}, {"model", "simple-cnn"},
                            {"dataset", "fashion-mnist"}, {"seed", seed},
                            {"complexity_penalty", kind == "search" ? nlohmann::json(penalty) : nlohmann::json()},
                            {"weight_bits", kind == "search" ? bits : "2"},
                            {"activation_bits", kind == "search" ? std::string("2|3|4") : "2"}};
  nlohmann::json result = {{"top1", top1}, {"bitops", bitops}, {"normalised_bits", std::sqrt(bitops / 1e6)},
                           {"weight_memory_bits", bitops / 10}, {"allocation", {{"layers", nlohmann::json::array()}}}};
  result.update(more);
  return {{"event", "trial_finished"}, {"trial", id}, {"rank", 0}, {"attempt", 1}, {"duration_s", 1.0},
          {"summary", summary}, {"result", result}};
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

TEST_CASE("accuracies carry 95% intervals: Student's t over seeds, Wilson over one seed's test set", "[pareto][analysis]") {
  // Two seeds: t(0.975, 1 df) = 12.706 times std / sqrt(2).
  const auto seeds = seed_interval(81, std::sqrt(2.0), 2);
  CHECK(seeds.basis == "seeds");
  CHECK(seeds.half_width == Approx(12.706).epsilon(1e-3));
  CHECK(seed_interval(81, 1, 1).basis == "none");
  // One seed on 5000 test images at 83%: about +-1 point (the figure).
  const auto one = binomial_interval(83, 5000);
  CHECK(one.basis == "test set");
  CHECK(one.half_width == Approx(1.04).margin(0.01));
  CHECK(one.low < 83);
  CHECK(one.high > 83);
  // Wilson stays inside [0, 100] where a normal interval would not.
  const auto edge = binomial_interval(100, 50);
  CHECK(edge.high == Approx(100));
  CHECK(edge.low > 90);
}

TEST_CASE("a gain inside its uncertainty is a tie, outside it better or worse", "[pareto][analysis]") {
  auto sweep = [](double mixed_top1) {
    TempDir dir;
    {
      Journal journal(dir / "journal.jsonl");
      journal.append(finished("m", "M", "search", 1, 0.01, mixed_top1, 3e6, "1|2|3|4", {{"test_images", 10000}}));
      journal.append(finished("u", "U", "uniform", 1, 0, 85.0, 4e6, "1|2|3|4", {{"test_images", 10000}}));
    }
    return analyse_sweeps({{dir.path()}, CostMeasure::bitops, std::nullopt});
  };
  const auto tied = sweep(85.5);
  REQUIRE(tied.dominance.size() == 1);
  const auto& t = tied.dominance[0];
  CHECK(t.gain_half_width == Approx(0.99).margin(0.02));  // two Wilson half-widths of 10000 images, combined
  REQUIRE(t.verdict);
  CHECK(*t.verdict == Verdict::tie);
  CHECK_THAT(comparison_text(tied, t), Catch::StartsWith("tie with W2A2: +0.50 +- 0.9"));
  const auto better = sweep(86.5);
  CHECK(*better.dominance[0].verdict == Verdict::better);
  CHECK_THAT(comparison_text(better, better.dominance[0]), Catch::StartsWith("better than W2A2: +1.50"));
  const auto worse = sweep(83.5);
  CHECK(*worse.dominance[0].verdict == Verdict::worse);
  // One seed without a recorded test-set size: no interval, said so.
  TempDir old;
  {
    Journal journal(old / "journal.jsonl");
    journal.append(finished("m", "M", "search", 1, 0.01, 86, 3e6));
  }
  const auto unknown = analyse_sweeps({{old.path()}, CostMeasure::bitops, std::nullopt});
  CHECK(unknown.configurations[0].top1_interval.basis == "none");
  CHECK_THAT(accuracy_text(unknown.configurations[0]), Catch::Contains("uncertainty unknown"));
}

TEST_CASE("dominance, verdict and recommendation are in the cost the user chose", "[pareto][analysis]") {
  TempDir dir;
  {
    Journal journal(dir / "journal.jsonl");
    // The mixed network costs more BitOps than W2A2 but less weight memory.
    journal.append(finished("m", "M", "search", 1, 0.01, 88, 5e6, "1|2|3|4",
                            {{"test_images", 10000}, {"weight_memory_bits", 1e5}}));
    journal.append(finished("u", "U", "uniform", 1, 0, 85, 4e6, "1|2|3|4",
                            {{"test_images", 10000}, {"weight_memory_bits", 4e5}}));
  }
  const auto by_bitops = analyse_sweeps({{dir.path()}, CostMeasure::bitops, std::nullopt});
  REQUIRE(by_bitops.dominance.size() == 1);
  CHECK_FALSE(by_bitops.dominance[0].best_mixed);
  REQUIRE(by_bitops.recommendations.size() == 1);
  CHECK(by_bitops.configurations[by_bitops.recommendations[0].chosen].configuration_id == "U");

  const auto by_memory = analyse_sweeps({{dir.path()}, CostMeasure::weight_memory_bits, std::nullopt});
  REQUIRE(by_memory.dominance[0].best_mixed);
  CHECK(*by_memory.dominance[0].verdict == Verdict::better);
  CHECK_THAT(comparison_text(by_memory, by_memory.dominance[0]), Catch::Contains("75% less weight memory bits"));
  REQUIRE(by_memory.recommendations.size() == 1);
  const auto& rec = by_memory.recommendations[0];
  CHECK(by_memory.configurations[rec.chosen].configuration_id == "M");
  CHECK(rec.limit == "W2A2's weight memory bits");
  const auto json = to_json(by_memory);
  CHECK(json.at("recommendations")[0].at("trial_directory") == (dir / "trials" / "m").string());
}

TEST_CASE("a cheaper network statistically tied with the most accurate one is named, not chosen", "[pareto][analysis]") {
  TempDir dir;
  {
    Journal journal(dir / "journal.jsonl");
    journal.append(finished("a", "A", "search", 1, 0.001, 86.0, 3.9e6, "1|2|3|4", {{"test_images", 10000}}));
    journal.append(finished("b", "B", "search", 1, 0.01, 85.8, 2e6, "1|2|3|4", {{"test_images", 10000}}));
    journal.append(finished("c", "C", "search", 1, 0.1, 70.0, 1e6, "1|2|3|4", {{"test_images", 10000}}));
    journal.append(finished("u", "U", "uniform", 1, 0, 85, 4e6, "1|2|3|4", {{"test_images", 10000}}));
  }
  const auto report = analyse_sweeps({{dir.path()}, CostMeasure::bitops, std::nullopt});
  REQUIRE(report.recommendations.size() == 1);
  const auto& rec = report.recommendations[0];
  CHECK(report.configurations[rec.chosen].configuration_id == "A");
  REQUIRE(rec.cheaper_tie);
  CHECK(report.configurations[*rec.cheaper_tie].configuration_id == "B");
  CHECK_THAT(rec.why, Catch::Contains("lambda 0.01") && Catch::Contains("statistically tied"));
}

TEST_CASE("with a validation split the report chooses on validation and reports on test", "[pareto][analysis]") {
  TempDir dir;
  {
    Journal journal(dir / "journal.jsonl");
    auto more = [](double validation) {
      return nlohmann::json{{"test_images", 10000}, {"validation_top1", validation}, {"validation_images", 5000}};
    };
    // A looks best on test, B on validation: B is chosen, and reported with its test accuracy.
    journal.append(finished("a", "A", "search", 1, 0.001, 88.0, 3e6, "1|2|3|4", more(84.0)));
    journal.append(finished("b", "B", "search", 1, 0.01, 86.0, 2e6, "1|2|3|4", more(87.0)));
    journal.append(finished("u", "U", "uniform", 1, 0, 85.0, 4e6, "1|2|3|4", more(85.5)));
  }
  const auto report = analyse_sweeps({{dir.path()}, CostMeasure::bitops, std::nullopt});
  CHECK(report.select_on_validation);
  REQUIRE(report.dominance.size() == 1);
  const auto& d = report.dominance[0];
  REQUIRE(d.best_mixed);
  CHECK(report.configurations[*d.best_mixed].configuration_id == "B");
  CHECK(*d.accuracy_gain == Approx(1.0));     // on test
  CHECK(*d.validation_gain == Approx(1.5));   // what chose it
  REQUIRE(report.recommendations.size() == 1);
  CHECK(report.configurations[report.recommendations[0].chosen].configuration_id == "B");
  const auto json = to_json(report);
  CHECK(json.at("selected_on") == "validation");
  // Without validation on every configuration, the test set chooses (and the report says so).
  TempDir old;
  {
    Journal journal(old / "journal.jsonl");
    journal.append(finished("a", "A", "search", 1, 0.001, 88.0, 3e6, "1|2|3|4", {{"test_images", 10000}}));
    journal.append(finished("u", "U", "uniform", 1, 0, 85.0, 4e6, "1|2|3|4", {{"test_images", 10000}}));
  }
  const auto on_test = analyse_sweeps({{old.path()}, CostMeasure::bitops, std::nullopt});
  CHECK_FALSE(on_test.select_on_validation);
  std::ostringstream text;
  print_report(text, on_test);
  CHECK_THAT(text.str(), Catch::Contains("chosen and reported on test"));
}

TEST_CASE("pareto with best_epoch reads each trial's best per-epoch test top-1 and says so, by default the final epoch",
          "[pareto][analysis][best-epoch]") {
  TempDir dir;
  {
    Journal journal(dir / "journal.jsonl");
    const nlohmann::json best = {{"best_epoch", {{"epoch", 7}, {"top1", 84.0}, {"top5", 97.0}, {"test_loss", 0.4},
                                                 {"evaluated_epochs", 10}}}};
    journal.append(finished("a1", "A", "search", 1, 0.01, 80, 4e6, "1|2|3|4", best));
    journal.append(finished("u1", "U", "uniform", 1, 0, 77, 4e6));  // evaluated once: no best epoch
  }
  auto top1_of = [](const ParetoReport& r, const std::string& id) {
    return std::find_if(r.configurations.begin(), r.configurations.end(),
                        [&](const Configuration& c) { return c.configuration_id == id; })
        ->top1_mean;
  };
  const auto final_epoch = analyse_sweeps({{dir.path()}, CostMeasure::bitops, std::nullopt});
  CHECK(top1_of(final_epoch, "A") == Approx(80));
  CHECK_FALSE(final_epoch.best_epoch);
  ParetoOptions options{{dir.path()}, CostMeasure::bitops, std::nullopt};
  options.best_epoch = true;
  const auto best = analyse_sweeps(options);
  CHECK(top1_of(best, "A") == Approx(84));
  CHECK(top1_of(best, "U") == Approx(77));
  CHECK(best.without_best_epoch == 1);
  std::ostringstream text;
  print_report(text, best);
  CHECK_THAT(text.str(), Catch::Contains("best epoch on the test set") && Catch::Contains("1 trial(s) had no"));
  CHECK(to_json(best).at("accuracy") == "best_epoch");
  CHECK(to_json(final_epoch).at("accuracy") == "final_epoch");
}
