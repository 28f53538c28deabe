#include "sweep/budget_planner.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/number_text.h"

namespace edmips {

namespace {

std::string describe(const BudgetGroup& g) {
  return g.retrain.model + " seed " + std::to_string(g.retrain.seed) + " budget " + short_number(g.target.value) + " " +
         to_string(g.cost);
}

bool is_probe_of(const nlohmann::json& summary, const char* key, const std::string& value) {
  return trial_kind_of(summary) == TrialKind::probe && summary.value(key, "") == value;
}

/// A finished probe's lambda and cost (the group's measure); none when the
/// event lacks them.
std::optional<BudgetProbe> probe_of(const std::string& id, const nlohmann::json& event, CostMeasure measure) {
  const std::string cost = cost_result_key(measure);
  const auto& s = event.at("summary");
  const auto& r = event.at("result");
  if (!s.contains("complexity_penalty") || !s["complexity_penalty"].is_number()) return std::nullopt;
  if (!r.contains(cost) || !r[cost].is_number()) return std::nullopt;
  return BudgetProbe{s["complexity_penalty"].get<double>(), r[cost].get<double>(), id};
}

/// A budget_decided event with what every decision records; the chosen
/// probe's fields are added for met and gave_up.
nlohmann::json decision_event(const BudgetGroup& g, BudgetState state, int own_probes, const std::string& reason) {
  return {{"event", to_string(EventType::budget_decided)}, {"group", g.id},         {"state", to_string(state)},
          {"budget", g.target.value},  {"cost", to_string(g.cost)},        {"tolerance", g.target.tolerance},
          {"own_probes", own_probes},  {"reason", reason},      {"summary", g.summary}};
}

}  // namespace

BudgetPlanner::BudgetPlanner(const SweepDefinition& sweep, const JournalState& initial) : sweep_(sweep) {
  std::map<std::string, size_t> by_id;
  for (const auto& g : sweep.budgets) {
    Run run;
    run.group = &g;
    const auto decided = initial.budgets.find(g.id);
    if (decided != initial.budgets.end()) {
      const auto& e = decided->second;
      const auto state = budget_state_from_string(e.value("state", ""));
      // A journaled decision is final, so its retraining runs exactly once;
      // a budget that failed (a probe or its retraining kept failing) is
      // searched again, as failed trials are retried by a new run.
      if (state == BudgetState::met || state == BudgetState::gave_up) {
        const auto allocation = bit_allocation_from_json(e.at("allocation"), "journal: budget_decided " + g.id);
        const auto penalty = decided_complexity_penalty(e);
        if (!penalty) throw IoError("journal: budget_decided " + g.id + ": no complexity_penalty");
        run.lambda = *penalty;
        run.own_probes = e.value("own_probes", 0);
        run.state = *state;
        run.retrain = keep(make_budget_retrain(g, allocation, run.lambda, run.own_probes))->id;
      } else if (state == BudgetState::impossible) {
        run.state = *state;
        run.own_probes = e.value("own_probes", 0);
      }
    }
    by_id[g.id] = groups_.size();
    groups_.push_back(run);
  }
  // Probes in flight when the last run stopped resume first (their
  // checkpoints are there), whatever the decisions would pick now.
  for (const auto& [id, summary] : initial.started_summaries) {
    if (initial.finished.count(id) || trial_kind_of(summary) != TrialKind::probe) continue;
    const auto group = by_id.find(summary.value("budget_group", ""));
    if (group == by_id.end() || groups_[group->second].state != BudgetState::searching) continue;
    if (!summary.contains("complexity_penalty") || !summary["complexity_penalty"].is_number()) continue;
    auto probe = make_budget_probe(*groups_[group->second].group, summary["complexity_penalty"].get<double>());
    if (probe.id != id) continue;  // another engine or sweep file made it; it is not ours to resume
    resume_.push_back(keep(std::move(probe)));
  }
}

const PlannedTrial* BudgetPlanner::keep(PlannedTrial trial) {
  const auto [it, inserted] = trials_.emplace(trial.id, std::move(trial));
  return &it->second;
}

BudgetPlanner::Step BudgetPlanner::plan(const std::map<std::string, nlohmann::json>& finished,
                                        const std::set<std::string>& in_flight_now,
                                        const std::set<std::string>& failed) {
  Step step;
  std::set<std::string> in_flight = in_flight_now;
  // Probes cut short by the last stop, until they run again.
  std::vector<const PlannedTrial*> waiting;
  for (const auto* t : resume_) {
    if (finished.count(t->id) || in_flight.count(t->id)) continue;
    waiting.push_back(t);
    step.start.push_back(t);
    in_flight.insert(t->id);
  }
  resume_ = waiting;
  for (auto& run : groups_) {
    if (run.state == BudgetState::searching) decide(run, finished, in_flight, failed, step);
    if (!run.retraining()) continue;
    if (finished.count(run.retrain)) {
      run.retrained = true;
      step.log.push_back("budget " + describe(*run.group) + ": retrained (" + run.retrain + ")");
    } else if (failed.count(run.retrain)) {
      fail(run, "its retraining " + run.retrain + " failed after its retries", step);
    } else if (!in_flight.count(run.retrain)) {
      step.start.push_back(&trials_.at(run.retrain));
      in_flight.insert(run.retrain);
    }
  }
  return step;
}

std::optional<std::string> BudgetPlanner::failed_probe(const BudgetGroup& g, const std::set<std::string>& failed) const {
  for (const auto& id : failed) {
    const auto t = trials_.find(id);
    if (t != trials_.end() && is_probe_of(t->second.summary, "family", g.family)) {
      return "its probe " + id + " (lambda " + short_number(t->second.config.search.complexity_penalty) +
             ") failed after its retries";
    }
  }
  return std::nullopt;
}

BudgetPlanner::FamilyProbes BudgetPlanner::family_probes(const BudgetGroup& g,
                                                         const std::map<std::string, nlohmann::json>& finished,
                                                         const std::set<std::string>& in_flight) const {
  FamilyProbes f;
  for (const auto& [id, event] : finished) {
    const auto& s = event.at("summary");
    if (!is_probe_of(s, "family", g.family)) continue;
    if (auto p = probe_of(id, event, g.cost)) f.finished.push_back(*p);
    f.own += s.value("budget_group", "") == g.id;
  }
  for (const auto& id : in_flight) {
    const auto t = trials_.find(id);
    if (t == trials_.end() || !is_probe_of(t->second.summary, "family", g.family)) continue;
    f.running.push_back(t->second.config.search.complexity_penalty);
    f.own += t->second.summary.value("budget_group", "") == g.id;
  }
  return f;
}

namespace {

/// A new seed of a searched configuration starts where its siblings'
/// probes came closest to the budget (else at `initial`).
double sibling_start(const BudgetGroup& g, const std::map<std::string, nlohmann::json>& finished, double initial) {
  const double goal = std::log(g.target.value * (1 - g.target.tolerance / 2));
  double best = INFINITY;
  for (const auto& [id, event] : finished) {
    if (!is_probe_of(event.at("summary"), "siblings", g.siblings)) continue;
    const auto p = probe_of(id, event, g.cost);
    if (!p || !(p->cost > 0)) continue;
    const double distance = std::abs(std::log(p->cost) - goal);
    if (distance < best) {
      best = distance;
      initial = p->lambda;
    }
  }
  return initial;
}

}  // namespace

void BudgetPlanner::decide(Run& run, const std::map<std::string, nlohmann::json>& finished,
                           std::set<std::string>& in_flight, const std::set<std::string>& failed, Step& step) {
  const auto& g = *run.group;
  if (const auto why = failed_probe(g, failed)) {
    fail(run, *why, step);
    return;
  }
  const auto family = family_probes(g, finished, in_flight);
  auto settings = sweep_.budget_settings;
  if (family.finished.empty() && family.running.empty()) {
    settings.initial_lambda = sibling_start(g, finished, settings.initial_lambda);
  }
  const auto d = decide_budget(g.target, family.finished, family.running, family.own, settings.max_parallel, settings);
  run.own_probes = family.own;
  if (d.state == BudgetState::searching) {
    for (double lambda : d.next) {
      auto probe = make_budget_probe(g, lambda);
      if (finished.count(probe.id) || in_flight.count(probe.id)) continue;
      const auto* kept = keep(std::move(probe));
      step.start.push_back(kept);
      in_flight.insert(kept->id);
    }
    if (d.next.empty() && family.running.empty()) fail(run, "the budget search proposed nothing to run", step);
    return;
  }
  settle(run, d, family, finished, step);
}

void BudgetPlanner::settle(Run& run, const BudgetDecision& d, const FamilyProbes& family,
                           const std::map<std::string, nlohmann::json>& finished, Step& step) {
  const auto& g = *run.group;
  const int own = family.own;
  run.state = d.state;
  auto event = decision_event(g, run.state, own, d.reason);
  event["family_probes"] = family.finished.size();
  if (d.state == BudgetState::impossible) {
    step.log.push_back("budget " + describe(g) + ": impossible: " + d.reason);
  } else {
    const auto& chosen = finished.at(d.chosen->trial);
    const auto allocation = bit_allocation_from_json(chosen.at("result").at("allocation"),
                                                     "journal: allocation of probe " + d.chosen->trial);
    run.lambda = d.chosen->lambda;
    run.retrain = keep(make_budget_retrain(g, allocation, run.lambda, own))->id;
    event["chosen"] = d.chosen->trial;
    event["complexity_penalty"] = d.chosen->lambda;
    event["chosen_cost"] = d.chosen->cost;
    event["allocation"] = chosen.at("result").at("allocation");
    event["retrain"] = run.retrain;
    step.log.push_back("budget " + describe(g) + ": " + to_string(run.state) + " at lambda " + short_number(run.lambda) + ", cost " +
                       short_number(d.chosen->cost) + " after " + std::to_string(own) + " probes of its own (" +
                       std::to_string(family.finished.size()) + " in its family)" +
                       (d.reason.empty() ? "" : ": " + d.reason) + "; retraining " + run.retrain);
  }
  step.events.push_back(std::move(event));
}

void BudgetPlanner::fail(Run& run, const std::string& why, Step& step) {
  run.state = BudgetState::failed;
  step.events.push_back(decision_event(*run.group, BudgetState::failed, run.own_probes, why));
  step.log.push_back("budget " + describe(*run.group) + ": failed: " + why);
}

size_t BudgetPlanner::done() const {
  size_t n = 0;
  for (const auto& r : groups_) n += r.done();
  return n;
}

size_t BudgetPlanner::failed() const {
  size_t n = 0;
  for (const auto& r : groups_) n += r.state == BudgetState::failed;
  return n;
}

nlohmann::json BudgetPlanner::status() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& r : groups_) {
    const auto& g = *r.group;
    list.push_back({{"group", g.id},
                    {"budget", g.target.value},
                    {"cost", to_string(g.cost)},
                    {"model", g.retrain.model},
                    {"seed", g.retrain.seed},
                    {"weight_bits", g.summary.value("weight_bits", nlohmann::json())},
                    {"activation_bits", g.summary.value("activation_bits", nlohmann::json())},
                    {"state", to_string(r.state)},
                    {"retraining", r.retraining()},
                    {"complexity_penalty", r.retrain.empty() ? nlohmann::json() : nlohmann::json(r.lambda)},
                    {"retrain", r.retrain.empty() ? nlohmann::json() : nlohmann::json(r.retrain)},
                    {"own_probes", r.own_probes}});
  }
  return list;
}

}  // namespace edmips
