// sweep: runs the budgets of a sweep on the coordinator's side. From the
// finished trials (the journal's), the trials in flight and the failures, it
// says which probes (search-only trials at lambdas budget_search.h chooses)
// and which retrainings to start, and what to journal. Every probe and every
// retraining is an ordinary trial with a stable ID, so they are reused across
// runs and sweeps, and a decision once journaled is final: after a crash the
// same retraining resumes, it never runs twice. No LibTorch, no MPI.
#pragma once

#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "sweep/journal.h"
#include "sweep/sweep_definition.h"

namespace edmips {

class BudgetPlanner {
 public:
  /// `initial`: the journal replayed (journaled decisions, probes in flight
  /// when the last run stopped).
  BudgetPlanner(const SweepDefinition& sweep, const JournalState& initial);
  BudgetPlanner(const BudgetPlanner&) = delete;
  BudgetPlanner& operator=(const BudgetPlanner&) = delete;

  struct Step {
    std::vector<const PlannedTrial*> start;  ///< to run next, in this order (before other pending trials)
    std::vector<nlohmann::json> events;      ///< to journal (budget_decided)
    std::vector<std::string> log;            ///< lines for the coordinator's log
  };

  /// What to start now, from what is known now. `finished`: every finished
  /// trial's trial_finished event; `in_flight`: IDs of trials pending or
  /// running; `failed`: IDs of trials that failed after their retries in
  /// this run. A pure function of these and the decisions taken so far: the
  /// coordinator asks whenever a rank is free and starts the first trial of
  /// `start` (the rest is proposed again, from fresher results, next time).
  /// Decisions are taken (and given in `events`) once. The pointers stay
  /// valid for the planner's life.
  Step plan(const std::map<std::string, nlohmann::json>& finished, const std::set<std::string>& in_flight,
            const std::set<std::string>& failed);

  size_t size() const { return groups_.size(); }
  size_t done() const;    ///< budgets with their result (met or gave_up, retrained) or found impossible
  size_t failed() const;  ///< budgets whose probe or retraining failed after its retries
  /// Per budget: group, budget, cost, model, seed, state, lambda, retrain trial, own probes.
  nlohmann::json status() const;

 private:
  struct Run {
    const BudgetGroup* group = nullptr;
    BudgetState state = BudgetState::searching;
    bool retrained = false;  ///< met or gave_up, and its retraining finished
    std::string retrain;     ///< the retraining's trial ID once decided
    double lambda = 0;
    int own_probes = 0;
    bool decided() const { return state == BudgetState::met || state == BudgetState::gave_up; }
    bool retraining() const { return decided() && !retrained; }
    bool done() const { return state == BudgetState::impossible || (decided() && retrained); }
  };

  /// A family's probes: finished (lambda, cost), lambdas in flight, and how
  /// many of either this budget started itself.
  struct FamilyProbes {
    std::vector<BudgetProbe> finished;
    std::vector<double> running;
    int own = 0;
  };

  void decide(Run& run, const std::map<std::string, nlohmann::json>& finished, std::set<std::string>& in_flight,
              const std::set<std::string>& failed, Step& step);
  /// Why the budget fails: a probe of its family failed after its retries.
  std::optional<std::string> failed_probe(const BudgetGroup& g, const std::set<std::string>& failed) const;
  FamilyProbes family_probes(const BudgetGroup& g, const std::map<std::string, nlohmann::json>& finished,
                             const std::set<std::string>& in_flight) const;
  /// Journals a final decision (met, gave_up, impossible) and plans the retraining.
  void settle(Run& run, const BudgetDecision& d, const FamilyProbes& family,
              const std::map<std::string, nlohmann::json>& finished, Step& step);
  void fail(Run& run, const std::string& why, Step& step);
  const PlannedTrial* keep(PlannedTrial trial);

  const SweepDefinition& sweep_;
  std::vector<Run> groups_;
  std::map<std::string, PlannedTrial> trials_;  ///< probes and retrainings made so far, by ID
  std::vector<const PlannedTrial*> resume_;     ///< probes in flight when the last run stopped
};

}  // namespace edmips
