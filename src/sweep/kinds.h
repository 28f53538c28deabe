// sweep: the closed sets of names a sweep writes and reads (trial kinds,
// budget and sweep states, journal events, coordinator messages, cost
// measures), each an enum with one pair of conversions: to_string, and
// <name>_from_string, which gives nullopt for a name outside the set. The
// strings are what the files hold (journal.jsonl, status.json, pareto.json,
// results.csv) and do not change; code past the edge where a file or a
// message is read compares enums only. No LibTorch, no MPI.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace edmips {

/// What a trial is: a search (then retraining), a uniform baseline, a
/// budget's search-only probe, or a budget's retraining of the allocation
/// it chose.
enum class TrialKind { search, uniform, probe, budget };
std::string to_string(TrialKind kind);
std::optional<TrialKind> trial_kind_from_string(const std::string& name);
/// The "kind" of a trial summary (journal, plan); nullopt when absent or unknown.
std::optional<TrialKind> trial_kind_of(const nlohmann::json& summary);

/// A budget's state: searching (probes running), then met or gave_up
/// (an allocation chosen and retrained), impossible (no lambda can reach
/// it), or failed (a probe or the retraining failed after its retries).
enum class BudgetState { searching, met, gave_up, impossible, failed };
std::string to_string(BudgetState state);
std::optional<BudgetState> budget_state_from_string(const std::string& name);

/// A sweep directory's state as `edmips status` reports it: "not started"
/// (a journal without a sweep_started event), running, finished,
/// interrupted, or stopped (the journal says running but no coordinator
/// holds the directory's lock).
enum class SweepState { not_started, running, finished, interrupted, stopped };
std::string to_string(SweepState state);
std::optional<SweepState> sweep_state_from_string(const std::string& name);

/// The journal's event types (docs/sweeps.md, "The journal's events").
enum class EventType {
  sweep_started,
  trial_started,
  trial_finished,
  trial_failed,
  trial_interrupted,
  budget_decided,
  sweep_finished,
  sweep_interrupted,
};
std::string to_string(EventType type);
std::optional<EventType> event_type_from_string(const std::string& name);
/// The "event" of a journal line; nullopt when absent or unknown.
std::optional<EventType> event_type_of(const nlohmann::json& event);

/// Messages between the coordinator and its workers (their "type"):
/// worker -> coordinator ready, finished, failed, interrupted; coordinator
/// -> worker run, stop, exit (the job's exit code, at the end).
enum class MessageType { ready, run, stop, exit, finished, failed, interrupted };
std::string to_string(MessageType type);
std::optional<MessageType> message_type_from_string(const std::string& name);
/// The "type" of a message; nullopt when absent or unknown.
std::optional<MessageType> message_type_of(const nlohmann::json& message);

/// What a cost is measured in: a trial result's key, a budget's bound, the
/// report's axis. `table`: a search's cost table (result.json's table_cost,
/// in its table_unit; or the report's --cost-table, which re-prices every
/// trial's layers).
enum class CostMeasure { bitops, normalised_bits, weight_memory_bits, activation_memory_bits, table };
std::string to_string(CostMeasure measure);
std::optional<CostMeasure> cost_measure_from_string(const std::string& name);
/// The result.json key that holds a trial's cost in `measure` (its name, but
/// "table_cost" for table).
std::string cost_result_key(CostMeasure measure);
/// The measures, in the order the docs list them ("normalised_bits", "bitops", "weight_memory_bits",
/// "activation_memory_bits", "table").
const std::vector<std::string>& cost_measure_names();

}  // namespace edmips
