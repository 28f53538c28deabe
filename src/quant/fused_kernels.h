// quant: the fused quantizer kernels' interface (plain arrays, no LibTorch
// types), with one implementation per instruction set.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace edmips::kernels {

constexpr int kMaxCandidates = 8;

/// Activation candidates: HWGQ step, clip limit and probability of each.
struct Candidates {
  int count = 0;
  std::array<float, kMaxCandidates> step{}, limit{}, probability{};
};

/// One candidate's weight quantizer constants for a given weight std.
struct WeightCandidate {
  float step, limit, span;
};

#define EDMIPS_DECLARE_KERNELS(ns)                                                                  \
  namespace ns {                                                                                    \
  void activation_forward(const float* x, float* y, int64_t n, const Candidates& c);                \
  void activation_backward(const float* x, const float* g, float* gx, int64_t n, const Candidates& c, \
                           std::vector<double>& grad_probability);                                  \
  void weight_forward(const float* w, float* y, int64_t n, const std::vector<WeightCandidate>& cs,    \
                      const std::vector<float>& probs);                                              \
  }
EDMIPS_DECLARE_KERNELS(generic)
EDMIPS_DECLARE_KERNELS(avx2)
#undef EDMIPS_DECLARE_KERNELS

}  // namespace edmips::kernels
