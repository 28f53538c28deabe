#include <catch2/catch.hpp>
#include <fstream>

#include "core/error.h"
#include "core/files.h"
#include "sweep/journal.h"
#include "test_support.h"

using namespace edmips;
using edmips::testing::TempDir;

namespace {
nlohmann::json finished_event(const std::string& id) {
  return {{"event", "trial_finished"},
          {"trial", id},
          {"rank", 1},
          {"attempt", 1},
          {"duration_s", 2.5},
          {"summary", {{"kind", "search"}, {"model", "simple-cnn"}, {"dataset", "fashion-mnist"}, {"seed", 1},
                       {"complexity_penalty", 0.01}, {"weight_bits", "1|2"}, {"activation_bits", "2|4"}}},
          {"result", {{"top1", 81.5}, {"test_loss", 0.5}, {"bitops", 1e6}, {"normalised_bits", 1.9},
                      {"weight_memory_bits", 1e5}, {"total_macs", 10}, {"quantized_macs", 8},
                      {"allocation", {{"layers", {{{"weight_bits", 2}, {"activation_bits", 4}}}}}},
                      {"search", {{"expected_normalised_bits", 2.1}}},
                      {"timings", {{"search_s", 1.0}, {"train_s", 1.5}}}}}};
}
}  // namespace

TEST_CASE("a journal replays finished trials, failures and runs", "[sweep][journal]") {
  TempDir dir;
  {
    Journal journal(dir / "journal.jsonl");
    journal.append({{"event", "sweep_started"}});
    journal.append({{"event", "trial_started"}, {"trial", "a"}});
    journal.append({{"event", "trial_failed"}, {"trial", "a"}});
    journal.append(finished_event("a"));
  }
  const auto state = read_journal(dir / "journal.jsonl");
  CHECK(state.runs == 1);
  CHECK(state.finished.count("a") == 1);
  CHECK(state.failures.at("a") == 1);
  CHECK_FALSE(state.torn_tail);
}

TEST_CASE("a torn last journal line is reported and dropped, earlier events survive", "[sweep][journal]") {
  TempDir dir;
  const auto path = dir / "journal.jsonl";
  {
    Journal journal(path);
    journal.append(finished_event("a"));
  }
  {
    std::ofstream out(path, std::ios::app);
    out << R"({"event": "trial_finished", "trial": "b", "ra)";  // crash mid-write
  }
  const auto state = read_journal(path);
  CHECK(state.torn_tail);
  CHECK(state.finished.size() == 1);
  {
    Journal journal(path);
    CHECK(journal.initial_state().torn_tail);
    journal.append(finished_event("c"));
  }
  const auto after = read_journal(path);
  CHECK_FALSE(after.torn_tail);
  CHECK(after.finished.size() == 2);
  CHECK(after.finished.count("c") == 1);
}

TEST_CASE("a corrupt line in the middle of a journal is an error naming the line", "[sweep][journal]") {
  TempDir dir;
  const auto path = dir / "journal.jsonl";
  edmips::testing::write_file(path, "{\"event\": \"sweep_started\"}\nnot json\n{\"event\": \"sweep_started\"}\n");
  CHECK_THROWS_WITH(read_journal(path), Catch::Contains("journal.jsonl:2"));
}

TEST_CASE("results.csv has a header and exactly one row per finished trial", "[sweep][journal]") {
  TempDir dir;
  std::map<std::string, nlohmann::json> finished = {{"a", finished_event("a")}, {"b", finished_event("b")}};
  write_results_csv(dir / "results.csv", finished);
  const auto text = read_text_file(dir / "results.csv");
  CHECK(std::count(text.begin(), text.end(), '\n') == 3);
  CHECK(text.rfind("trial_id,configuration_id,kind,model", 0) == 0);
  CHECK(text.find("\na,,search,simple-cnn,fashion-mnist,1,0.01,1|2,2|4,81.5,") != std::string::npos);
  CHECK(text.find(",in_current_sweep\n") != std::string::npos);
}

TEST_CASE("results.csv keeps trials the sweep file no longer lists, marked", "[sweep][journal]") {
  TempDir dir;
  std::map<std::string, nlohmann::json> finished = {{"a", finished_event("a")}, {"b", finished_event("b")}};
  write_results_csv(dir / "results.csv", finished, {"b", "c"});
  const auto text = read_text_file(dir / "results.csv");
  CHECK(std::count(text.begin(), text.end(), '\n') == 3);
  const auto a = text.substr(text.find("\na,"));
  CHECK(a.substr(0, a.find('\n', 1)).substr(a.find('\n', 1) - 2) == ",0");
  const auto b = text.substr(text.find("\nb,"));
  CHECK(b.substr(0, b.find('\n', 1)).substr(b.find('\n', 1) - 2) == ",1");
}
