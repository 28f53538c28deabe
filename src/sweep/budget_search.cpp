#include "sweep/budget_search.h"

#include "core/number_text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace edmips {

namespace {

constexpr double kMinLambda = 1e-9;  // below this the penalty is numerically absent
constexpr double kMaxLambda = 1e2;   // above this every layer is at its cheapest long before
constexpr double kSameDecades = 0.01;  // lambdas closer than this in log10 count as one probe

bool near_any(double lambda, const std::vector<double>& lambdas) {
  for (double l : lambdas) {
    if (std::abs(std::log10(lambda) - std::log10(l)) < kSameDecades) return true;
  }
  return false;
}

/// The most expensive probe that is still under the budget (ties: the smaller lambda).
std::optional<BudgetProbe> best_under(const BudgetTarget& target, const std::vector<BudgetProbe>& probes) {
  std::optional<BudgetProbe> best;
  for (const auto& p : probes) {
    if (p.cost > target.value) continue;
    if (!best || p.cost > best->cost || (p.cost == best->cost && p.lambda < best->lambda)) best = p;
  }
  return best;
}

std::string jumps_over(const BudgetProbe& lo, const BudgetProbe& hi) {
  return "the cost jumps over the window between lambda " + short_number(lo.lambda) + " (cost " + short_number(lo.cost) +
         ") and " + short_number(hi.lambda) + " (cost " + short_number(hi.cost) + ")";
}

BudgetDecision give_up(const BudgetTarget& target, const std::vector<BudgetProbe>& probes, std::string reason) {
  BudgetDecision d;
  d.chosen = best_under(target, probes);
  d.state = d.chosen ? BudgetState::gave_up : BudgetState::impossible;
  d.reason = d.chosen ? reason + "; the closest allocation under the budget is retrained (cost " +
                            short_number(d.chosen->cost) + ", lambda " + short_number(d.chosen->lambda) + ")"
                      : reason + "; no probe's allocation is under the budget";
  return d;
}

BudgetDecision propose_next(const BudgetTarget& target, const std::vector<BudgetProbe>& finished,
                            const std::vector<double>& running, const std::optional<BudgetProbe>& lo,
                            const std::optional<BudgetProbe>& hi, int free_slots,
                            const BudgetSearchSettings& settings);

}  // namespace

bool meets_budget(const BudgetTarget& target, double cost) {
  return cost <= target.value && cost >= target.value * (1 - target.tolerance);
}

BudgetDecision decide_budget(const BudgetTarget& target, const std::vector<BudgetProbe>& finished_in,
                             const std::vector<double>& running_in, int own_probes, int free_slots,
                             const BudgetSearchSettings& settings) {
  if (!(target.value > 0) || !(target.tolerance >= 0 && target.tolerance < 1)) {
    throw std::invalid_argument("budget: value must be > 0 and tolerance in [0, 1)");
  }
  std::vector<BudgetProbe> finished;
  for (const auto& p : finished_in) {
    if (p.lambda > 0 && std::isfinite(p.lambda) && std::isfinite(p.cost)) finished.push_back(p);
  }
  std::sort(finished.begin(), finished.end(), [](const BudgetProbe& a, const BudgetProbe& b) {
    return a.lambda != b.lambda ? a.lambda < b.lambda : a.trial < b.trial;
  });
  std::vector<double> running;
  for (double l : running_in) {
    if (l > 0 && std::isfinite(l)) running.push_back(l);
  }
  std::sort(running.begin(), running.end());

  // Met: the most expensive probe inside the window (closest to the budget).
  {
    std::optional<BudgetProbe> met;
    for (const auto& p : finished) {
      if (meets_budget(target, p.cost) && (!met || p.cost > met->cost)) met = p;
    }
    if (met) {
      BudgetDecision d;
      d.state = BudgetState::met;
      d.chosen = met;
      return d;
    }
  }
  const double lower = target.value * (1 - target.tolerance);
  if (own_probes >= settings.max_probes && running.empty()) {
    return give_up(target, finished, "no allocation in [" + short_number(lower) + ", " + short_number(target.value) +
                                         "] after " + std::to_string(own_probes) + " probes of its own");
  }

  // The bracket: lo = the largest lambda still too expensive; hi = the
  // smallest larger lambda already too cheap. A too-cheap probe below lo is
  // noise of the step function and does not bound anything.
  std::optional<BudgetProbe> lo, hi;
  for (const auto& p : finished) {
    if (p.cost > target.value) lo = p;  // sorted by lambda: the last one wins
  }
  for (const auto& p : finished) {
    if (p.cost < lower && (!lo || p.lambda > lo->lambda)) {
      hi = p;
      break;
    }
  }
  if (lo && hi && std::log10(hi->lambda / lo->lambda) < settings.min_bracket_decades) {
    return give_up(target, finished, jumps_over(*lo, *hi));
  }
  if (lo && !hi && lo->lambda * settings.step_factor > kMaxLambda) {
    return give_up(target, finished, "the cost stays above the budget up to lambda " + short_number(lo->lambda));
  }
  if (hi && !lo && hi->lambda / settings.step_factor < kMinLambda) {
    return give_up(target, finished, "even lambda " + short_number(hi->lambda) + " gives cost " + short_number(hi->cost) +
                                         ", below the window: the budget is above what the search space reaches");
  }

  // Probes in flight where this budget's search goes next (any, before the
  // first result; beyond the frontier when bracketing; inside the bracket)
  // will inform it, whichever budget started them: they take its slots, so
  // budgets of one family do not probe past each other.
  int useful_running = 0;
  for (double l : running) {
    if (lo && hi) useful_running += l > lo->lambda && l < hi->lambda;
    else if (lo) useful_running += l > lo->lambda;
    else if (hi) useful_running += l < hi->lambda;
    else ++useful_running;
  }
  const int slots = std::min({free_slots, settings.max_parallel - useful_running, settings.max_probes - own_probes});
  if (slots <= 0) return {};
  BudgetDecision d = propose_next(target, finished, running, lo, hi, slots, settings);
  if (d.next.empty() && running.empty()) {
    // Nothing in flight and nothing new to try: the bracket is as narrow as
    // lambda resolves, or the search ran out of range.
    return give_up(target, finished, lo && hi ? jumps_over(*lo, *hi) : "no lambda left to try");
  }
  return d;
}

namespace {

/// Lambdas proposed so far in one decision, at most `slots` of them, none
/// within kSameDecades of a probe finished, running or proposed.
class Proposals {
 public:
  Proposals(const std::vector<BudgetProbe>& finished, const std::vector<double>& running, int slots)
      : taken_(running), slots_(slots) {
    for (const auto& p : finished) taken_.push_back(p.lambda);
  }
  bool full() const { return slots_ <= 0; }
  bool propose(double lambda) {
    lambda = std::clamp(lambda, kMinLambda, kMaxLambda);
    if (slots_ <= 0 || near_any(lambda, taken_)) return false;
    decision_.next.push_back(lambda);
    taken_.push_back(lambda);
    --slots_;
    return true;
  }
  BudgetDecision decision() const { return decision_; }

 private:
  std::vector<double> taken_;
  int slots_;
  BudgetDecision decision_;
};

/// Split the widest gap of [lo, running inside, hi]; the first split of an
/// empty bracket interpolates log cost in log lambda, later ones bisect.
void split_bracket(Proposals& proposals, const BudgetProbe& lo, const BudgetProbe& hi,
                   const std::vector<double>& running, double goal) {
  std::vector<double> points = {std::log(lo.lambda), std::log(hi.lambda)};
  for (double l : running) {
    if (l > lo.lambda && l < hi.lambda) points.push_back(std::log(l));
  }
  std::sort(points.begin(), points.end());
  while (!proposals.full()) {
    size_t widest = 0;
    for (size_t i = 1; i + 1 < points.size(); ++i) {
      if (points[i + 1] - points[i] > points[widest + 1] - points[widest]) widest = i;
    }
    const double a = points[widest], b = points[widest + 1];
    if ((b - a) / std::log(10.0) < 2 * kSameDecades) break;  // nothing left to split
    double x = (a + b) / 2;
    if (points.size() == 2) {
      const double ca = std::log(lo.cost), cb = std::log(hi.cost);
      const double t = (ca - goal) / (ca - cb);  // in (0, 1): lo is above the goal, hi below
      x = a + std::clamp(t, 0.1, 0.9) * (b - a);
    }
    if (!proposals.propose(std::exp(x))) break;
    points.push_back(x);
    std::sort(points.begin(), points.end());
  }
}

/// One side only: step outwards from the farthest probe (finished or
/// running). With two finished probes on that side and no probe beyond
/// them, a secant step in log cost aims at the window directly.
void step_outwards(Proposals& proposals, const BudgetTarget& target, const std::vector<BudgetProbe>& finished,
                   const std::vector<double>& running, const std::optional<BudgetProbe>& lo,
                   const std::optional<BudgetProbe>& hi, double goal, double step) {
  const double lower = target.value * (1 - target.tolerance);
  const bool upwards = bool(lo);  // everything so far too expensive: larger lambda
  double frontier = std::log(upwards ? lo->lambda : hi->lambda);
  bool frontier_running = false;
  for (double l : running) {
    if (upwards ? std::log(l) > frontier : std::log(l) < frontier) {
      frontier = std::log(l);
      frontier_running = true;
    }
  }
  double first_step = step;
  if (!frontier_running) {
    std::vector<BudgetProbe> side;
    for (const auto& p : finished) {
      if (upwards ? p.cost > target.value : p.cost < lower) side.push_back(p);
    }
    if (side.size() >= 2) {
      const auto& p1 = upwards ? side[side.size() - 2] : side[1];
      const auto& p2 = upwards ? side.back() : side[0];
      const double slope = (std::log(p2.cost) - std::log(p1.cost)) / (std::log(p2.lambda) - std::log(p1.lambda));
      if (std::isfinite(slope) && slope < -1e-3) {
        const double wanted = std::abs((goal - std::log(p2.cost)) / slope);
        first_step = std::clamp(wanted * 1.2, std::log(2.0), 2 * step);  // 20% beyond, to bracket
      }
    }
  }
  // More than one slot: the points halfway and twice as far, so that one
  // round both brackets the window and puts a probe inside the bracket.
  for (double factor : {1.0, 0.5, 2.0}) {
    if (proposals.full()) break;
    const double x = frontier + (upwards ? 1 : -1) * factor * first_step;
    if (std::exp(x) > kMaxLambda || std::exp(x) < kMinLambda) continue;
    proposals.propose(std::exp(x));
  }
}

BudgetDecision propose_next(const BudgetTarget& target, const std::vector<BudgetProbe>& finished,
                            const std::vector<double>& running, const std::optional<BudgetProbe>& lo,
                            const std::optional<BudgetProbe>& hi, int free_slots,
                            const BudgetSearchSettings& settings) {
  const double goal = std::log(target.value * (1 - target.tolerance / 2));
  Proposals proposals(finished, running, free_slots);
  if (!lo && !hi) {
    // No probe yet (or only ones in the window's gaps, impossible here): start
    // at the documented guess, then one step either side.
    proposals.propose(settings.initial_lambda);
    proposals.propose(settings.initial_lambda / settings.step_factor);
    proposals.propose(settings.initial_lambda * settings.step_factor);
  } else if (lo && hi) {
    split_bracket(proposals, *lo, *hi, running, goal);
  } else {
    step_outwards(proposals, target, finished, running, lo, hi, goal, std::log(settings.step_factor));
  }
  return proposals.decision();
}

}  // namespace

}  // namespace edmips
