// Fused CUDA kernels for the composite quantizers: the CUDA twin of
// fused_kernels.inc. Each direction is one pass over memory; the
// probabilities and the weights' standard deviation are read from device
// memory, so no launch waits for the host. Arithmetic follows the plain
// LibTorch reference (quantizers.cpp) operation by operation in float
// (rintf is round-half-even, as torch.round), so outputs match it exactly
// and gradients up to summation order.
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "quant/fused_kernels_cuda.h"
#include "quant/step_sizes.h"

namespace edmips::cuda_kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1024;        // fixed cap: the reduction order never depends on the device
constexpr int kElementsPerThread = 8;   // before the grid reaches its cap

struct ActivationCandidates {
  int count;
  float step[kMaxCandidates], limit[kMaxCandidates];
};

struct WeightCandidates {
  int count;
  float coefficient[kMaxCandidates];  // MSE-optimal step for a unit Gaussian
  float half_levels[kMaxCandidates];  // 2^(bits-1) - 0.5: the clamp limit in steps
  float span[kMaxCandidates];         // 2^bits: keeps rintf in its exact range
};

ActivationCandidates activation_candidates(const std::vector<int>& bits, StepTable table) {
  if (bits.empty() || bits.size() > size_t(kMaxCandidates)) throw std::invalid_argument("bad candidate count");
  ActivationCandidates c{};
  c.count = int(bits.size());
  for (int j = 0; j < c.count; ++j) {
    const double step = activation_step(bits[size_t(j)], table);
    c.step[j] = float(step);
    c.limit[j] = float(step * ((1 << bits[size_t(j)]) - 1));
  }
  return c;
}

WeightCandidates weight_candidates(const std::vector<int>& bits, StepTable table) {
  if (bits.empty() || bits.size() > size_t(kMaxCandidates)) throw std::invalid_argument("bad candidate count");
  WeightCandidates c{};
  c.count = int(bits.size());
  for (int k = 0; k < c.count; ++k) {
    const int b = bits[size_t(k)];
    c.coefficient[k] = float(weight_step(b, table));
    c.half_levels[k] = float((1 << (b - 1)) - 0.5);
    c.span[k] = float(1 << b);
  }
  return c;
}

int blocks_for(int64_t n) {
  const int64_t wanted = (n + int64_t(kThreads) * kElementsPerThread - 1) / (int64_t(kThreads) * kElementsPerThread);
  return int(std::max<int64_t>(1, std::min<int64_t>(wanted, kMaxBlocks)));
}

void check_launch(const char* what) {
  const cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(error));
}

__device__ __forceinline__ float hwgq(float v, float step, float limit) {
  return rintf(fminf(fmaxf(v, 0.0f), limit) / step) * step;
}

/// The reference's weight quantizer: clamp((round(w/step + 0.5) - 0.5) * step, +-limit).
__device__ __forceinline__ float gauss_quantize(float w, float step, float limit, float span) {
  const float v = fminf(fmaxf(w / step + 0.5f, -span), span);  // clamping first changes nothing after the final clamp
  return fminf(fmaxf((rintf(v) - 0.5f) * step, -limit), limit);
}

__global__ void activation_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n,
                                          ActivationCandidates c, const float* __restrict__ probs) {
  float p[kMaxCandidates];
  for (int j = 0; j < c.count; ++j) p[j] = probs[j];
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = x[i];
    float acc = 0.0f;
    for (int j = 0; j < c.count; ++j) acc += hwgq(v, c.step[j], c.limit[j]) * p[j];
    y[i] = acc;
  }
}

/// Sums `value[j]` over the block into sums[j] of thread 0 (deterministic tree).
__device__ void block_sum(double (&value)[kMaxCandidates], int count, double* shared) {
  for (int j = 0; j < count; ++j) shared[j * kThreads + threadIdx.x] = value[j];
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (int(threadIdx.x) < width) {
      for (int j = 0; j < count; ++j) shared[j * kThreads + threadIdx.x] += shared[j * kThreads + threadIdx.x + width];
    }
    __syncthreads();
  }
  for (int j = 0; j < count; ++j) value[j] = shared[j * kThreads];
}

__global__ void activation_backward_kernel(const float* __restrict__ x, const float* __restrict__ g,
                                           float* __restrict__ gx, int64_t n, ActivationCandidates c,
                                           const float* __restrict__ probs, double* __restrict__ partials) {
  __shared__ double shared[kMaxCandidates * kThreads];
  float p[kMaxCandidates];
  double sums[kMaxCandidates];
  for (int j = 0; j < c.count; ++j) {
    p[j] = probs[j];
    sums[j] = 0.0;
  }
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = x[i], grad = g[i];
    float multiplier = 0.0f;
    for (int j = 0; j < c.count; ++j) {
      if (partials) sums[j] += double(grad * hwgq(v, c.step[j], c.limit[j]));
      // The clamp passes the gradient on [0, limit], as torch's clamp does.
      multiplier += (v >= 0.0f && v <= c.limit[j]) ? p[j] : 0.0f;
    }
    gx[i] = grad * multiplier;
  }
  if (!partials) return;
  block_sum(sums, c.count, shared);
  if (threadIdx.x == 0) {
    for (int j = 0; j < c.count; ++j) partials[int64_t(blockIdx.x) * c.count + j] = sums[j];
  }
}

__global__ void weight_forward_kernel(const float* __restrict__ w, float* __restrict__ y, int64_t n,
                                      WeightCandidates c, const float* __restrict__ probs,
                                      const float* __restrict__ std_dev) {
  float p[kMaxCandidates], step[kMaxCandidates], limit[kMaxCandidates];
  const float s = *std_dev;
  for (int k = 0; k < c.count; ++k) {
    p[k] = probs[k];
    step[k] = s * c.coefficient[k];
    limit[k] = step[k] * c.half_levels[k];
  }
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = w[i];
    float acc = 0.0f;
    for (int k = 0; k < c.count; ++k) acc += gauss_quantize(v, step[k], limit[k], c.span[k]) * p[k];
    y[i] = acc;
  }
}

__global__ void weight_gradient_kernel(const float* __restrict__ w, const float* __restrict__ g, int64_t n,
                                       WeightCandidates c, const float* __restrict__ std_dev,
                                       double* __restrict__ partials) {
  __shared__ double shared[kMaxCandidates * kThreads];
  float step[kMaxCandidates], limit[kMaxCandidates];
  double sums[kMaxCandidates];
  const float s = *std_dev;
  for (int k = 0; k < c.count; ++k) {
    step[k] = s * c.coefficient[k];
    limit[k] = step[k] * c.half_levels[k];
    sums[k] = 0.0;
  }
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = w[i], grad = g[i];
    for (int k = 0; k < c.count; ++k) sums[k] += double(grad * gauss_quantize(v, step[k], limit[k], c.span[k]));
  }
  block_sum(sums, c.count, shared);
  if (threadIdx.x == 0) {
    for (int k = 0; k < c.count; ++k) partials[int64_t(blockIdx.x) * c.count + k] = sums[k];
  }
}

/// One block sums every block's partials in a fixed order.
__global__ void finish_sums_kernel(const double* __restrict__ partials, int blocks, int count,
                                   float* __restrict__ out) {
  __shared__ double shared[kMaxCandidates * kThreads];
  double sums[kMaxCandidates];
  for (int j = 0; j < count; ++j) sums[j] = 0.0;
  for (int b = threadIdx.x; b < blocks; b += blockDim.x) {
    for (int j = 0; j < count; ++j) sums[j] += partials[int64_t(b) * count + j];
  }
  block_sum(sums, count, shared);
  if (threadIdx.x == 0) {
    for (int j = 0; j < count; ++j) out[j] = float(sums[j]);
  }
}

}  // namespace

int64_t partial_sums(int64_t n, int candidates) { return int64_t(blocks_for(n)) * candidates; }

void activation_forward(const float* x, float* y, int64_t n, const std::vector<int>& bits, StepTable table,
                        const float* probs, void* stream) {
  if (n == 0) return;
  activation_forward_kernel<<<blocks_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      x, y, n, activation_candidates(bits, table), probs);
  check_launch("composite activation forward");
}

void activation_backward(const float* x, const float* g, float* gx, int64_t n, const std::vector<int>& bits,
                         StepTable table, const float* probs, float* grad_probs, double* partials,
                         void* stream) {
  auto* s = static_cast<cudaStream_t>(stream);
  const auto c = activation_candidates(bits, table);
  const int blocks = blocks_for(n);
  if (n > 0) {
    activation_backward_kernel<<<blocks, kThreads, 0, s>>>(x, g, gx, n, c, probs, grad_probs ? partials : nullptr);
    check_launch("composite activation backward");
  }
  if (grad_probs) {
    if (n == 0) {
      cudaMemsetAsync(grad_probs, 0, sizeof(float) * size_t(c.count), s);
      return;
    }
    finish_sums_kernel<<<1, kThreads, 0, s>>>(partials, blocks, c.count, grad_probs);
    check_launch("composite activation probability gradient");
  }
}

void weight_forward(const float* w, float* y, int64_t n, const std::vector<int>& bits, StepTable table,
                    const float* probs, const float* std_dev, void* stream) {
  if (n == 0) return;
  weight_forward_kernel<<<blocks_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      w, y, n, weight_candidates(bits, table), probs, std_dev);
  check_launch("composite weight forward");
}

void weight_probability_gradient(const float* w, const float* g, int64_t n, const std::vector<int>& bits,
                                 StepTable table, const float* std_dev, float* grad_probs, double* partials,
                                 void* stream) {
  auto* s = static_cast<cudaStream_t>(stream);
  const auto c = weight_candidates(bits, table);
  if (n == 0) {
    cudaMemsetAsync(grad_probs, 0, sizeof(float) * size_t(c.count), s);
    return;
  }
  const int blocks = blocks_for(n);
  weight_gradient_kernel<<<blocks, kThreads, 0, s>>>(w, g, n, c, std_dev, partials);
  check_launch("composite weight probability gradient");
  finish_sums_kernel<<<1, kThreads, 0, s>>>(partials, blocks, c.count, grad_probs);
  check_launch("composite weight probability gradient");
}

}  // namespace edmips::cuda_kernels
