// tests/quant: one quantizer call with its gradients, shared by the CPU and
// the CUDA fused-kernel tests.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "quant/step_sizes.h"

namespace edmips::testing {

/// A quantizer's output and the gradients of its input and probabilities.
struct QuantizerRun {
  torch::Tensor out, grad_input, grad_probs;
};

/// Runs `quantizer(input, softmax(logits), bits, table)` forward and backward with `upstream`.
template <typename F>
QuantizerRun run_quantizer(F quantizer, const torch::Tensor& input, const torch::Tensor& logits,
                           const std::vector<int>& bits, const torch::Tensor& upstream, StepTable table) {
  auto x = input.clone().requires_grad_(true);
  auto alpha = logits.clone().requires_grad_(true);
  auto out = quantizer(x, torch::softmax(alpha, 0), bits, table);
  out.backward(upstream);
  return {out.detach(), x.grad(), alpha.grad()};
}

}  // namespace edmips::testing
