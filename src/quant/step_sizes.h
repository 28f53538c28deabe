// quant: uniform quantizer step sizes: MSE-optimal ones computed (not
// tabulated) for every bit-width 1..8, or the released code's table. Standard
// library only, so sweeps and reports can
// use it without LibTorch.
#pragma once

#include <optional>
#include <string>

namespace edmips {

constexpr int kMinBits = 1;
constexpr int kMaxBits = 8;

/// Which constants the quantizers use for their steps.
enum class StepTable {
  /// The MSE-optimal steps computed here for every width 1..8 (the default).
  computed,
  /// The released quant_module.py's tables, exactly: gaussian_steps
  /// {1.596, 0.996, 0.586, 0.336} and hwgq_steps {0.799, 0.538, 0.3217, 0.185}
  /// for 1..4 bits. The released code has no constants above 4 bits; there
  /// the computed steps stand in. The `paper` preset's default.
  released,
};
const char* to_string(StepTable table);
/// "computed" or "released"; nullopt otherwise.
std::optional<StepTable> step_table_from_string(const std::string& name);
/// The highest width the released table has a constant for.
constexpr int kReleasedTableMaxBits = 4;

/// Step of the mid-rise uniform weight quantizer with 2^bits levels that
/// minimises the mean squared error for a unit Gaussian (multiply by the
/// weight tensor's standard deviation). bits=2 gives 0.9957 computed, 0.996
/// released.
double weight_step(int bits, StepTable table);

/// Step of the HWGQ activation quantizer for a half-wave Gaussian: positive
/// inputs map to the 2^bits - 1 positive levels {step, ..., (2^bits-1)*step}
/// and negative inputs to 0, as in the HWGQ design the published constants
/// come from. bits=2 gives 0.5388 computed, 0.538 released.
double activation_step(int bits, StepTable table);

/// Mean squared error of the weight quantizer with `step` on a unit Gaussian.
double weight_quantizer_mse(double step, int bits);
/// Mean squared error of the HWGQ design quantizer with `step` on x > 0 of a unit Gaussian.
double activation_quantizer_mse(double step, int bits);

}  // namespace edmips
