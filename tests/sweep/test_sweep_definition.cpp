#include <catch2/catch.hpp>
#include <set>

#include "core/error.h"
#include "sweep/sweep_definition.h"

using namespace edmips;

namespace {
nlohmann::json small_sweep() {
  return nlohmann::json::parse(R"({
    "name": "s",
    "base": {"dataset": {"train_subset": 100}, "search": {"epochs": 1}, "train": {"epochs": 1}},
    "axes": {
      "complexity_penalty": [0, 0.01, 0.1],
      "bits": [{"weights": [1, 2], "activations": [2, 4]}, {"weights": [2, 4], "activations": [4]}],
      "seeds": [1, 2]
    },
    "baselines": [[2, 2], [4, 4]]
  })");
}
}  // namespace

TEST_CASE("a sweep is the cartesian product of its axes plus uniform baselines per seed", "[sweep][definition]") {
  const auto sweep = parse_sweep(small_sweep(), "s.json");
  // 3 penalties x 2 bit sets x 2 seeds + 2 baselines x 2 seeds
  REQUIRE(sweep.trials.size() == 3 * 2 * 2 + 2 * 2);
  std::set<std::string> ids;
  size_t uniform = 0;
  for (const auto& t : sweep.trials) {
    ids.insert(t.id);
    uniform += t.kind == TrialKind::uniform;
    if (t.kind == TrialKind::uniform) CHECK(t.config.mode == TrialMode::uniform);
  }
  CHECK(ids.size() == sweep.trials.size());
  CHECK(uniform == 4);
  CHECK(sweep.max_retries == 1);
}

TEST_CASE("a paper sweep's uniform baselines quantize with the released step table, as its searches do",
          "[sweep][definition]") {
  auto j = small_sweep();
  j["base"]["search"]["preset"] = "paper";
  for (const auto& t : parse_sweep(j, "s.json").trials) CHECK(t.config.quantizer_steps == "released");
  j["base"]["quantizer_steps"] = "computed";  // an explicit choice holds for every trial
  for (const auto& t : parse_sweep(j, "s.json").trials) CHECK(t.config.quantizer_steps == "computed");
  for (const auto& t : parse_sweep(small_sweep(), "s.json").trials) CHECK(t.config.quantizer_steps == "computed");
}

TEST_CASE("trial IDs are stable and adding axis values keeps the old trials' IDs", "[sweep][definition]") {
  const auto before = parse_sweep(small_sweep(), "s.json");
  auto grown = small_sweep();
  grown["axes"]["complexity_penalty"].push_back(1.0);
  const auto after = parse_sweep(grown, "s.json");
  std::set<std::string> after_ids;
  for (const auto& t : after.trials) after_ids.insert(t.id);
  for (const auto& t : before.trials) CHECK(after_ids.count(t.id) == 1);
  CHECK(after.trials.size() == before.trials.size() + 2 * 2);
  // Same file, same IDs, in the same order.
  const auto again = parse_sweep(small_sweep(), "s.json");
  for (size_t i = 0; i < again.trials.size(); ++i) CHECK(again.trials[i].id == before.trials[i].id);
}

TEST_CASE("a lambda range expands on a log or linear scale", "[sweep][definition]") {
  const auto log = expand_range(1e-4, 1e-1, 4, "log");
  REQUIRE(log.size() == 4);
  CHECK(log[0] == Approx(1e-4));
  CHECK(log[1] == Approx(1e-3));
  CHECK(log[3] == Approx(1e-1));
  const auto linear = expand_range(0, 1, 3, "linear");
  CHECK(linear == std::vector<double>{0.0, 0.5, 1.0});
  auto j = small_sweep();
  j["axes"]["complexity_penalty"] = {{"from", 0.001}, {"to", 0.1}, {"num", 3}, {"scale", "log"}};
  CHECK(parse_sweep(j, "s.json").trials.size() == 3 * 2 * 2 + 4);
}

TEST_CASE("sweep errors name the file, the JSON path, the expectation and the near spelling", "[sweep][definition]") {
  auto j = small_sweep();
  j["axes"]["bits"][1]["weights"][0] = 9;
  CHECK_THROWS_WITH(parse_sweep(j, "s.json"),
                    "s.json: /axes/bits/1/weights/0: expected an integer in [1, 8], found the integer 9");
  j = small_sweep();
  j["axes"]["complexity_penalty"][2] = -0.5;
  CHECK_THROWS_WITH(parse_sweep(j, "s.json"), Catch::Contains("/axes/complexity_penalty/2") &&
                                                 Catch::Contains("a number >= 0"));
  j = small_sweep();
  j["axes"]["seed"] = {1};
  CHECK_THROWS_WITH(parse_sweep(j, "s.json"), Catch::Contains("/axes/seed") && Catch::Contains("\"seeds\""));
  j = small_sweep();
  j["base"]["search"]["epochs"] = 0;
  CHECK_THROWS_WITH(parse_sweep(j, "s.json"), Catch::Contains("/base/search/epochs"));
  j = small_sweep();
  j["baselines"][0] = {2};
  CHECK_THROWS_WITH(parse_sweep(j, "s.json"), Catch::Contains("/baselines/0"));
  j = small_sweep();
  j["axes"]["models"] = {"resnet-20"};
  CHECK_THROWS_WITH(parse_sweep(j, "s.json"), Catch::Contains("/axes/models/0") && Catch::Contains("resnet20"));
  j = small_sweep();
  j["axes"]["complexity_penalty"] = {{"from", 0}, {"to", 1}, {"num", 3}, {"scale", "log"}};
  CHECK_THROWS_AS(parse_sweep(j, "s.json"), ConfigError);
}

TEST_CASE("any other trial field can be an axis through a JSON pointer", "[sweep][definition]") {
  auto j = small_sweep();
  j["axes"]["fields"] = {{"/train/epochs", {1, 2, 3}}};
  const auto sweep = parse_sweep(j, "s.json");
  CHECK(sweep.trials.size() == (3 * 2 * 2 + 4) * 3);
  std::set<int> epochs;
  for (const auto& t : sweep.trials) epochs.insert(t.config.train.epochs);
  CHECK(epochs == std::set<int>{1, 2, 3});
  j["axes"]["fields"] = {{"/train/epoch", {1}}};
  CHECK_THROWS_WITH(parse_sweep(j, "s.json"), Catch::Contains("/train/epoch") && Catch::Contains("epochs"));
}

TEST_CASE("a fields pointer through a number or a list is an input error naming it", "[sweep][definition][hardening]") {
  for (const std::string field : {"/train/epochs/x", "/train/epochs/0", "/dataset/train_subset/x"}) {
    INFO(field);
    auto j = small_sweep();
    j["axes"]["fields"] = {{field, {1}}};
    CHECK_THROWS_AS(parse_sweep(j, "s.json"), ConfigError);
    CHECK_THROWS_WITH(parse_sweep(j, "s.json"), Catch::Contains("s.json") && Catch::Contains("/axes/fields/" + field) &&
                                                   Catch::Contains("through objects"));
  }
  // One field replacing an object another passes through.
  auto j = small_sweep();
  j["axes"]["fields"] = {{"/train", {3}}, {"/train/epochs", {1}}};
  CHECK_THROWS_AS(parse_sweep(j, "s.json"), ConfigError);
}

TEST_CASE("a fields axis may not vary what another axis owns", "[sweep][definition]") {
  for (const auto& [field, axis] : std::vector<std::pair<std::string, std::string>>{
           {"/search/complexity_penalty", "complexity_penalty"}, {"/search/weight_bits", "bits"},
           {"/seed", "seeds"}, {"/model/name", "models"}}) {
    INFO(field);
    auto j = small_sweep();
    j["axes"]["fields"] = {{field, {1}}};
    CHECK_THROWS_WITH(parse_sweep(j, "s.json"), Catch::Contains("/axes/fields/" + field) &&
                                                   Catch::Contains("\"" + axis + "\" axis"));
  }
}

TEST_CASE("a sweep name cannot lead outside results/", "[sweep][definition]") {
  for (const std::string name : {".", "..", "a/b", ""}) {
    INFO(name);
    auto j = small_sweep();
    j["name"] = name;
    CHECK_THROWS_WITH(parse_sweep(j, "s.json"), Catch::Contains("/name"));
  }
}

TEST_CASE("longer trials get a larger expected cost", "[sweep][definition]") {
  auto j = small_sweep();
  j["axes"]["fields"] = {{"/train/epochs", {1, 5}}};
  const auto sweep = parse_sweep(j, "s.json");
  double short_cost = 0, long_cost = 0;
  for (const auto& t : sweep.trials) {
    if (t.kind != TrialKind::uniform || t.config.seed != 1 || t.config.uniform_weight_bits != 2) continue;
    (t.config.train.epochs == 1 ? short_cost : long_cost) = t.expected_cost;
  }
  CHECK(long_cost > short_cost);
}

TEST_CASE("a sweep whose axes multiply past the trial limit is refused before expanding", "[sweep][definition]") {
  auto j = small_sweep();
  // 2 seeds x 3 epochs x (10000 lambdas x 2 bit sets + 2 baselines) = 120012: over 100000.
  j["axes"]["complexity_penalty"] = {{"from", 1e-6}, {"to", 1e-1}, {"num", 10000}, {"scale", "log"}};
  j["axes"]["fields"] = {{"/train/epochs", {1, 2, 3}}};
  CHECK_THROWS_WITH(parse_sweep(j, "s.json"), Catch::Contains("s.json") && Catch::Contains("/axes") &&
                                                 Catch::Contains("120012 trials") &&
                                                 Catch::Contains("at most 100000"));
  j["axes"]["fields"] = {{"/train/epochs", {1, 2}}};
  j["axes"]["complexity_penalty"]["num"] = 2;
  CHECK(parse_sweep(j, "s.json").trials.size() == (2 * 2 * 2 + 4) * 2);
}
