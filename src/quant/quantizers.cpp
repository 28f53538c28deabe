#include "quant/quantizers.h"

#include <torch/torch.h>

#include "quant/step_sizes.h"

namespace edmips {

at::Tensor quantize_activation_reference(const at::Tensor& x, int bits, StepTable table) {
  const double step = activation_step(bits, table);
  const double clip = step * ((1 << bits) - 1);
  const auto clipped = torch::clamp(x, 0.0, clip);
  const auto quantized = torch::round(clipped.detach() / step) * step;
  // Straight-through: the value of `quantized` exactly (x - x is 0 in floating
  // point), the gradient of `clipped`.
  return quantized + (clipped - clipped.detach());
}

at::Tensor quantize_weight_reference(const at::Tensor& w, int bits, StepTable table) {
  // The std stays a device tensor: no host synchronisation per layer.
  const auto step = w.detach().std() * weight_step(bits, table);
  const auto limit = step * ((1 << (bits - 1)) - 0.5);
  auto quantized = (torch::round(w.detach() / step + 0.5) - 0.5) * step;
  quantized = torch::max(torch::min(quantized, limit), -limit);
  return quantized + (w - w.detach());
}

at::Tensor quantize_signed_activation(const at::Tensor& x, int bits, StepTable table) {
  const double step = weight_step(bits, table);
  const double limit = step * ((1 << (bits - 1)) - 0.5);
  const auto clipped = torch::clamp(x, -limit, limit);
  const auto quantized = torch::clamp((torch::round(clipped.detach() / step + 0.5) - 0.5) * step, -limit, limit);
  return quantized + (clipped - clipped.detach());
}

at::Tensor composite_signed_activation(const at::Tensor& x, const at::Tensor& probs, const std::vector<int>& bits,
                                       StepTable table) {
  at::Tensor out;
  for (size_t j = 0; j < bits.size(); ++j) {
    auto term = quantize_signed_activation(x, bits[j], table) * probs[static_cast<int64_t>(j)];
    out = j == 0 ? term : out + term;
  }
  return out;
}

at::Tensor composite_activation_reference(const at::Tensor& x, const at::Tensor& probs,
                                          const std::vector<int>& bits, StepTable table) {
  at::Tensor out;
  for (size_t j = 0; j < bits.size(); ++j) {
    auto term = quantize_activation_reference(x, bits[j], table) * probs[static_cast<int64_t>(j)];
    out = j == 0 ? term : out + term;
  }
  return out;
}

at::Tensor composite_weight_reference(const at::Tensor& w, const at::Tensor& probs,
                                      const std::vector<int>& bits, StepTable table) {
  at::Tensor out;
  for (size_t i = 0; i < bits.size(); ++i) {
    auto term = quantize_weight_reference(w, bits[i], table) * probs[static_cast<int64_t>(i)];
    out = i == 0 ? term : out + term;
  }
  return out;
}

}  // namespace edmips
