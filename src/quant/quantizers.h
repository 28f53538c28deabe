// quant: the EdMIPS quantizers on tensors (HWGQ activations, Gaussian-fitted
// weights) with straight-through gradients, and the composite (probability-
// weighted) forms that make one convolution stand for |W|x|A| branches.
// Depends on LibTorch tensors and quant/step_sizes only.
#pragma once

#include <ATen/Tensor.h>
#include <vector>

#include "quant/step_sizes.h"

namespace edmips {

// Each quantizer comes twice: the fused kernel (fused_quantizers.cpp: one
// pass per direction, used for float tensors on the CPU) and the plain
// LibTorch reference (quantizers.cpp: used on other devices and by the tests
// that hold the fused kernels to it, outputs and gradients within 1e-5).
// Every quantizer takes the step table its constants come from.

/// HWGQ: step * round(clamp(x, 0, step*(2^bits-1)) / step); also the ReLU.
/// Backward passes the gradient inside the clamp range.
at::Tensor quantize_activation(const at::Tensor& x, int bits, StepTable table);
at::Tensor quantize_activation_reference(const at::Tensor& x, int bits, StepTable table);

/// Uniform mid-rise quantizer scaled by std(w); backward is the identity.
at::Tensor quantize_weight(const at::Tensor& w, int bits, StepTable table);
at::Tensor quantize_weight_reference(const at::Tensor& w, int bits, StepTable table);

/// The signed activation quantizer of imported graphs, for an input already
/// divided by its scale: the weights' mid-rise levels (odd multiples of
/// weight_step(bits, table)/2, MSE-optimal for a unit Gaussian) with a clipped
/// straight-through gradient (inside the outermost levels). LibTorch only.
at::Tensor quantize_signed_activation(const at::Tensor& x, int bits, StepTable table);
/// sum_j probs[j] * quantize_signed_activation(x, bits[j]).
at::Tensor composite_signed_activation(const at::Tensor& x, const at::Tensor& probs,
                                       const std::vector<int>& bits, StepTable table);

/// sum_j probs[j] * quantize_activation(x, bits[j]); differentiable in x and probs.
at::Tensor composite_activation(const at::Tensor& x, const at::Tensor& probs,
                                const std::vector<int>& bits, StepTable table);
at::Tensor composite_activation_reference(const at::Tensor& x, const at::Tensor& probs,
                                          const std::vector<int>& bits, StepTable table);

/// sum_i probs[i] * quantize_weight(w, bits[i]); differentiable in w and probs.
at::Tensor composite_weight(const at::Tensor& w, const at::Tensor& probs,
                            const std::vector<int>& bits, StepTable table);
at::Tensor composite_weight_reference(const at::Tensor& w, const at::Tensor& probs,
                                      const std::vector<int>& bits, StepTable table);

}  // namespace edmips
