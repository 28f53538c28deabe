// The coordinator on the in-process transport: real run_coordinator and
// run_worker threads, the fake executor's quick trials, the real journal on
// disk. The order of dispatch, failures and their retries, a worker that
// dies, budget work ahead of the grid, and exactly once across a replayed
// journal, without MPI (tests/integration/test_sweep_mpi.py runs the same
// machinery on real MPI ranks).
#include <catch2/catch.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "sweep/coordinator.h"
#include "sweep/journal.h"
#include "sweep/transport_local.h"
#include "test_support.h"

using namespace edmips;
using edmips::testing::TempDir;

namespace {

SweepDefinition sweep_of(const std::string& text) {
  return parse_sweep(nlohmann::json::parse(text), "test-sweep.json");
}

/// The fake executor, with a hook the test may use before each trial.
class HookedExecutor : public TrialExecutor {
 public:
  HookedExecutor(FakeExecutorOptions options, std::function<void(const TrialConfig&)> before)
      : fake_(make_fake_executor(options)), before_(std::move(before)) {}
  nlohmann::json run(const TrialConfig& config, const std::filesystem::path& directory,
                     const TrialRunOptions& options) override {
    if (before_) before_(config);
    return fake_->run(config, directory, options);
  }

 private:
  std::unique_ptr<TrialExecutor> fake_;
  std::function<void(const TrialConfig&)> before_;
};

struct Outcome {
  ExitCode code = ExitCode::internal_error;
  std::string error;  ///< what run_coordinator threw, if it threw
  std::vector<nlohmann::json> events;  ///< the journal's events after the run
};

std::vector<nlohmann::json> journal_events(const std::filesystem::path& out) {
  std::ifstream in(out / sweep_files::journal);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<nlohmann::json> events;
  for_each_journal_event(text, "journal", [&](const nlohmann::json& e) { events.push_back(e); });
  return events;
}

/// Runs one sweep on `workers` in-process workers until it ends.
/// `before(worker, config, transport)` runs before each trial on its worker.
Outcome run_sweep_in_process(const SweepDefinition& sweep, const std::filesystem::path& out, int workers,
                             FakeExecutorOptions fake = {},
                             std::function<void(int, const TrialConfig&, InProcessTransport&)> before = {}) {
  fake.duration_s = 0;
  std::filesystem::create_directories(out / sweep_files::trials);
  InProcessTransport transport(workers);
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      HookedExecutor executor(fake, [&, w](const TrialConfig& c) {
        if (before) before(w, c, transport);
      });
      WorkerOptions options;
      options.out = out;
      options.rank = w;
      run_worker(sweep, transport.worker(w), executor, options);
    });
  }
  Outcome outcome;
  CoordinatorOptions options;
  options.out = out;
  try {
    outcome.code = run_coordinator(sweep, transport.coordinator(), options);
  } catch (const Error& e) {
    outcome.error = e.what();
  }
  // A coordinator that threw leaves its workers waiting: release them.
  if (!outcome.error.empty()) {
    for (int w = 0; w < workers; ++w) transport.coordinator().send(w, {{"type", "stop"}});
  }
  for (auto& t : threads) t.join();
  outcome.events = journal_events(out);
  return outcome;
}

std::vector<nlohmann::json> of_type(const std::vector<nlohmann::json>& events, const std::string& type) {
  std::vector<nlohmann::json> found;
  for (const auto& e : events) {
    if (e.at("event") == type) found.push_back(e);
  }
  return found;
}

std::map<std::string, int> finished_counts(const std::vector<nlohmann::json>& events) {
  std::map<std::string, int> counts;
  for (const auto& e : of_type(events, "trial_finished")) ++counts[e.at("trial").get<std::string>()];
  return counts;
}

const char* kGrid = R"({
  "name": "grid",
  "base": {"dataset": {"train_subset": 100}, "search": {"epochs": 1}, "train": {"epochs": 1}},
  "axes": {"complexity_penalty": [0, 0.001], "seeds": [1, 2, 3]},
  "baselines": [[2, 2], [4, 4]]
})";

}  // namespace

TEST_CASE("coordinator: trials go out longest expected first, each once, on every worker", "[sweep][coordinator]") {
  TempDir dir;
  const auto sweep = sweep_of(kGrid);
  REQUIRE(sweep.trials.size() == 12);  // 6 searches, 2 baselines per seed
  const auto outcome = run_sweep_in_process(sweep, dir.path(), 1);
  REQUIRE(outcome.code == ExitCode::ok);
  const auto started = of_type(outcome.events, "trial_started");
  REQUIRE(started.size() == 12);
  // One worker takes them one by one: the order of dispatch is the order of
  // expected cost, largest first (searches before the cheaper baselines).
  for (size_t i = 1; i < started.size(); ++i) {
    CHECK(started[i - 1].at("expected_cost").get<double>() >= started[i].at("expected_cost").get<double>());
  }
  CHECK(started.front().at("summary").at("kind") == "search");
  CHECK(started.back().at("summary").at("kind") == "uniform");
  const auto counts = finished_counts(outcome.events);
  CHECK(counts.size() == 12);
  for (const auto& [id, n] : counts) CHECK(n == 1);

  TempDir wide;
  const auto three = run_sweep_in_process(sweep, wide.path(), 3);
  REQUIRE(three.code == ExitCode::ok);
  std::set<int> ranks;
  for (const auto& e : of_type(three.events, "trial_started")) ranks.insert(e.at("rank").get<int>());
  CHECK(ranks == std::set<int>{0, 1, 2});
  CHECK(finished_counts(three.events).size() == 12);
}

TEST_CASE("coordinator: a failing trial is retried; one that keeps failing fails the sweep once", "[sweep][coordinator]") {
  const auto sweep = sweep_of(kGrid);  // max_retries 1 (the default)
  REQUIRE(sweep.max_retries == 1);
  SECTION("fails once, then finishes") {
    TempDir dir;
    FakeExecutorOptions fake;
    fake.fail_once_seed = 2;
    const auto outcome = run_sweep_in_process(sweep, dir.path(), 2, fake);
    CHECK(outcome.code == ExitCode::ok);
    const auto failed = of_type(outcome.events, "trial_failed");
    REQUIRE(failed.size() == 4);  // seed 2: two searches, two baselines
    for (const auto& f : failed) CHECK(f.at("will_retry") == true);
    const auto counts = finished_counts(outcome.events);
    CHECK(counts.size() == 12);
    for (const auto& f : failed) CHECK(counts.at(f.at("trial").get<std::string>()) == 1);
  }
  SECTION("always fails: one retry, then the sweep reports the failure") {
    TempDir dir;
    FakeExecutorOptions fake;
    fake.fail_always_seed = 3;
    const auto outcome = run_sweep_in_process(sweep, dir.path(), 2, fake);
    CHECK(outcome.code == ExitCode::failure);
    std::map<std::string, std::vector<bool>> retries;
    for (const auto& f : of_type(outcome.events, "trial_failed")) {
      retries[f.at("trial").get<std::string>()].push_back(f.at("will_retry").get<bool>());
    }
    REQUIRE(retries.size() == 4);
    for (const auto& [id, r] : retries) CHECK(r == std::vector<bool>{true, false});
    CHECK(finished_counts(outcome.events).size() == 8);
    const auto end = of_type(outcome.events, "sweep_finished");
    REQUIRE(end.size() == 1);
    CHECK(end[0].at("failed") == 4);
  }
}

TEST_CASE("coordinator: a worker that dies mid-trial; the next run finishes every trial exactly once",
          "[sweep][coordinator]") {
  TempDir dir;
  const auto sweep = sweep_of(kGrid);
  std::string victim;
  std::mutex mutex;
  int started_on_one = 0;
  // Worker 1 dies as its second trial starts (the first has finished).
  const auto first = run_sweep_in_process(sweep, dir.path(), 2, {},
                                          [&](int w, const TrialConfig& c, InProcessTransport& t) {
                                            if (w != 1) return;
                                            std::lock_guard<std::mutex> lock(mutex);
                                            if (++started_on_one == 2) {
                                              victim = trial_id(c);
                                              t.kill_worker(1);
                                            }
                                          });
  REQUIRE(!victim.empty());
  CHECK(first.error.find("worker 1 is gone") != std::string::npos);
  const auto before = finished_counts(first.events);
  CHECK(before.count(victim) == 0);
  CHECK(before.size() < 12);

  // The replayed journal: what finished stays finished, the victim runs again.
  const auto second = run_sweep_in_process(sweep, dir.path(), 2);
  REQUIRE(second.code == ExitCode::ok);
  std::set<std::string> restarted;
  bool in_second_run = false;
  for (const auto& e : second.events) {
    if (e.at("event") == "sweep_started") in_second_run = e.at("run") == 2;
    if (in_second_run && e.at("event") == "trial_started") restarted.insert(e.at("trial").get<std::string>());
  }
  CHECK(restarted.count(victim) == 1);
  for (const auto& [id, n] : before) CHECK(restarted.count(id) == 0);
  const auto counts = finished_counts(second.events);
  CHECK(counts.size() == 12);
  for (const auto& [id, n] : counts) CHECK(n == 1);

  // A third run has nothing to do and starts nothing.
  const auto third = run_sweep_in_process(sweep, dir.path(), 2);
  CHECK(third.code == ExitCode::ok);
  CHECK(of_type(third.events, "trial_started").size() == of_type(second.events, "trial_started").size());
  CHECK(of_type(third.events, "sweep_started").size() == 3);
}

TEST_CASE("coordinator: budget probes go ahead of the grid, and each budget is decided once", "[sweep][coordinator]") {
  TempDir dir;
  const auto sweep = sweep_of(R"({
    "name": "budgets",
    "base": {"dataset": {"train_subset": 100}, "search": {"epochs": 1}, "train": {"epochs": 1}},
    "axes": {"seeds": [1], "budgets": {"values": [2.5]}},
    "baselines": [[2, 2], [4, 4]]
  })");
  REQUIRE(sweep.budgets.size() == 1);
  const auto outcome = run_sweep_in_process(sweep, dir.path(), 1);
  REQUIRE(outcome.code == ExitCode::ok);
  const auto started = of_type(outcome.events, "trial_started");
  REQUIRE(!started.empty());
  // The first trial out is the budget's probe, although the baselines were pending.
  CHECK(started.front().at("summary").at("kind") == "probe");
  // On one worker the budget's probes and its retraining all go before the baselines.
  size_t last_budget_work = 0, first_grid = started.size();
  for (size_t i = 0; i < started.size(); ++i) {
    const auto kind = started[i].at("summary").at("kind").get<std::string>();
    if (kind == "probe" || kind == "budget") last_budget_work = i;  // as the journal spells them
    else first_grid = std::min(first_grid, i);
  }
  CHECK(last_budget_work < first_grid);
  CHECK(first_grid == started.size() - sweep.trials.size());
  const auto decided = of_type(outcome.events, "budget_decided");
  REQUIRE(decided.size() == 1);
  CHECK((decided[0].at("state") == "met" || decided[0].at("state") == "gave_up"));
  const auto counts = finished_counts(outcome.events);
  for (const auto& [id, n] : counts) CHECK(n == 1);
}
