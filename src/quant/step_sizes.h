// quant: MSE-optimal uniform quantizer step sizes, computed (not tabulated)
// for every bit-width 1..8. Standard library only, so sweeps and reports can
// use it without LibTorch.
#pragma once

namespace edmips {

constexpr int kMinBits = 1;
constexpr int kMaxBits = 8;

/// Step of the mid-rise uniform weight quantizer with 2^bits levels that
/// minimises the mean squared error for a unit Gaussian (multiply by the
/// weight tensor's standard deviation). bits=2 gives 0.9957.
double weight_step(int bits);

/// Step of the HWGQ activation quantizer for a half-wave Gaussian: positive
/// inputs map to the 2^bits - 1 positive levels {step, ..., (2^bits-1)*step}
/// and negative inputs to 0, as in the HWGQ design the published constants
/// come from. bits=2 gives 0.5388.
double activation_step(int bits);

/// Mean squared error of the weight quantizer with `step` on a unit Gaussian.
double weight_quantizer_mse(double step, int bits);
/// Mean squared error of the HWGQ design quantizer with `step` on x > 0 of a unit Gaussian.
double activation_quantizer_mse(double step, int bits);

}  // namespace edmips
