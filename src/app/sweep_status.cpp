#include "app/sweep_status.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "core/duration_text.h"
#include "core/error.h"
#include "core/files.h"
#include "core/json_reader.h"
#include "core/directory_lock.h"
#include "core/stop_signal.h"
#include "pareto/analysis.h"
#include "sweep/journal.h"

namespace edmips {
namespace fs = std::filesystem;

namespace {

/// Seconds since the epoch of an ISO 8601 UTC time as the journal writes it; -1 if unreadable.
double parse_utc(const std::string& text) {
  std::tm tm{};
  int millis = 0;
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &millis) < 6) {
    return -1;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return double(timegm(&tm)) + millis / 1000.0;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// Every event of the journal, checked as every reader checks it: a damaged
/// line is exit 3 naming it; a torn last line (being written) is skipped.
std::vector<nlohmann::json> journal_events(const fs::path& path) {
  std::vector<nlohmann::json> events;
  for_each_journal_event(read_text_file(path), path.string(),
                         [&events](const nlohmann::json& e) { events.push_back(e); });
  return events;
}

/// Phase and epoch of a running trial, from its history (one record per epoch).
nlohmann::json trial_position(const fs::path& directory) {
  nlohmann::json position = {{"phase", "starting"}, {"epoch", 0}, {"epochs", nullptr}};
  const auto path = directory / "history.json";
  if (!fs::exists(path)) return position;
  try {
    const auto history = nlohmann::json::parse(read_text_file(path));
    if (history.is_array() && !history.empty()) {
      const auto& last = history.back();
      position = {{"phase", last.value("phase", "?")},
                  {"epoch", last.value("epoch", 0)},
                  {"epochs", last.value("epochs", 0)}};
    }
  } catch (const std::exception&) {
    // Replaced atomically by the trial, so this is a file from elsewhere: say nothing.
  }
  return position;
}

/// The best mixed configuration at no more BitOps than each uniform baseline.
nlohmann::json best_per_baseline(const fs::path& directory) {
  nlohmann::json rows = nlohmann::json::array();
  ParetoOptions options;
  options.directories = {directory};
  ParetoReport report;
  try {
    report = analyse_sweeps(options);
  } catch (const Error&) {
    return rows;  // nothing finished yet
  }
  const auto j = to_json(report);
  std::map<std::string, nlohmann::json> by_id;
  for (const auto& c : j.at("configurations")) by_id[c.at("configuration_id")] = c;
  for (const auto& d : j.at("dominance")) {
    nlohmann::json row = {{"baseline", d.at("baseline_label")},
                          {"baseline_top1", d.at("baseline_top1")},
                          {"mixed_group", d.at("mixed_group")},
                          {"best_mixed_lambda", nullptr},
                          {"best_mixed_top1", d.at("best_mixed_top1")},
                          {"gain", d.at("accuracy_gain")},
                          {"gain_half_width", d.at("gain_half_width")},
                          {"verdict", d.at("verdict")},
                          {"comparison", d.at("comparison")},  // the words edmips pareto and report use
                          {"front_gain", d.at("front_gain")}};
    if (!d.at("best_mixed").is_null()) {
      const auto& c = by_id.at(d.at("best_mixed").get<std::string>());
      row["best_mixed_lambda"] = c.at("complexity_penalty");
      row["best_mixed_label"] = d.at("best_mixed_label");  // as edmips pareto names it
      row["best_mixed_undecided"] = c.at("undecided_trials").get<int>() > 0;
    }
    rows.push_back(row);
  }
  return rows;
}

}  // namespace

nlohmann::json read_sweep_status(const fs::path& directory) {
  const auto journal_path = directory / sweep_files::journal;
  if (!fs::exists(journal_path)) {
    throw ConfigError(directory.string() + ": no " + sweep_files::journal +
                      " (not a sweep output directory, or the sweep has not started)");
  }
  const auto events = journal_events(journal_path);
  SweepState state = SweepState::not_started;
  std::string name, last_event_time;
  double started = -1, last_event = -1;
  size_t total = 0, finished_this_run = 0;
  std::map<std::string, std::string> last_error;
  std::set<std::string> finished, given_up;  // given up: failed with no retry left
  for (const auto& e : events) {
    const auto type = event_type_of(e);
    const double time = parse_utc(e.value("time", ""));
    if (time > 0) {
      last_event = time;
      last_event_time = e.value("time", "");
    }
    if (type == EventType::sweep_started) {
      state = SweepState::running;
      name = e.value("sweep", name);
      total = e.value("trials", total) + e.value("budgets", size_t(0));
      started = time;
      finished_this_run = 0;
    } else if (type == EventType::sweep_finished) {
      state = SweepState::finished;
    } else if (type == EventType::sweep_interrupted) {
      state = SweepState::interrupted;
    } else if (type == EventType::trial_finished) {
      ++finished_this_run;
      finished.insert(e.value("trial", ""));
      given_up.erase(e.value("trial", ""));
    } else if (type == EventType::trial_failed) {
      last_error[e.value("trial", "")] = e.value("error", "");
      if (!e.value("will_retry", true)) given_up.insert(e.value("trial", ""));
    }
  }
  // The journal says running, but the coordinator holds the directory's lock
  // for as long as it lives: a lock nobody holds means it died (kill -9, a
  // lost node, a sweep that exited without its last event).
  std::string coordinator;
  if (state == SweepState::running && probe_directory_lock(directory, &coordinator) == LockState::free) {
    state = SweepState::stopped;
  }
  nlohmann::json recorded = nlohmann::json::object();
  const auto status_path = directory / sweep_files::status;
  if (fs::exists(status_path) || fs::is_symlink(status_path)) {
    recorded = load_state_file(status_path.string());
    // Written by the coordinator; one of another shape is damaged, not input.
    using T = nlohmann::json::value_t;
    const auto fits = [](const nlohmann::json& object, const char* key, std::initializer_list<T> types) {
      const auto it = object.find(key);
      return it == object.end() || std::find(types.begin(), types.end(), it->type()) != types.end();
    };
    const std::initializer_list<T> count = {T::number_unsigned, T::number_integer};
    bool damaged = !recorded.is_object() || !fits(recorded, "done", count) || !fits(recorded, "pending", count) ||
                   !fits(recorded, "total", count) || !fits(recorded, "running", {T::array}) ||
                   !fits(recorded, "budgets", {T::array}) || !fits(recorded, "sweep", {T::string}) ||
                   !fits(recorded, "eta_s", {T::number_float, T::number_unsigned, T::number_integer, T::null});
    for (const auto& r : damaged ? nlohmann::json::array() : recorded.value("running", nlohmann::json::array())) {
      damaged = damaged || !r.is_object() || !fits(r, "trial", {T::string}) || !fits(r, "since", {T::string}) ||
                !fits(r, "host", {T::string}) || !fits(r, "rank", count) || !fits(r, "attempt", count);
    }
    if (damaged) {
      throw IoError(status_path.string() + ": not the status the coordinator writes (a damaged file: delete it, "
                    "the next sweep run rewrites it)");
    }
  }

  nlohmann::json running = nlohmann::json::array();
  if (state == SweepState::running) {
    for (const auto& r : recorded.value("running", nlohmann::json::array())) {
      nlohmann::json entry = r;
      const double since = parse_utc(r.value("since", ""));
      entry["running_s"] = since > 0 ? nlohmann::json(now_s() - since) : nlohmann::json();
      entry.update(trial_position(directory / sweep_files::trials / r.value("trial", "")));
      running.push_back(entry);
    }
  }
  // The journal is the record; status.json (rewritten at every event, absent
  // from copies of a sweep) adds what runs now and the coordinator's ETA.
  nlohmann::json failed = nlohmann::json::array();
  for (const auto& id : given_up) failed.push_back({{"trial", id}, {"error", last_error[id]}});
  // The coordinator's count (trials of the current sweep file, budgets
  // retrained) when it wrote one; else every finished trial of the journal.
  const int done = recorded.contains("done") ? recorded.value("done", 0) : int(finished.size());
  const int pending = recorded.contains("pending")
                          ? recorded.value("pending", 0)
                          : std::max(0, int(total) - done - int(failed.size()) - int(running.size()));
  const double end = state == SweepState::running ? now_s() : last_event;
  const double hours = started > 0 && end > started ? (end - started) / 3600.0 : 0;
  return {{"directory", directory.string()},
          {"sweep", recorded.value("sweep", name)},
          {"state", to_string(state)},
          {"total", recorded.value("total", total)},
          {"done", done},
          {"running", running},
          {"failed", failed},
          {"pending", pending},
          {"eta_s", state == SweepState::running ? recorded.value("eta_s", nlohmann::json()) : nlohmann::json()},
          {"trials_per_hour", hours > 0 ? nlohmann::json(double(finished_this_run) / hours) : nlohmann::json()},
          {"run_started", started > 0 ? nlohmann::json(started) : nlohmann::json()},
          {"last_event_age_s", last_event > 0 ? nlohmann::json(now_s() - last_event) : nlohmann::json()},
          {"last_event_time", last_event_time},
          {"coordinator", coordinator},
          {"budgets", recorded.value("budgets", nlohmann::json::array())},
          {"best_per_baseline", best_per_baseline(directory)}};
}

void print_sweep_status(std::ostream& out, const nlohmann::json& s) {
  auto duration = [](const nlohmann::json& v) { return v.is_null() ? std::string("?") : format_duration(v.get<double>()); };
  char line[512];
  out << "sweep " << s.at("sweep").get<std::string>() << " in " << s.at("directory").get<std::string>() << ": "
      << s.at("state").get<std::string>() << " (last event " << duration(s.at("last_event_age_s")) << " ago)\n";
  if (sweep_state_from_string(s.at("state").get<std::string>()) == SweepState::stopped) {
    out << "  no process holds " << s.at("directory").get<std::string>() << "/" << DirectoryLock::kFileName
        << ": the sweep died after its last event (" << s.value("last_event_time", "?")
        << ") without finishing; run edmips sweep again to resume it\n";
  }
  std::snprintf(line, sizeof line, "done %d/%d  running %zu  failed %zu  pending %d", s.at("done").get<int>(),
                s.at("total").get<int>(), s.at("running").size(), s.at("failed").size(), s.at("pending").get<int>());
  out << line;
  if (!s.at("trials_per_hour").is_null()) {
    std::snprintf(line, sizeof line, "  throughput %.1f trials/h", s.at("trials_per_hour").get<double>());
    out << line;
  }
  if (!s.at("eta_s").is_null()) out << "  eta " << duration(s.at("eta_s"));
  out << "\n";
  for (const auto& r : s.at("running")) {
    const std::string epochs = r.at("epochs").is_null() ? "?" : std::to_string(r.at("epochs").get<int>());
    // A group's trial names all its ranks (world ranks, the leader first).
    std::string ranks = "rank " + std::to_string(r.value("rank", -1));
    if (r.contains("group_ranks") && r["group_ranks"].is_array()) {
      ranks = "ranks ";
      for (const auto& member : r["group_ranks"]) {
        ranks += (ranks.size() > 6 ? "," : "") + (member.is_number_integer() ? member.dump() : std::string("?"));
      }
    }
    std::snprintf(line, sizeof line, "  running %s  %s on %s  since %s (%s)  %s, epoch %d/%s done  attempt %d",
                  r.value("trial", "?").substr(0, 12).c_str(), ranks.c_str(), r.value("host", "?").c_str(),
                  r.value("since", "?").c_str(), duration(r.at("running_s")).c_str(), r.value("phase", "?").c_str(),
                  r.value("epoch", 0), epochs.c_str(), r.value("attempt", 1));
    out << line << "\n";
  }
  for (const auto& f : s.at("failed")) {
    out << "  failed  " << f.at("trial").get<std::string>().substr(0, 12) << ": " << f.at("error").get<std::string>()
        << "\n";
  }
  if (!s.at("budgets").empty()) {
    std::map<std::string, int> states;
    for (const auto& b : s.at("budgets")) {
      std::string state = b.value("state", "?");
      if (b.value("retraining", false)) state += ", retraining";
      ++states[state];
    }
    out << "budgets " << s.at("budgets").size() << ":";
    for (const auto& [state, n] : states) out << "  " << state << " " << n;
    out << "\n";
  }
  if (!s.at("best_per_baseline").empty()) {
    out << "best so far against each uniform baseline (trained networks, seed means, 95% intervals; as edmips "
           "pareto says):\n";
  }
  for (const auto& b : s.at("best_per_baseline")) {
    out << "  " << b.at("mixed_group").get<std::string>() << ": " << b.at("comparison").get<std::string>() << "\n";
  }
}

int run_status_command(const StatusCommand& command) {
  const auto& stop = install_stop_signal_handlers();
  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  if (command.watch_s > 0) {
    // A sweep just submitted has not written its journal yet: wait for it,
    // up to --wait seconds, then say what is missing.
    const auto journal = fs::path(command.directory) / sweep_files::journal;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(command.start_wait_s);
    if (!fs::exists(journal)) {
      std::cerr << "waiting up to " << format_duration(command.start_wait_s) << " for " << journal.string()
                << " (the sweep has not started yet)" << std::endl;
    }
    while (!fs::exists(journal) && std::chrono::steady_clock::now() < deadline) {
      if (stop.load()) return 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  while (true) {
    const auto status = read_sweep_status(command.directory);
    if (command.watch_s > 0 && terminal) std::cout << "\033[H\033[2J";  // home, clear screen
    if (command.json) std::cout << status.dump(2) << std::endl;
    else print_sweep_status(std::cout, status);
    std::cout.flush();
    const bool over = sweep_state_from_string(status.at("state").get<std::string>()) != SweepState::running;
    if (command.watch_s <= 0 || over) return 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(command.watch_s);
    while (std::chrono::steady_clock::now() < until) {
      if (stop.load()) return 0;  // Ctrl-C ends watching; nothing to save
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace edmips
