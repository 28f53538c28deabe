#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "trial/trial_config.h"

using namespace edmips;

namespace {
nlohmann::json minimal() {
  return nlohmann::json::parse(R"({
    "seed": 3,
    "dataset": {"name": "fashion-mnist", "train_subset": 1000},
    "model": {"name": "simple-cnn"},
    "search": {"complexity_penalty": 0.01, "epochs": 2},
    "train": {"epochs": 2}
  })");
}
}  // namespace

TEST_CASE("a trial config fills in the documented defaults", "[trial][config]") {
  const auto c = parse_trial_config(minimal(), "t.json");
  CHECK(c.mode == TrialMode::search);
  CHECK(c.search.weight_bits == std::vector<int>{1, 2, 3, 4});
  CHECK(c.search.activation_bits == std::vector<int>{2, 3, 4});
  CHECK(c.search.arch.preset == "scaled");
  CHECK(c.search.arch.optimizer == "adam");
  CHECK(c.search.arch.warmup_epochs == 0);  // a quarter of 2 search epochs
  CHECK(c.search.arch.final_temperature == 0.1);
  CHECK(c.search.arch.reference_steps == 100000);
  auto longer = minimal();
  longer["search"]["epochs"] = 9;
  CHECK(parse_trial_config(longer, "t.json").search.arch.warmup_epochs == 2);
  CHECK(c.search.schedule.lr == 0.1);
  CHECK(c.search.schedule.momentum == 0.9);
  CHECK(c.search.schedule.weight_decay == 1e-4);
  CHECK(c.search.normaliser == "first-layer");
  CHECK(c.full_precision_first);
  CHECK(c.full_precision_last);
}

TEST_CASE("the paper preset is the released code's architecture optimiser, and fields override it",
          "[trial][config]") {
  auto j = minimal();
  j["search"]["preset"] = "paper";
  auto c = parse_trial_config(j, "t.json");
  CHECK(c.search.arch.optimizer == "sgd");
  CHECK(c.search.arch.lr == 0.01);
  CHECK(c.search.arch.reference_steps == 0);
  CHECK(c.search.arch.lr_decay);
  CHECK(c.search.arch.weight_decay == 1e-4);
  CHECK(c.search.arch.warmup_epochs == 0);
  CHECK(c.search.arch.final_temperature == 1.0);
  j["search"]["arch_lr"] = 0.05;
  c = parse_trial_config(j, "t.json");
  CHECK(c.search.arch.lr == 0.05);
  CHECK(c.search.arch.optimizer == "sgd");
  j["search"]["preset"] = "papr";
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"), Catch::Contains("/search/preset") && Catch::Contains("paper"));
  j = minimal();
  j["search"]["arch_warmup_epochs"] = 2;  // as many as the search has
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"), Catch::Contains("/search/arch_warmup_epochs"));
}

TEST_CASE("the resolved config parses back to the same trial", "[trial][config]") {
  const auto c = parse_trial_config(minimal(), "t.json");
  const auto again = parse_trial_config(to_json(c), "resolved");
  CHECK(to_json(again) == to_json(c));
  CHECK(trial_id(again) == trial_id(c));
}

TEST_CASE("a search-only trial is its own trial, whatever retraining its sweep would do", "[trial][config]") {
  auto j = minimal();
  const auto full = parse_trial_config(j, "t.json");
  CHECK(full.search.retrain);
  CHECK(!to_json(full)["search"].contains("retrain"));  // so existing trial IDs stay what they were
  j["search"]["retrain"] = false;
  const auto probe = parse_trial_config(j, "t.json");
  CHECK(!probe.search.retrain);
  CHECK(trial_id(probe) != trial_id(full));
  CHECK(trial_id(parse_trial_config(to_json(probe), "resolved")) == trial_id(probe));
  j["train"] = {{"epochs", 40}, {"lr", 0.05}};
  CHECK(trial_id(parse_trial_config(j, "t.json")) == trial_id(probe));
  j["search"]["retrain"] = true;
  CHECK(trial_id(parse_trial_config(j, "t.json")) != trial_id(full));
}

TEST_CASE("the trial ID ignores name, threads and device but not what is computed", "[trial][config]") {
  auto j = minimal();
  const auto id = trial_id(parse_trial_config(j, "t.json"));
  j["threads"] = 7;
  j["name"] = "other";
  CHECK(trial_id(parse_trial_config(j, "t.json")) == id);
  j["seed"] = 4;
  CHECK(trial_id(parse_trial_config(j, "t.json")) != id);
}

TEST_CASE("unknown keys and wrong types in a trial config are rejected with their JSON path", "[trial][config]") {
  auto j = minimal();
  j["search"]["complexity_penalt"] = 1;
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"),
                    Catch::Contains("/search/complexity_penalt") && Catch::Contains("complexity_penalty"));
  j = minimal();
  j["search"]["weight_bits"] = {1, 9};
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"), Catch::Contains("/search/weight_bits/1"));
  j = minimal();
  j["model"]["name"] = "resnet-18";
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"), Catch::Contains("/model/name") && Catch::Contains("resnet18"));
  j = minimal();
  j["uniform"] = {{"weight_bits", 2}, {"activation_bits", 2}};
  CHECK_THROWS_AS(parse_trial_config(j, "t.json"), ConfigError);
  j = minimal();
  j["serch"] = j["search"];
  j.erase("search");
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"), "t.json: /serch: unknown key; did you mean \"search\"?");
  j = minimal();
  j["search"]["complexity_penalty"] = -1;
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"), Catch::Contains("/search/complexity_penalty"));
}

TEST_CASE("a uniform baseline trial is described by one bit pair", "[trial][config]") {
  auto j = minimal();
  j.erase("search");
  j["uniform"] = {{"weight_bits", 2}, {"activation_bits", 3}};
  const auto c = parse_trial_config(j, "t.json");
  CHECK(c.mode == TrialMode::uniform);
  CHECK(c.uniform_weight_bits == 2);
  CHECK(c.uniform_activation_bits == 3);
}

TEST_CASE("candidate bit lists are sets: their order does not change the trial", "[trial][config]") {
  auto j = minimal();
  j["search"]["weight_bits"] = {4, 1, 3, 2};
  j["search"]["activation_bits"] = {4, 2, 3};
  const auto shuffled = parse_trial_config(j, "t.json");
  CHECK(shuffled.search.weight_bits == std::vector<int>{1, 2, 3, 4});
  CHECK(trial_id(shuffled) == trial_id(parse_trial_config(minimal(), "t.json")));
  j["search"]["weight_bits"] = {2, 2};
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"), Catch::Contains("/search/weight_bits"));
}

TEST_CASE("cost_convention counts MACs as the released code does only when asked, and is part of the trial",
          "[trial][config]") {
  auto j = minimal();
  const auto plain = parse_trial_config(j, "t.json");
  CHECK(plain.cost_convention == "output");
  CHECK(!to_json(plain).contains("cost_convention"));  // so existing trial IDs stay what they were
  j["cost_convention"] = "released";
  const auto released = parse_trial_config(j, "t.json");
  CHECK(released.cost_convention == "released");
  CHECK(trial_id(released) != trial_id(plain));
  CHECK(trial_id(parse_trial_config(to_json(released), "resolved")) == trial_id(released));
  j["cost_convention"] = "paper";
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"),
                    Catch::Contains("/cost_convention") && Catch::Contains("released"));
}

TEST_CASE("quantizer_steps: the paper preset takes the released step table, the others the computed one",
          "[trial][config]") {
  auto j = minimal();
  const auto scaled = parse_trial_config(j, "t.json");
  CHECK(scaled.quantizer_steps == "computed");
  CHECK(!to_json(scaled).contains("quantizer_steps"));  // so the scaled trials keep their IDs
  j["search"]["preset"] = "paper";
  const auto paper = parse_trial_config(j, "t.json");
  CHECK(paper.quantizer_steps == "released");
  CHECK(to_json(paper).at("quantizer_steps") == "released");  // a paper trial run before the table is another trial
  j["quantizer_steps"] = "computed";
  const auto paper_computed = parse_trial_config(j, "t.json");
  CHECK(paper_computed.quantizer_steps == "computed");
  CHECK(trial_id(paper_computed) != trial_id(paper));
  // Both survive the round trip through the resolved config.
  CHECK(parse_trial_config(to_json(paper_computed), "resolved").quantizer_steps == "computed");
  CHECK(parse_trial_config(to_json(paper), "resolved").quantizer_steps == "released");
  auto uniform = minimal();
  uniform.erase("search");
  uniform["uniform"] = {{"weight_bits", 2}, {"activation_bits", 2}};
  uniform["quantizer_steps"] = "released";
  const auto u = parse_trial_config(uniform, "t.json");
  CHECK(u.quantizer_steps == "released");
  CHECK(parse_trial_config(to_json(u), "resolved").quantizer_steps == "released");
  uniform["quantizer_steps"] = "paper";
  CHECK_THROWS_WITH(parse_trial_config(uniform, "t.json"),
                    Catch::Contains("/quantizer_steps") && Catch::Contains("released"));
}

TEST_CASE("an image folder serves inception_v3 its 299 crops unless the dataset names a size", "[trial][config]") {
  auto j = minimal();
  j["dataset"] = {{"name", "image-folder"}, {"path", "/data/imagenet"}};
  j["model"]["name"] = "inception_v3";
  CHECK(parse_trial_config(j, "t.json").dataset.image_size == 299);
  j["model"]["name"] = "resnet18";
  CHECK(parse_trial_config(j, "t.json").dataset.image_size == 224);
  j["model"]["name"] = "inception_v3";
  j["dataset"]["image_size"] = 160;
  CHECK(parse_trial_config(j, "t.json").dataset.image_size == 160);
}

TEST_CASE("search.cost: BitOps keeps the trial ID, any other cost is part of it, and bad costs name their path",
          "[trial][config][cost]") {
  auto j = minimal();
  const auto plain = parse_trial_config(j, "t.json");
  CHECK(plain.search.cost.plain_bitops());
  j["search"]["cost"] = "bitops";
  CHECK(trial_id(parse_trial_config(j, "t.json")) == trial_id(plain));
  j["search"]["cost"] = "weight_memory";
  const auto memory = parse_trial_config(j, "t.json");
  CHECK(memory.search.cost.measure == CostBasis::weight_memory);
  CHECK(trial_id(memory) != trial_id(plain));
  CHECK(trial_id(parse_trial_config(to_json(memory), "resolved")) == trial_id(memory));
  j["search"]["cost"] = {{"measure", "bitops"}, {"supported_bits", {{"weights", {8, 4}}}}};
  const auto rounded = parse_trial_config(j, "t.json");
  CHECK(rounded.search.cost.supported.weights == std::vector<int>{4, 8});
  CHECK(trial_id(parse_trial_config(to_json(rounded), "resolved")) == trial_id(rounded));
  j["search"]["cost"] = {{"measure", "bitops"}, {"supported_bits", {{"weights", {2}}}}};  // 3- and 4-bit candidates
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"),
                    Catch::Contains("/search/cost/supported_bits/weights") && Catch::Contains("none to round up to"));
  j["search"]["cost"] = "table";
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"), Catch::Contains("/search/cost"));
  j["search"]["cost"] = "latency";
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"), Catch::Contains("/search/cost") && Catch::Contains("bitops"));
  j["search"]["cost"] = {{"measure", "table"}, {"table", "/nonexistent/table.json"}};
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"),
                    Catch::Contains("/search/cost/table") && Catch::Contains("/nonexistent/table.json"));
  j["search"]["cost"] = {{"measure", "weight_memory"}, {"table", "x.json"}};
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"), Catch::Contains("/search/cost/table"));
  j["search"]["cost"] = {{"measure", "bitops"}, {"suported_bits", nlohmann::json::object()}};
  CHECK_THROWS_WITH(parse_trial_config(j, "t.json"), Catch::Contains("suported_bits"));
}

TEST_CASE("a cost table is read relative to its config and a changed file is a different trial",
          "[trial][config][cost]") {
  const auto dir = std::filesystem::temp_directory_path() / ("edmips-cost-config-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "t.json") << R"({"unit": "us", "shapes": {"linear 1>1": {"w2a2": 1}}})";
  auto j = minimal();
  j["search"]["cost"] = {{"measure", "table"}, {"table", "t.json"}};
  const auto first = parse_trial_config(j, "c.json", "", dir);
  REQUIRE(first.search.cost.table);
  CHECK(first.search.cost.table->unit == "us");
  const auto resolved = to_json(first);
  std::ofstream(dir / "t.json") << R"({"unit": "us", "shapes": {"linear 1>1": {"w2a2": 2}}})";
  CHECK(trial_id(parse_trial_config(j, "c.json", "", dir)) != trial_id(first));
  CHECK_THROWS_WITH(parse_trial_config(resolved, "resolved"), Catch::Contains("/search/cost/table_content"));
  std::filesystem::remove_all(dir);
}
