#include "quant/step_sizes.h"

#include <array>
#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"

namespace edmips {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double normal_pdf(double x) {
  return std::isinf(x) ? 0.0 : std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
}
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
double x_pdf(double x) { return std::isinf(x) ? 0.0 : x * normal_pdf(x); }

// Exact integral of (x - level)^2 * phi(x) over [lo, hi] via the Gaussian's
// moments, so the optimum is not limited by quadrature error.
double cell_error(double lo, double hi, double level) {
  const double mass = normal_cdf(hi) - normal_cdf(lo);
  const double first = normal_pdf(lo) - normal_pdf(hi);
  const double second = mass + x_pdf(lo) - x_pdf(hi);
  return second - 2.0 * level * first + level * level * mass;
}

void check_bits(int bits) {
  if (bits < kMinBits || bits > kMaxBits) {
    throw ConfigError("quantizer bit-width must be in [1, 8], got " + std::to_string(bits));
  }
}

template <typename F>
double golden_section_minimum(F f, double lo, double hi) {
  const double ratio = (std::sqrt(5.0) - 1.0) / 2.0;
  double c = hi - ratio * (hi - lo), d = lo + ratio * (hi - lo);
  double fc = f(c), fd = f(d);
  for (int i = 0; i < 200 && hi - lo > 1e-12; ++i) {
    if (fc < fd) {
      hi = d; d = c; fd = fc;
      c = hi - ratio * (hi - lo); fc = f(c);
    } else {
      lo = c; c = d; fc = fd;
      d = lo + ratio * (hi - lo); fd = f(d);
    }
  }
  return 0.5 * (lo + hi);
}

template <typename Mse>
std::array<double, kMaxBits + 1> optimal_steps(Mse mse) {
  std::array<double, kMaxBits + 1> steps{};
  for (int b = kMinBits; b <= kMaxBits; ++b) {
    // The MSE of a uniform quantizer is unimodal in the step over this bracket.
    steps[b] = golden_section_minimum([&](double s) { return mse(s, b); }, 1e-4, 4.0);
  }
  return steps;
}

}  // namespace

double weight_quantizer_mse(double step, int bits) {
  const int half = 1 << (bits - 1);
  double total = 0.0;
  for (int k = -half; k < half; ++k) {
    const double lo = k == -half ? -kInf : k * step;
    const double hi = k == half - 1 ? kInf : (k + 1) * step;
    total += cell_error(lo, hi, (k + 0.5) * step);
  }
  return total;
}

double activation_quantizer_mse(double step, int bits) {
  const int levels = (1 << bits) - 1;
  double total = 0.0;
  for (int j = 1; j <= levels; ++j) {
    const double lo = j == 1 ? 0.0 : (j - 0.5) * step;
    const double hi = j == levels ? kInf : (j + 0.5) * step;
    total += cell_error(lo, hi, j * step);
  }
  return total;
}

const char* to_string(StepTable table) { return table == StepTable::released ? "released" : "computed"; }

std::optional<StepTable> step_table_from_string(const std::string& name) {
  if (name == "computed") return StepTable::computed;
  if (name == "released") return StepTable::released;
  return std::nullopt;
}

// models/quant_module.py of the released code: gaussian_steps and hwgq_steps.
constexpr std::array<double, kReleasedTableMaxBits + 1> kReleasedWeightSteps{0, 1.596, 0.996, 0.586, 0.336};
constexpr std::array<double, kReleasedTableMaxBits + 1> kReleasedActivationSteps{0, 0.799, 0.538, 0.3217, 0.185};

double weight_step(int bits, StepTable table) {
  check_bits(bits);
  if (table == StepTable::released && bits <= kReleasedTableMaxBits) return kReleasedWeightSteps[size_t(bits)];
  static const auto steps = optimal_steps(weight_quantizer_mse);
  return steps[size_t(bits)];
}

double activation_step(int bits, StepTable table) {
  check_bits(bits);
  if (table == StepTable::released && bits <= kReleasedTableMaxBits) return kReleasedActivationSteps[size_t(bits)];
  static const auto steps = optimal_steps(activation_quantizer_mse);
  return steps[size_t(bits)];
}

}  // namespace edmips
