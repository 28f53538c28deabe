#include "sweep/kinds.h"

#include <array>
#include <utility>

namespace edmips {
namespace {

// Each enum's names, in declaration order: the one table both conversions read.
template <typename E, std::size_t N>
using Names = std::array<std::pair<E, const char*>, N>;

template <typename E, std::size_t N>
std::string name_of(const Names<E, N>& names, E value) {
  for (const auto& [v, name] : names) {
    if (v == value) return name;
  }
  return "?";
}

template <typename E, std::size_t N>
std::optional<E> value_of(const Names<E, N>& names, const std::string& text) {
  for (const auto& [v, name] : names) {
    if (text == name) return v;
  }
  return std::nullopt;
}

template <typename E, std::size_t N>
std::optional<E> field_of(const Names<E, N>& names, const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return value_of(names, it->get<std::string>());
}

const Names<TrialKind, 4> trial_kinds{{{TrialKind::search, "search"},
                                       {TrialKind::uniform, "uniform"},
                                       {TrialKind::probe, "probe"},
                                       {TrialKind::budget, "budget"}}};

const Names<BudgetState, 5> budget_states{{{BudgetState::searching, "searching"},
                                           {BudgetState::met, "met"},
                                           {BudgetState::gave_up, "gave_up"},
                                           {BudgetState::impossible, "impossible"},
                                           {BudgetState::failed, "failed"}}};

const Names<SweepState, 5> sweep_states{{{SweepState::not_started, "not started"},
                                         {SweepState::running, "running"},
                                         {SweepState::finished, "finished"},
                                         {SweepState::interrupted, "interrupted"},
                                         {SweepState::stopped, "stopped"}}};

const Names<EventType, 8> event_types{{{EventType::sweep_started, "sweep_started"},
                                       {EventType::trial_started, "trial_started"},
                                       {EventType::trial_finished, "trial_finished"},
                                       {EventType::trial_failed, "trial_failed"},
                                       {EventType::trial_interrupted, "trial_interrupted"},
                                       {EventType::budget_decided, "budget_decided"},
                                       {EventType::sweep_finished, "sweep_finished"},
                                       {EventType::sweep_interrupted, "sweep_interrupted"}}};

const Names<MessageType, 7> message_types{{{MessageType::ready, "ready"},
                                           {MessageType::run, "run"},
                                           {MessageType::stop, "stop"},
                                           {MessageType::exit, "exit"},
                                           {MessageType::finished, "finished"},
                                           {MessageType::failed, "failed"},
                                           {MessageType::interrupted, "interrupted"}}};

const Names<CostMeasure, 5> cost_measures{{{CostMeasure::normalised_bits, "normalised_bits"},
                                           {CostMeasure::bitops, "bitops"},
                                           {CostMeasure::weight_memory_bits, "weight_memory_bits"},
                                           {CostMeasure::activation_memory_bits, "activation_memory_bits"},
                                           {CostMeasure::table, "table"}}};

}  // namespace

std::string to_string(TrialKind kind) { return name_of(trial_kinds, kind); }
std::optional<TrialKind> trial_kind_from_string(const std::string& name) { return value_of(trial_kinds, name); }
std::optional<TrialKind> trial_kind_of(const nlohmann::json& summary) {
  return field_of(trial_kinds, summary, "kind");
}

std::string to_string(BudgetState state) { return name_of(budget_states, state); }
std::optional<BudgetState> budget_state_from_string(const std::string& name) {
  return value_of(budget_states, name);
}

std::string to_string(SweepState state) { return name_of(sweep_states, state); }
std::optional<SweepState> sweep_state_from_string(const std::string& name) { return value_of(sweep_states, name); }

std::string to_string(EventType type) { return name_of(event_types, type); }
std::optional<EventType> event_type_from_string(const std::string& name) { return value_of(event_types, name); }
std::optional<EventType> event_type_of(const nlohmann::json& event) { return field_of(event_types, event, "event"); }

std::string to_string(MessageType type) { return name_of(message_types, type); }
std::optional<MessageType> message_type_from_string(const std::string& name) {
  return value_of(message_types, name);
}
std::optional<MessageType> message_type_of(const nlohmann::json& message) {
  return field_of(message_types, message, "type");
}

std::string to_string(CostMeasure measure) { return name_of(cost_measures, measure); }
std::optional<CostMeasure> cost_measure_from_string(const std::string& name) {
  return value_of(cost_measures, name);
}
std::string cost_result_key(CostMeasure measure) {
  return measure == CostMeasure::table ? "table_cost" : to_string(measure);
}
const std::vector<std::string>& cost_measure_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& entry : cost_measures) out.emplace_back(entry.second);
    return out;
  }();
  return names;
}

}  // namespace edmips
