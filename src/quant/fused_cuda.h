// quant: the fused CUDA quantizers on tensors, for fused_quantizers.cpp's
// autograd functions. Defined in fused_quantizers_cuda.cpp when the build has
// a CUDA LibTorch (EDMIPS_WITH_CUDA); without it `built()` is false and the
// callers compile their calls out (#ifdef EDMIPS_WITH_CUDA).
#pragma once

#include <ATen/Tensor.h>

#include <utility>
#include <vector>

#include "quant/step_sizes.h"

namespace edmips::cuda_fused {

/// Whether this build has the CUDA kernels.
#ifdef EDMIPS_WITH_CUDA
bool built();
#else
inline bool built() { return false; }
#endif

/// sum_j probs[j] * hwgq(x; bits[j]) for a contiguous-able float CUDA tensor.
at::Tensor activation_forward(const at::Tensor& x, const at::Tensor& probs, const std::vector<int>& bits,
                              StepTable table);
/// The input gradient and, when asked, the probabilities' gradient (else undefined).
std::pair<at::Tensor, at::Tensor> activation_backward(const at::Tensor& x, const at::Tensor& grad,
                                                      const at::Tensor& probs, const std::vector<int>& bits,
                                                      StepTable table, bool probability_gradient);
/// sum_k probs[k] * q(w; bits[k], std_dev) with std_dev a float device scalar.
at::Tensor weight_forward(const at::Tensor& w, const at::Tensor& probs, const std::vector<int>& bits, StepTable table,
                          const at::Tensor& std_dev);
/// d/dp_k: sum_i grad[i] * q(w[i]; bits[k], std_dev).
at::Tensor weight_probability_gradient(const at::Tensor& w, const at::Tensor& grad,
                                       const std::vector<int>& bits, StepTable table,
                                       const at::Tensor& std_dev);

}  // namespace edmips::cuda_fused
