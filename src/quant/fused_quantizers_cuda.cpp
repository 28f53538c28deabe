// The fused CUDA kernels on tensors (built only with a CUDA LibTorch): device
// checks, outputs and scratch allocated through LibTorch's caching allocator,
// launches on the current stream. No host synchronisation: nothing is read
// back, the weight std stays a device scalar.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/torch.h>

#include "quant/fused_cuda.h"
#include "quant/fused_kernels_cuda.h"

namespace edmips::cuda_fused {
namespace {

void* current_stream(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }

at::Tensor device_probabilities(const at::Tensor& probs, const at::Tensor& like) {
  return probs.detach().to(like.device(), at::kFloat).contiguous();
}

at::Tensor scratch(int64_t n, size_t candidates, const at::Tensor& like) {
  return at::empty({cuda_kernels::partial_sums(n, int(candidates))}, like.options().dtype(at::kDouble));
}

}  // namespace

bool built() { return true; }

at::Tensor activation_forward(const at::Tensor& x, const at::Tensor& probs, const std::vector<int>& bits,
                              StepTable table) {
  const c10::cuda::CUDAGuard guard(x.device());
  const auto input = x.contiguous();
  const auto p = device_probabilities(probs, input);
  auto out = at::empty_like(input);
  cuda_kernels::activation_forward(input.data_ptr<float>(), out.data_ptr<float>(), input.numel(), bits, table,
                                   p.data_ptr<float>(), current_stream(input));
  return out;
}

std::pair<at::Tensor, at::Tensor> activation_backward(const at::Tensor& x, const at::Tensor& grad,
                                                      const at::Tensor& probs, const std::vector<int>& bits,
                                                      StepTable table, bool probability_gradient) {
  const c10::cuda::CUDAGuard guard(x.device());
  const auto g = grad.contiguous();
  const auto p = device_probabilities(probs, x);
  auto gx = at::empty_like(x);
  at::Tensor gp, partials;
  if (probability_gradient) {
    gp = at::empty({int64_t(bits.size())}, x.options());
    partials = scratch(x.numel(), bits.size(), x);
  }
  cuda_kernels::activation_backward(
      x.data_ptr<float>(), g.data_ptr<float>(), gx.data_ptr<float>(), x.numel(), bits, table,
      p.data_ptr<float>(), gp.defined() ? gp.data_ptr<float>() : nullptr,
      partials.defined() ? partials.data_ptr<double>() : nullptr, current_stream(x));
  return {gx, gp};
}

at::Tensor weight_forward(const at::Tensor& w, const at::Tensor& probs, const std::vector<int>& bits, StepTable table,
                          const at::Tensor& std_dev) {
  const c10::cuda::CUDAGuard guard(w.device());
  const auto p = device_probabilities(probs, w);
  auto out = at::empty_like(w);
  cuda_kernels::weight_forward(w.data_ptr<float>(), out.data_ptr<float>(), w.numel(), bits, table, p.data_ptr<float>(),
                               std_dev.data_ptr<float>(), current_stream(w));
  return out;
}

at::Tensor weight_probability_gradient(const at::Tensor& w, const at::Tensor& grad,
                                       const std::vector<int>& bits, StepTable table,
                                       const at::Tensor& std_dev) {
  const c10::cuda::CUDAGuard guard(w.device());
  const auto g = grad.contiguous();
  auto gp = at::empty({int64_t(bits.size())}, w.options());
  auto partials = scratch(w.numel(), bits.size(), w);
  cuda_kernels::weight_probability_gradient(w.data_ptr<float>(), g.data_ptr<float>(), w.numel(), bits, table,
                                            std_dev.data_ptr<float>(), gp.data_ptr<float>(),
                                            partials.data_ptr<double>(), current_stream(w));
  return gp;
}

}  // namespace edmips::cuda_fused
