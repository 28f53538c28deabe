// pareto: non-dominated fronts and 2-D hypervolume for "maximise accuracy,
// minimise cost". Pure math on plain structs; standard library only.
#pragma once

#include <cstddef>
#include <vector>

namespace edmips {

struct ParetoPoint {
  double cost = 0;      ///< minimised (BitOps, normalised bits or weight bits)
  double accuracy = 0;  ///< maximised (top-1 %)
};

/// True when a is at least as good as b in both objectives and better in one.
bool dominates(const ParetoPoint& a, const ParetoPoint& b);

/// Indices of the non-dominated points, ordered by increasing cost (ties by
/// index). Exact duplicates do not dominate each other and are all kept.
/// O(n log n).
std::vector<size_t> pareto_front(const std::vector<ParetoPoint>& points);

/// The same by checking every pair: O(n^2), the reference for tests.
std::vector<size_t> pareto_front_brute_force(const std::vector<ParetoPoint>& points);

/// Area dominated by `points` and bounded by the reference point (a cost no
/// better than any point's, an accuracy no better than any point's): the union
/// of the boxes [cost_i, ref.cost] x [ref.accuracy, accuracy_i]. Points worse
/// than the reference in either objective add nothing.
double hypervolume(const std::vector<ParetoPoint>& points, const ParetoPoint& reference);

/// Accuracy of the front's piecewise-linear curve at `cost`, interpolating in
/// log2(cost) between the two front points around it; false when `cost` lies
/// outside the front's cost range. `front` must be sorted by cost.
bool interpolate_front(const std::vector<ParetoPoint>& front, double cost, double& accuracy);

}  // namespace edmips
