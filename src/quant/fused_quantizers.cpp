// Fused CPU kernels for the composite quantizers (issue: search step within
// 1.3x of plain training). Each direction is one pass over memory: the
// forward reads x once and writes the probability-weighted sum of all
// candidates; the backward reads x and the incoming gradient once and
// produces the input gradient and every candidate's probability gradient.
// Only x is saved for backward (a plain ReLU saves as much). Loops are
// written for the vectoriser (`omp simd`, no libm calls: rounding by the
// 1.5*2^23 trick, exact round-half-even for |v| < 2^22 like torch.round) and
// split across threads with at::parallel_for. Results match the reference
// (quantizers.cpp) up to float summation order. The same autograd functions
// run the CUDA kernels (fused_kernels_cuda.cu, via quant/fused_cuda.h) for
// CUDA tensors when the build has them; otherwise CUDA tensors take the plain
// LibTorch reference.
#include <torch/torch.h>

#include <algorithm>
#include <array>

#include "quant/fused_cuda.h"
#include "quant/fused_kernels.h"
#include "quant/quantizers.h"
#include "quant/step_sizes.h"

namespace edmips {
namespace {

using kernels::Candidates;
using kernels::kMaxCandidates;
using kernels::WeightCandidate;

/// The kernels for this processor: AVX2 where the CPU has it.
struct KernelSet {
  decltype(&kernels::generic::activation_forward) activation_forward;
  decltype(&kernels::generic::activation_backward) activation_backward;
  decltype(&kernels::generic::weight_forward) weight_forward;
};
const KernelSet& kernel_set() {
  static const KernelSet set = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
      ? KernelSet{kernels::avx2::activation_forward, kernels::avx2::activation_backward, kernels::avx2::weight_forward}
      : KernelSet{kernels::generic::activation_forward, kernels::generic::activation_backward,
                  kernels::generic::weight_forward};
  return set;
}
void activation_forward(const float* x, float* y, int64_t n, const Candidates& c) {
  kernel_set().activation_forward(x, y, n, c);
}
void activation_backward(const float* x, const float* g, float* gx, int64_t n, const Candidates& c,
                         std::vector<double>& grad_probability) {
  kernel_set().activation_backward(x, g, gx, n, c, grad_probability);
}
void weight_forward(const float* w, float* y, int64_t n, const std::vector<WeightCandidate>& cs,
                    const std::vector<float>& probs) {
  kernel_set().weight_forward(w, y, n, cs, probs);
}

Candidates activation_candidates(const std::vector<int>& bits, StepTable table, const at::Tensor& probs) {
  Candidates c;
  c.count = int(bits.size());
  const auto p = probs.detach().to(torch::kCPU, torch::kFloat).contiguous();
  for (int j = 0; j < c.count; ++j) {
    c.step[j] = float(activation_step(bits[j], table));
    c.limit[j] = float(activation_step(bits[j], table) * ((1 << bits[j]) - 1));
    c.probability[j] = p.data_ptr<float>()[j];
  }
  return c;
}

class CompositeActivationFunction : public torch::autograd::Function<CompositeActivationFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& probs, const std::vector<int64_t>& bits, int64_t table_code) {
    std::vector<int> b(bits.begin(), bits.end());
    const auto table = StepTable(table_code);
    const auto input = x.contiguous();
    torch::Tensor out;
#ifdef EDMIPS_WITH_CUDA
    if (input.is_cuda()) out = cuda_fused::activation_forward(input, probs, b, table);
#endif
    if (!out.defined()) {
      out = torch::empty_like(input);
      activation_forward(input.data_ptr<float>(), out.data_ptr<float>(), input.numel(),
                         activation_candidates(b, table, probs));
    }
    ctx->save_for_backward({input, probs});
    ctx->saved_data["bits"] = bits;
    ctx->saved_data["table"] = table_code;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& probs = saved[1];
    const auto list = ctx->saved_data["bits"].toIntVector();
    std::vector<int> bits(list.begin(), list.end());
    const auto table = StepTable(ctx->saved_data["table"].toInt());
#ifdef EDMIPS_WITH_CUDA
    if (x.is_cuda()) {
      auto [gx, gp] = cuda_fused::activation_backward(x, grads[0], probs, bits, table, ctx->needs_input_grad(1));
      return {gx, gp, torch::Tensor(), torch::Tensor()};
    }
#endif
    const auto g = grads[0].contiguous();
    auto gx = torch::empty_like(x);
    std::vector<double> grad_probability;
    activation_backward(x.data_ptr<float>(), g.data_ptr<float>(), gx.data_ptr<float>(), x.numel(),
                        activation_candidates(bits, table, probs), grad_probability);
    auto gp = torch::tensor(std::vector<float>(grad_probability.begin(), grad_probability.end()),
                            probs.options());
    return {gx, gp, torch::Tensor(), torch::Tensor()};
  }
};

std::vector<WeightCandidate> weight_candidates(const std::vector<int>& bits, StepTable table, float std_dev) {
  std::vector<WeightCandidate> cs;
  for (int b : bits) {
    const float step = std_dev * float(weight_step(b, table));
    cs.push_back({step, step * float((1 << (b - 1)) - 0.5), float(1 << b)});
  }
  return cs;
}

class CompositeWeightFunction : public torch::autograd::Function<CompositeWeightFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& w,
                               const torch::Tensor& probs, const std::vector<int64_t>& bits, int64_t table_code) {
    std::vector<int> b(bits.begin(), bits.end());
    const auto table = StepTable(table_code);
    const auto input = w.contiguous();
    ctx->saved_data["table"] = table_code;
#ifdef EDMIPS_WITH_CUDA
    if (input.is_cuda()) {
      // The std stays a device scalar: no host synchronisation per layer.
      const auto std_dev = input.std().to(torch::kFloat);
      ctx->save_for_backward({input, probs, std_dev});
      ctx->saved_data["bits"] = bits;
      return cuda_fused::weight_forward(input, probs, b, table, std_dev);
    }
#endif
    // The weights live on the CPU: reading their std is no device sync.
    const float std_dev = input.std().item<float>();
    const auto p = probs.detach().to(torch::kFloat).contiguous();
    std::vector<float> pv(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
    auto out = torch::empty_like(input);
    const auto cs = weight_candidates(b, table, std_dev);
    weight_forward(input.data_ptr<float>(), out.data_ptr<float>(), input.numel(), cs, pv);
    ctx->save_for_backward({input, probs});
    ctx->saved_data["bits"] = bits;
    ctx->saved_data["std"] = double(std_dev);
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& w = saved[0];
    const auto& probs = saved[1];
    const auto list = ctx->saved_data["bits"].toIntVector();
    const auto table = StepTable(ctx->saved_data["table"].toInt());
    const auto g = grads[0].contiguous();
    // Straight-through: d(sum_i p_i q_i(w))/dw = sum_i p_i (the probabilities sum to one).
    const auto gw = g * probs.detach().sum();
#ifdef EDMIPS_WITH_CUDA
    if (w.is_cuda()) {
      const auto gp = ctx->needs_input_grad(1)
                          ? cuda_fused::weight_probability_gradient(w, g, {list.begin(), list.end()}, table, saved[2])
                          : torch::Tensor();
      return {gw, gp, torch::Tensor(), torch::Tensor()};
    }
#endif
    const float std_dev = float(ctx->saved_data["std"].toDouble());
    // d/dp_i = <g, q_i(w)>; weights are small, so recomputing q_i is cheap.
    std::vector<float> grad_probability;
    const int64_t n = w.numel();
    for (size_t k = 0; k < list.size(); ++k) {
      const auto c = weight_candidates({int(list[k])}, table, std_dev);
      auto q = torch::empty_like(w);
      weight_forward(w.data_ptr<float>(), q.data_ptr<float>(), n, c, {1.0f});
      grad_probability.push_back((q * g).sum().item<float>());
    }
    return {gw, torch::tensor(grad_probability, probs.options()), torch::Tensor(), torch::Tensor()};
  }
};

/// Float tensors on the CPU, or on a CUDA device when this build has the CUDA kernels.
bool fusable(const at::Tensor& t) {
  if (t.scalar_type() != at::kFloat) return false;
  return t.device().is_cpu() || (t.is_cuda() && cuda_fused::built());
}

std::vector<int64_t> as_int64(const std::vector<int>& bits) { return {bits.begin(), bits.end()}; }

}  // namespace

at::Tensor composite_activation(const at::Tensor& x, const at::Tensor& probs, const std::vector<int>& bits,
                                StepTable table) {
  if (!fusable(x) || bits.size() > size_t(kMaxCandidates)) {
    return composite_activation_reference(x, probs, bits, table);
  }
  return CompositeActivationFunction::apply(x, probs, as_int64(bits), int64_t(table));
}

at::Tensor composite_weight(const at::Tensor& w, const at::Tensor& probs, const std::vector<int>& bits,
                            StepTable table) {
  if (!fusable(w) || bits.size() > size_t(kMaxCandidates)) return composite_weight_reference(w, probs, bits, table);
  return CompositeWeightFunction::apply(w, probs, as_int64(bits), int64_t(table));
}

at::Tensor quantize_activation(const at::Tensor& x, int bits, StepTable table) {
  if (!fusable(x)) return quantize_activation_reference(x, bits, table);
  return CompositeActivationFunction::apply(x, torch::ones({1}, x.options()), std::vector<int64_t>{bits},
                                            int64_t(table));
}

at::Tensor quantize_weight(const at::Tensor& w, int bits, StepTable table) {
  if (!fusable(w)) return quantize_weight_reference(w, bits, table);
  return CompositeWeightFunction::apply(w, torch::ones({1}, w.options()), std::vector<int64_t>{bits},
                                        int64_t(table));
}

}  // namespace edmips
