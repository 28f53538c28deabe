#include "sweep/coordinator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <set>

#include "core/duration_text.h"
#include "core/files.h"
#include "core/number_text.h"
#include "core/process.h"
#include "sweep/budget_planner.h"
#include "sweep/journal.h"

namespace edmips {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string describe(const PlannedTrial& t) {
  const auto& s = t.summary;
  std::string text = t.config.model + " seed " + std::to_string(t.config.seed);
  if (t.kind == TrialKind::probe || t.kind == TrialKind::budget) {
    text += std::string(t.kind == TrialKind::probe ? " probe" : " retraining") + " for budget " +
            short_number(s.value("budget", 0.0)) + " " + s.value("budget_cost", std::string("?"));
    text += " lambda " + short_number(s.value("complexity_penalty", 0.0));
  } else if (t.kind == TrialKind::search) {
    text += " lambda " + short_number(t.config.search.complexity_penalty);
    text += " bits w" + s["weight_bits"].get<std::string>() + " a" + s["activation_bits"].get<std::string>();
  } else {
    text +=
        " uniform w" + s["weight_bits"].get<std::string>() + "a" + s["activation_bits"].get<std::string>();
  }
  return text;
}

class Coordinator {
 public:
  Coordinator(const SweepDefinition& sweep, CoordinatorEndpoint& endpoint, const CoordinatorOptions& options)
      : sweep_(sweep),
        endpoint_(endpoint),
        options_(options),
        journal_(options.out / sweep_files::journal),
        budgets_(sweep, journal_.initial_state()) {}

  ExitCode run() {
    start();
    active_ = endpoint_.worker_count();  // workers not yet told to stop
    while (active_ > 0) {
      if (!stopping_ && options_.stop_requested && options_.stop_requested->load()) begin_stop();
      auto message = endpoint_.receive(std::chrono::milliseconds(100));
      if (message) on_message(message->first, message->second);
    }
    return finish();
  }

 private:
  /// Restores what the journal knows, queues the rest (longest first) and
  /// journals the start of this run.
  void start() {
    const auto& initial = journal_.initial_state();
    if (initial.torn_tail) {
      say("journal: dropped a torn last line (" + std::to_string(initial.torn_bytes) +
          " bytes) left by an interrupted write");
    }
    finished_ = initial.finished;
    failures_before_ = initial.failures;
    std::vector<const PlannedTrial*> todo;
    for (const auto& t : sweep_.trials) {
      if (!finished_.count(t.id)) todo.push_back(&t);
    }
    // Longest expected trials first, so the last ones to finish are short.
    std::stable_sort(todo.begin(), todo.end(), [](const PlannedTrial* a, const PlannedTrial* b) {
      return a->expected_cost > b->expected_cost;
    });
    pending_.assign(todo.begin(), todo.end());
    for (const auto& t : sweep_.trials) current_.insert(t.id);
    for (const auto& g : sweep_.budgets) {
      budget_families_.insert(g.family);
      budget_groups_.insert(g.id);
    }
    for (const auto& [id, event] : finished_) {
      if (is_current_budget_trial(event)) current_.insert(id);
    }
    const size_t finished_in_sweep = done_in_sweep();
    // Trials an earlier version of the sweep file listed: their results stay
    // (results.csv marks them, pareto counts them); nothing of theirs runs.
    size_t no_longer_listed = 0;
    for (const auto& [id, event] : finished_) no_longer_listed += !current_.count(id);
    journal_.append({{"event", to_string(EventType::sweep_started)},
                     {"sweep", sweep_.name},
                     {"trials", sweep_.trials.size()},
                     {"budgets", budgets_.size()},
                     {"already_finished", finished_in_sweep},
                     {"no_longer_listed", no_longer_listed},
                     {"ranks", endpoint_.worker_count() * sweep_.ranks_per_trial},
                     {"ranks_per_trial", sweep_.ranks_per_trial},
                     {"run", initial.runs + 1}});
    say("sweep " + sweep_.name + ": " + std::to_string(sweep_.trials.size()) + " trials" +
        (budgets_.size() ? " and " + std::to_string(budgets_.size()) + " budgets" : std::string()) + ", " +
        std::to_string(finished_in_sweep) + " trials already finished, " +
        (sweep_.ranks_per_trial > 1 ? std::to_string(endpoint_.worker_count()) + " groups of " +
                                          std::to_string(sweep_.ranks_per_trial) + " ranks"
                                    : std::to_string(endpoint_.worker_count()) + " ranks"));
    if (no_longer_listed > 0) {
      say("sweep " + sweep_.name + ": " + std::to_string(no_longer_listed) +
          " finished trials of this directory are no longer in the sweep file; their results stay in "
          "results.csv (in_current_sweep 0) and in the report");
    }
    write_outputs();
  }

  /// One worker's message: a result is recorded, then idle workers get work.
  void on_message(int worker, const nlohmann::json& m) {
    const auto type = message_type_of(m);
    if (m.contains("host")) hosts_[worker] = m.value("host", "?");
    if (type == MessageType::interrupted) {
      on_interrupted(worker, m);
      --active_;  // an interrupted worker has left its loop
      return;
    }
    // "ready", or done with a trial. The result is recorded before the
    // worker's next trial is chosen: a finished probe changes what the
    // budgets run next.
    std::optional<Running> done;
    if (type == MessageType::finished || type == MessageType::failed) {
      auto it = running_.find(worker);
      if (it != running_.end()) {
        done = it->second;
        running_.erase(it);
      }
    }
    if (done && type == MessageType::failed) requeue_if_retrying(*done, m.value("retryable", true));
    if (done && type == MessageType::finished) on_finished(worker, *done, m);
    if (done && type == MessageType::failed) on_failed(worker, *done, m);
    idle_.push_back(worker);
    // Idle workers take what there is now (a retry, a probe, a retraining).
    while (!idle_.empty() && !stopping_) {
      const auto next = dispatch(idle_.front());
      if (!next) break;
      journal_started(idle_.front(), *next);
      idle_.erase(idle_.begin());
    }
    // Nothing runs and nothing could start: every trial and budget is
    // settled, so release every idle worker.
    if (running_.empty() || stopping_) release_idle_workers();
    write_outputs();
    if (done) summary_line();
  }

  /// Journals the end of this run; the sweep's exit code.
  ExitCode finish() {
    const bool interrupted = stopping_;
    const size_t failed = failed_count();
    const size_t done = done_count();
    journal_.append(
        {{"event", to_string(interrupted ? EventType::sweep_interrupted : EventType::sweep_finished)},
         {"done", done},
         {"failed", failed},
         {"total", total()}});
    write_outputs();
    say("sweep " + sweep_.name + (interrupted ? " interrupted" : " finished") + ": " + std::to_string(done) +
        "/" + std::to_string(total()) + " done, " + std::to_string(failed) + " failed" +
        (interrupted ? "; run the same command again to resume" : ""));
    if (interrupted) return ExitCode::interrupted;
    return done == total() ? ExitCode::ok : ExitCode::failure;
  }

  struct Running {
    const PlannedTrial* trial;
    int attempt;
    Clock::time_point since;
    std::string since_utc;
  };

  /// Finished trials that the current sweep file lists.
  size_t done_in_sweep() const {
    size_t done = 0;
    for (const auto& t : sweep_.trials) done += finished_.count(t.id);
    return done;
  }

  /// A probe of a family, or a retraining of a budget, the current sweep file has.
  bool is_current_budget_trial(const nlohmann::json& event) const {
    const auto& s = event.at("summary");
    const auto kind = trial_kind_of(s);
    if (kind == TrialKind::probe) return budget_families_.count(s.value("family", "")) > 0;
    if (kind == TrialKind::budget) return budget_groups_.count(s.value("budget_group", "")) > 0;
    return false;
  }

  /// What the sweep stands for: its trials and its budgets (each done once
  /// its allocation is retrained, or found impossible).
  size_t total() const { return sweep_.trials.size() + budgets_.size(); }
  size_t done_count() const { return done_in_sweep() + budgets_.done(); }
  /// Trials of the sweep file that failed after their retries, and budgets
  /// whose probe or retraining did.
  size_t failed_count() const {
    size_t failed = budgets_.failed();
    for (const auto& t : sweep_.trials) failed += failed_final_.count(t.id);
    return failed;
  }

  /// What the budgets need next, chosen from the results known now (so a
  /// probe's lambda is never older than the rank that runs it); their
  /// decisions are journaled. Budget work goes ahead of the other pending
  /// trials: later probes and retrainings wait on it.
  const PlannedTrial* next_budget_trial() {
    if (budgets_.size() == 0) return nullptr;
    std::set<std::string> in_flight;
    for (const auto* t : pending_) in_flight.insert(t->id);
    for (const auto& [worker, run] : running_) in_flight.insert(run.trial->id);
    auto step = budgets_.plan(finished_, in_flight, failed_final_);
    for (auto& event : step.events) journal_.append(std::move(event));
    for (const auto& line : step.log) say(line);
    return step.start.empty() ? nullptr : step.start.front();
  }

  std::string host_of(int worker) const {
    const auto it = hosts_.find(worker);
    return it == hosts_.end() ? "?" : it->second;
  }

  void say(const std::string& line) {
    if (options_.log) *options_.log << line << std::endl;
  }

  /// Sends the next trial (a budget's, else the next pending one) to
  /// `worker`; the caller journals it.
  std::optional<Running> dispatch(int worker) {
    if (stopping_) return std::nullopt;
    const PlannedTrial* t = next_budget_trial();
    if (!t) {
      if (pending_.empty()) return std::nullopt;
      t = pending_.front();
      pending_.pop_front();
    }
    const int attempt = failures_before_[t->id] + failures_now_[t->id] + 1;
    running_[worker] = {t, attempt, Clock::now(), utc_now()};
    nlohmann::json message = {{"type", to_string(MessageType::run)}, {"trial", t->id}, {"attempt", attempt}};
    // Probes and retrainings are not in the workers' sweep file: they get the config.
    if (t->dynamic) message["config"] = to_json(t->config);
    endpoint_.send(worker, message);
    return running_[worker];
  }

  /// "rank 3", or a group's "ranks 2,3" (world ranks, its leader first).
  std::string rank_label(int worker) const {
    if (sweep_.ranks_per_trial <= 1) return "rank " + std::to_string(endpoint_.rank_of(worker));
    std::string text = "ranks ";
    for (int r : endpoint_.ranks_of(worker)) text += (text.size() > 6 ? "," : "") + std::to_string(r);
    return text;
  }

  void journal_started(int worker, const Running& run) {
    const auto* t = run.trial;
    journal_.append({{"event", to_string(EventType::trial_started)},
                     {"trial", t->id},
                     {"rank", endpoint_.rank_of(worker)},
                     {"host", host_of(worker)},
                     {"attempt", run.attempt},
                     {"expected_cost", t->expected_cost},
                     {"summary", t->summary}});
    say("start  " + t->id + "  " + rank_label(worker) + "  " + describe(*t));
  }

  void on_finished(int worker, const Running& run, const nlohmann::json& m) {
    const double duration = std::chrono::duration<double>(Clock::now() - run.since).count();
    durations_.push_back(duration);
    if (finished_.count(run.trial->id)) return;  // never record a trial twice
    auto result = m.at("result");
    result.erase("layers");  // the per-layer report stays in the trial's own result.json
    nlohmann::json event = {{"event", to_string(EventType::trial_finished)},
                            {"trial", run.trial->id},
                            {"rank", endpoint_.rank_of(worker)},
                            {"attempt", run.attempt},
                            {"duration_s", duration},
                            {"summary", run.trial->summary},
                            {"result", result}};
    journal_.append(event);
    finished_[run.trial->id] = event;
    if (run.trial->dynamic) current_.insert(run.trial->id);
    char line[256];
    char accuracy[32] = "search only";
    if (result.contains("top1") && result["top1"].is_number()) {
      std::snprintf(accuracy, sizeof accuracy, "top1 %.2f%%", result["top1"].get<double>());
    }
    std::snprintf(line, sizeof line, "done   %s  %s  %s  bits %.3f  %s", run.trial->id.c_str(),
                  rank_label(worker).c_str(), accuracy, result.value("normalised_bits", 0.0),
                  format_duration(duration).c_str());
    say(line);
  }

  /// Counts the failure and puts the trial back in the queue if it has retries left.
  void requeue_if_retrying(const Running& run, bool retryable) {
    int& failures = failures_now_[run.trial->id];
    failures = retryable ? failures + 1 : sweep_.max_retries + 1;  // a bad file: no retry would read another
    if (failures <= sweep_.max_retries && !stopping_) pending_.push_back(run.trial);
  }

  void on_failed(int worker, const Running& run, const nlohmann::json& m) {
    const bool retry = failures_now_[run.trial->id] <= sweep_.max_retries && !stopping_;
    const std::string error = m.value("error", "unknown error");
    journal_.append({{"event", to_string(EventType::trial_failed)},
                     {"trial", run.trial->id},
                     {"rank", endpoint_.rank_of(worker)},
                     {"attempt", run.attempt},
                     {"error", error},
                     {"will_retry", retry}});
    say("failed " + run.trial->id + "  " + rank_label(worker) + "  attempt " + std::to_string(run.attempt) +
        ": " + error + (retry ? " (will retry)" : ""));
    if (!retry) failed_final_.insert(run.trial->id);
  }

  void on_interrupted(int worker, const nlohmann::json& m) {
    auto it = running_.find(worker);
    if (it != running_.end()) {
      journal_.append({{"event", to_string(EventType::trial_interrupted)},
                       {"trial", it->second.trial->id},
                       {"rank", endpoint_.rank_of(worker)},
                       {"message", m.value("message", "")}});
      say("paused " + it->second.trial->id + "  " + rank_label(worker) + "  (checkpointed)");
      pending_.push_front(it->second.trial);
      running_.erase(it);
    }
    // A worker stopped on its own (it got the signal first): stop the rest too.
    if (!stopping_) begin_stop();
    write_outputs();
  }

  void begin_stop() {
    stopping_ = true;
    say("stop requested: running trials checkpoint and stop");
    for (const auto& [worker, run] : running_) endpoint_.abort(worker);
    release_idle_workers();
  }

  void release_idle_workers() {
    for (int w : idle_) {
      endpoint_.send(w, {{"type", to_string(MessageType::stop)}});
      --active_;
    }
    idle_.clear();
  }

  double eta_seconds() const {
    if (durations_.empty()) return -1;
    double mean = 0;
    for (double d : durations_) mean += d;
    mean /= double(durations_.size());
    // A budget still open is counted as two trials (a probe or two and its
    // retraining): a rough figure, refined as budgets settle.
    const double open_budgets = double(budgets_.size() - budgets_.done() - budgets_.failed());
    const double work = double(pending_.size()) + 0.5 * double(running_.size()) + 2.0 * open_budgets;
    return mean * work / std::max(1, endpoint_.worker_count());
  }

  void summary_line() {
    const size_t done = done_count();
    const double eta = eta_seconds();
    say("sweep  done " + std::to_string(done) + "/" + std::to_string(total()) + "  running " +
        std::to_string(running_.size()) + "  failed " + std::to_string(failed_count()) + "  pending " +
        std::to_string(pending_.size()) + "  eta " + (eta < 0 ? std::string("?") : format_duration(eta)));
  }

  void write_outputs() {
    const size_t done = done_count();
    write_results_csv(options_.out / sweep_files::results, finished_, current_);
    nlohmann::json running = nlohmann::json::array();
    for (const auto& [worker, run] : running_) {
      running.push_back({{"trial", run.trial->id},
                         {"rank", endpoint_.rank_of(worker)},
                         {"host", host_of(worker)},
                         {"attempt", run.attempt},
                         {"since", run.since_utc}});
      if (sweep_.ranks_per_trial > 1) running.back()["group_ranks"] = endpoint_.ranks_of(worker);
    }
    const double eta = eta_seconds();
    nlohmann::json status = {{"sweep", sweep_.name},
                             {"total", total()},
                             {"done", done},
                             {"running", running},
                             {"failed", std::vector<std::string>(failed_final_.begin(), failed_final_.end())},
                             {"pending", pending_.size()},
                             {"eta_s", eta < 0 ? nlohmann::json() : nlohmann::json(eta)},
                             {"stopping", stopping_},
                             {"updated", utc_now()}};
    if (budgets_.size()) status["budgets"] = budgets_.status();
    write_file_atomically(options_.out / sweep_files::status, status.dump(2) + "\n", Durability::replaceable);
  }

  const SweepDefinition& sweep_;
  CoordinatorEndpoint& endpoint_;
  CoordinatorOptions options_;
  Journal journal_;
  BudgetPlanner budgets_;
  std::map<std::string, nlohmann::json> finished_;  ///< every trial the directory's journal finished
  std::set<std::string> current_;  ///< the trials the current sweep file lists, and its budgets' trials
  std::set<std::string> budget_families_, budget_groups_;
  std::map<std::string, int> failures_before_, failures_now_;
  std::set<std::string> failed_final_;
  std::deque<const PlannedTrial*> pending_;
  std::map<int, Running> running_;
  std::vector<int> idle_;
  std::vector<double> durations_;
  std::map<int, std::string> hosts_;
  bool stopping_ = false;
  int active_ = 0;
};

}  // namespace

ExitCode run_coordinator(const SweepDefinition& sweep, CoordinatorEndpoint& endpoint,
                         const CoordinatorOptions& options) {
  return Coordinator(sweep, endpoint, options).run();
}

namespace {

/// Runs the trial; in a group, this rank's failure (not one it heard of)
/// reaches the other ranks before it propagates.
nlohmann::json run_in_group(TrialExecutor& executor, const TrialConfig& config, const fs::path& directory,
                            const TrialRunOptions& options, ProcessGroup* group) {
  try {
    return executor.run(config, directory, options);
  } catch (const GroupFailure&) {
    throw;
  } catch (const Error& e) {
    if (group) group->report_failure(e.what(), e.code());
    throw;
  } catch (const std::exception& e) {
    if (group) group->report_failure(e.what(), ExitCode::failure);
    throw;
  }
}

/// Tells the followers to stop when the leader's loop ends, however it ends.
struct StopFollowers {
  TrialGroupChannel* group;
  ~StopFollowers() {
    if (!group) return;
    try {
      group->share({{"type", to_string(MessageType::stop)}});
    } catch (...) {
      // The job is ending anyway; MPI will tell.
    }
  }
};

}  // namespace

void run_follower(TrialGroupChannel& group, TrialExecutor& executor, const WorkerOptions& options) {
  while (true) {
    const auto message = group.share(nullptr);
    if (message_type_of(message) != MessageType::run) return;  // stop
    const std::string id = message.value("trial", "");
    const auto trial_group = group.start_trial();
    TrialRunOptions run_options;
    run_options.threads = options.threads;
    run_options.node_local_rank = options.node_local_rank;
    run_options.stop_requested = options.stop_requested;
    run_options.group = trial_group.get();
    try {
      const auto config = parse_trial_config(message.at("config"), "the group leader's trial " + id);
      if (trial_id(config) != id) {
        throw Error("the leader's config hashes to " + trial_id(config) + " here (edmips versions differ?)");
      }
      run_in_group(executor, config, options.out / sweep_files::trials / id, run_options, trial_group.get());
    } catch (const GroupFailure&) {
      // The rank that failed reported it; the leader reports the trial.
    } catch (const Interrupted&) {
      // The whole group stopped at the same step; the leader checkpointed.
    } catch (const std::exception& e) {
      write_stderr_line("edmips[rank " + std::to_string(options.rank) + "]: trial " + id +
                        " failed on this rank of its group: " + shorten_message(e.what()));
    }
  }
}

void run_worker(const SweepDefinition& sweep, WorkerEndpoint& endpoint, TrialExecutor& executor,
                const WorkerOptions& options) {
  const StopFollowers stop_followers{options.group};
  std::map<std::string, const PlannedTrial*> by_id;
  for (const auto& t : sweep.trials) by_id[t.id] = &t;
  endpoint.send({{"type", to_string(MessageType::ready)}, {"host", host_name()}});
  while (true) {
    const auto message = endpoint.receive();
    if (message_type_of(message) != MessageType::run) return;  // stop
    const std::string id = message.at("trial");
    TrialConfig config;
    if (message.contains("config")) {
      // A budget's probe or retraining: chosen by the coordinator as the sweep runs.
      try {
        config = parse_trial_config(message["config"], "the coordinator's trial " + id);
      } catch (const std::exception& e) {
        endpoint.send({{"type", to_string(MessageType::failed)}, {"trial", id}, {"error", e.what()}});
        continue;
      }
      if (trial_id(config) != id) {
        endpoint.send({{"type", to_string(MessageType::failed)},
                       {"trial", id},
                       {"error", "the coordinator's config hashes to " + trial_id(config) +
                                     " (edmips versions differ between ranks?)"}});
        continue;
      }
    } else {
      const auto it = by_id.find(id);
      if (it == by_id.end()) {
        endpoint.send({{"type", to_string(MessageType::failed)},
                       {"trial", id},
                       {"error", "unknown trial (sweep files differ between ranks?)"}});
        continue;
      }
      config = it->second->config;
    }
    if (options.stop_requested && options.stop_requested->load()) {
      endpoint.send({{"type", to_string(MessageType::interrupted)},
                     {"trial", id},
                     {"message", "stop requested before start"}});
      return;
    }
    const auto directory = options.out / sweep_files::trials / id;
    fs::create_directories(directory);
    std::ofstream log(directory / "log.txt", std::ios::app);
    TrialRunOptions run_options;
    run_options.threads = options.threads;
    run_options.node_local_rank = options.node_local_rank;
    run_options.stop_requested = options.stop_requested;
    std::unique_ptr<ProcessGroup> trial_group;
    if (options.group) {
      // The group's other ranks run the same config (as this rank resolved it).
      options.group->share(
          {{"type", to_string(MessageType::run)}, {"trial", id}, {"config", to_json(config)}});
      trial_group = options.group->start_trial();
      run_options.group = trial_group.get();
      log << "group of " << options.group->size() << " ranks" << std::endl;
    }
    run_options.progress = [&log](const std::string& line) { log << line << std::endl; };
    if (options.live) {
      run_options.batch_progress = [&options, &id](const BatchProgress& p) {
        options.live->show(id + "  " + to_string(p));
      };
    }
    const auto watcher = options.stop_requested ? endpoint.watch_for_abort(*options.stop_requested) : nullptr;
    // The live line goes before the worker reports, so the coordinator's
    // next line starts on a clean row.
    auto clear_live = [&] {
      if (options.live) options.live->clear();
    };
    try {
      const auto result = run_in_group(executor, config, directory, run_options, trial_group.get());
      clear_live();
      endpoint.send({{"type", to_string(MessageType::finished)}, {"trial", id}, {"result", result}});
    } catch (const Interrupted& e) {
      clear_live();
      log << "interrupted: " << e.what() << std::endl;
      endpoint.send({{"type", to_string(MessageType::interrupted)}, {"trial", id}, {"message", e.what()}});
      return;
    } catch (const Error& e) {
      clear_live();
      log << "failed: " << e.what() << std::endl;
      // A bad or damaged file (exit 2 or 3: a checkpoint of another trial, a
      // torn result) fails the same way on every attempt: not retried.
      const bool retryable = e.code() != ExitCode::invalid_input && e.code() != ExitCode::data_error;
      endpoint.send({{"type", to_string(MessageType::failed)},
                     {"trial", id},
                     {"error", shorten_message(e.what())},
                     {"retryable", retryable}});
    } catch (const std::exception& e) {
      clear_live();
      log << "failed: " << e.what() << std::endl;
      endpoint.send(
          {{"type", to_string(MessageType::failed)}, {"trial", id}, {"error", shorten_message(e.what())}});
    }
  }
}

}  // namespace edmips
