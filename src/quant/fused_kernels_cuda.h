// quant: launchers of the fused CUDA quantizer kernels (fused_kernels_cuda.cu)
// on raw device pointers, without LibTorch or CUDA headers. Every launcher
// enqueues on `stream` (a cudaStream_t) and never synchronises with the host:
// probabilities and the weight standard deviation are read on the device.
// Reductions are deterministic: a fixed grid, per-block partial sums in double
// precision, summed in a fixed order by one block.
#pragma once

#include <cstdint>
#include <vector>

#include "quant/step_sizes.h"

namespace edmips::cuda_kernels {

constexpr int kMaxCandidates = 8;

/// Device scratch the probability-gradient reductions need: partial_sums()
/// doubles for `candidates` candidates over `n` elements.
int64_t partial_sums(int64_t n, int candidates);

/// y = sum_j p[j] * hwgq(x; bits[j]); probs: `bits.size()` floats on the device.
void activation_forward(const float* x, float* y, int64_t n, const std::vector<int>& bits, StepTable table,
                        const float* probs, void* stream);

/// gx = g * sum_j p[j] * [0 <= x <= limit_j]; when grad_probs is not null,
/// grad_probs[j] = sum_i g[i] * hwgq(x[i]; bits[j]) (partials: partial_sums() doubles).
void activation_backward(const float* x, const float* g, float* gx, int64_t n, const std::vector<int>& bits,
                         StepTable table, const float* probs, float* grad_probs, double* partials,
                         void* stream);

/// y = sum_k p[k] * q(w; bits[k], std_dev); std_dev: one float on the device.
void weight_forward(const float* w, float* y, int64_t n, const std::vector<int>& bits, StepTable table,
                    const float* probs, const float* std_dev, void* stream);

/// grad_probs[k] = sum_i g[i] * q(w[i]; bits[k], std_dev) (partials: partial_sums() doubles).
void weight_probability_gradient(const float* w, const float* g, int64_t n, const std::vector<int>& bits,
                                 StepTable table, const float* std_dev, float* grad_probs, double* partials,
                                 void* stream);

}  // namespace edmips::cuda_kernels
