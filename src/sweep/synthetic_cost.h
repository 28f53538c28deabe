// sweep: a synthetic derived-cost curve, cost(lambda), for testing and
// benchmarking the budget search without training anything. It has what real
// searches show: the cost falls with lambda along a sigmoid in log lambda,
// comes in steps (allocations are discrete), and is noisy and not monotone
// (seeds and near-ties), deterministically for a given lambda.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace edmips {

struct SyntheticCostCurve {
  double floor = 1.4;        ///< cost at large lambda (everything at its cheapest)
  double top = 3.4;          ///< cost at lambda -> 0
  double mid_log10 = -3.5;   ///< log10 lambda of the midpoint
  double width_decades = 0.5;  ///< sigmoid width
  double step = 0.02;        ///< cost resolution (one layer's bits)
  double noise = 0.03;       ///< relative amplitude of the per-lambda noise
  uint64_t seed = 1;

  static uint64_t mix(uint64_t x) {  // splitmix64
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  /// Uniform in [0, 1) from (seed, salt).
  static double uniform(uint64_t seed, uint64_t salt) { return double(mix(seed * 0x100000001b3ULL ^ mix(salt)) >> 11) / 9007199254740992.0; }

  double operator()(double lambda) const {
    const double x = std::log10(std::max(lambda, 1e-12));
    const double smooth = floor + (top - floor) / (1 + std::exp((x - mid_log10) / (width_decades / 4.0)));
    const auto key = uint64_t(int64_t(std::llround(x * 1000)) + (int64_t(1) << 40));
    const double jitter = 1 + noise * (2 * uniform(seed, key) - 1);
    const double noisy = smooth * jitter;
    return std::clamp(std::floor(noisy / step) * step, floor, top);
  }

  /// A random curve: midpoint between 1e-5 and 1e-2, width 0.3 to 1.5
  /// decades, floor 1.2 to 1.6, top 3 to 4, noise 0 to 5%.
  static SyntheticCostCurve random(uint64_t seed) {
    SyntheticCostCurve c;
    c.seed = seed;
    c.mid_log10 = -5 + 3 * uniform(seed, 1);
    c.width_decades = 0.3 + 1.2 * uniform(seed, 2);
    c.floor = 1.2 + 0.4 * uniform(seed, 3);
    c.top = 3 + uniform(seed, 4);
    c.noise = 0.05 * uniform(seed, 5);
    return c;
  }
};

}  // namespace edmips
