// sweep: the append-only event journal of a sweep (DIR/journal.jsonl), the
// state replayed from it, and the files derived from it (results.csv,
// status.json). Only the coordinator writes it. No LibTorch, no MPI.
#pragma once

#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sweep/kinds.h"

namespace edmips {

/// Files of a sweep's output directory.
namespace sweep_files {
constexpr const char* journal = "journal.jsonl";
constexpr const char* results = "results.csv";
constexpr const char* status = "status.json";
constexpr const char* definition = "sweep.json";
constexpr const char* trials = "trials";
}  // namespace sweep_files

/// What a journal says about a sweep so far.
struct JournalState {
  std::map<std::string, nlohmann::json> finished;  ///< trial ID -> its trial_finished event
  std::map<std::string, int> failures;              ///< trial ID -> failed attempts (all runs)
  std::set<std::string> started;                    ///< trials that ever started
  std::map<std::string, nlohmann::json> started_summaries;  ///< trial ID -> summary of its latest trial_started
  std::map<std::string, nlohmann::json> budgets;    ///< budget group ID -> its latest budget_decided event
  int runs = 0;                                     ///< how many times the sweep was started
  size_t events = 0;
  bool torn_tail = false;       ///< the last line was cut short by a crash (dropped)
  size_t torn_bytes = 0;
};

/// Calls `visit` for each event of journal text, in order, and returns the
/// byte length of the valid prefix. Every reader (sweep, status, pareto,
/// report, plan) goes through it, so all answer alike: a line that is not a
/// JSON object with a string "event", or whose known fields have the wrong
/// JSON type, is an IoError (exit 3) naming the file and line, unless it is
/// the torn last line of a crash or of a write in progress (skipped; *torn_tail).
size_t for_each_journal_event(const std::string& text, const std::string& source,
                              const std::function<void(const nlohmann::json&)>& visit, bool* torn_tail = nullptr);

/// The complexity penalty (lambda) of a budget_decided event: its
/// "complexity_penalty", the name every file uses, or "lambda", the name
/// journals written before 2026-12-02 gave it. None when it has neither.
std::optional<double> decided_complexity_penalty(const nlohmann::json& budget_decided);

/// Replays journal text (as read_journal, `source` naming it in errors).
JournalState parse_journal_text(const std::string& text, const std::string& source);

/// Reads a journal; a torn last line is reported in the state, not thrown.
/// A malformed line elsewhere is an Error naming the file and line.
JournalState read_journal(const std::filesystem::path& path);

/// Appends events, each as one line written with a single write() and
/// flushed to disk before append() returns.
class Journal {
 public:
  /// Opens (creating) `path`; drops a torn last line first so the file stays
  /// valid JSON Lines.
  explicit Journal(const std::filesystem::path& path);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  /// Adds "time" (UTC ISO 8601, milliseconds) and writes the event.
  void append(nlohmann::json event);
  const JournalState& initial_state() const { return initial_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  JournalState initial_;
};

/// An allocation as results.csv and the report write it: "w/a" per layer,
/// separated by spaces ("2/3 1/2 ...").
std::string allocation_text(const nlohmann::json& allocation);

/// Columns of results.csv, in order.
const std::vector<std::string>& result_columns();
/// One results.csv row (flat values) from a trial_finished event.
std::vector<std::string> result_row(const nlohmann::json& finished_event);
/// Rewrites DIR/results.csv atomically: header plus one row per finished
/// trial of the directory (every trial the journal finished, so results.csv,
/// the journal and `edmips pareto` agree). The last column,
/// in_current_sweep, is 1 for trials the current sweep file lists and 0 for
/// those an earlier version listed. With `current` empty, every row says 1.
void write_results_csv(const std::filesystem::path& path, const std::map<std::string, nlohmann::json>& finished,
                       const std::set<std::string>& current = {});

/// Current UTC time as ISO 8601 with milliseconds.
std::string utc_now();

}  // namespace edmips
