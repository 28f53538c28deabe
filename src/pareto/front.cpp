#include "pareto/front.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace edmips {

bool dominates(const ParetoPoint& a, const ParetoPoint& b) {
  return a.cost <= b.cost && a.accuracy >= b.accuracy && (a.cost < b.cost || a.accuracy > b.accuracy);
}

std::vector<size_t> pareto_front(const std::vector<ParetoPoint>& points) {
  std::vector<size_t> order(points.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (points[a].cost != points[b].cost) return points[a].cost < points[b].cost;
    if (points[a].accuracy != points[b].accuracy) return points[a].accuracy > points[b].accuracy;
    return a < b;
  });
  std::vector<size_t> front;
  bool have_best = false;
  double best_cheaper = 0;  // best accuracy among strictly cheaper points
  for (size_t i = 0; i < order.size();) {
    // One group of equal cost: only its top accuracy can survive, and only if
    // every strictly cheaper point is strictly less accurate.
    size_t j = i;
    const double cost = points[order[i]].cost, top = points[order[i]].accuracy;
    while (j < order.size() && points[order[j]].cost == cost) ++j;
    if (!have_best || top > best_cheaper) {
      for (size_t k = i; k < j && points[order[k]].accuracy == top; ++k) front.push_back(order[k]);
    }
    if (!have_best || top > best_cheaper) best_cheaper = top;
    have_best = true;
    i = j;
  }
  return front;
}

std::vector<size_t> pareto_front_brute_force(const std::vector<ParetoPoint>& points) {
  std::vector<size_t> front;
  for (size_t i = 0; i < points.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < points.size() && !dominated; ++j) dominated = j != i && dominates(points[j], points[i]);
    if (!dominated) front.push_back(i);
  }
  std::sort(front.begin(), front.end(), [&](size_t a, size_t b) {
    if (points[a].cost != points[b].cost) return points[a].cost < points[b].cost;
    return a < b;
  });
  return front;
}

double hypervolume(const std::vector<ParetoPoint>& points, const ParetoPoint& reference) {
  std::vector<ParetoPoint> inside;
  for (const auto& p : points) {
    if (p.cost < reference.cost && p.accuracy > reference.accuracy) inside.push_back(p);
  }
  const auto front_index = pareto_front(inside);
  double area = 0;
  for (size_t k = 0; k < front_index.size(); ++k) {
    const auto& p = inside[front_index[k]];
    // The next front point is costlier and more accurate: this point's own
    // strip runs from its cost to the next one's.
    double next_cost = reference.cost;
    for (size_t m = k + 1; m < front_index.size(); ++m) {
      if (inside[front_index[m]].cost > p.cost) {
        next_cost = inside[front_index[m]].cost;
        break;
      }
    }
    if (k + 1 < front_index.size() && inside[front_index[k + 1]].cost == p.cost) continue;  // duplicate
    area += (next_cost - p.cost) * (p.accuracy - reference.accuracy);
  }
  return area;
}

bool interpolate_front(const std::vector<ParetoPoint>& front, double cost, double& accuracy) {
  if (front.empty() || cost < front.front().cost || cost > front.back().cost || cost <= 0) return false;
  for (size_t i = 0; i + 1 < front.size(); ++i) {
    const auto& a = front[i];
    const auto& b = front[i + 1];
    if (cost < a.cost || cost > b.cost) continue;
    if (b.cost == a.cost) {
      accuracy = std::max(a.accuracy, b.accuracy);
      return true;
    }
    const double t = (std::log2(cost) - std::log2(a.cost)) / (std::log2(b.cost) - std::log2(a.cost));
    accuracy = a.accuracy + t * (b.accuracy - a.accuracy);
    return true;
  }
  accuracy = front.back().accuracy;  // a single point, or cost equals the last one
  return true;
}

}  // namespace edmips
