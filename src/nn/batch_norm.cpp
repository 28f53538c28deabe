#include "nn/batch_norm.h"

#include <cstdint>

namespace edmips {
namespace {

thread_local ProcessGroup* sync_group = nullptr;

void sum_in_place(torch::Tensor& t, ProcessGroup& group) {
  if (t.scalar_type() == torch::kDouble)
    group.all_reduce_sum(t.data_ptr<double>(), size_t(t.numel()));
  else
    group.all_reduce_sum(t.data_ptr<float>(), size_t(t.numel()));
}

struct AllReduceSum : public torch::autograd::Function<AllReduceSum> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, int64_t group) {
    ctx->saved_data["group"] = group;
    auto out = x.detach().to(torch::kCPU).contiguous().clone();
    sum_in_place(out, *reinterpret_cast<ProcessGroup*>(group));
    return out.to(x.device());
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto* group = reinterpret_cast<ProcessGroup*>(ctx->saved_data["group"].toInt());
    auto g = grads[0].to(torch::kCPU).contiguous().clone();
    sum_in_place(g, *group);
    return {g.to(grads[0].device()), torch::Tensor()};
  }
};

/// Training-mode BatchNorm over the group's global batch: the per-channel
/// sums of x and x^2 and the element count are summed over the group (one
/// collective forward, one backward), then normalised as BatchNorm does.
torch::Tensor synchronised_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x,
                                      ProcessGroup& group) {
  const int64_t channels = x.size(1);
  std::vector<int64_t> view(size_t(x.dim()), 1), reduced;
  view[1] = channels;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d != 1) reduced.push_back(d);
  }
  // The sums in the input's type (LibTorch sums in cascades: accurate to a
  // few ulps), the rest in double: E[x^2] - E[x]^2 in float would lose the
  // variance of channels with a large mean.
  const auto local_count = torch::full({1}, double(x.numel() / channels), x.options().dtype(torch::kDouble));
  const auto sums =
      torch::cat({x.sum(reduced).to(torch::kDouble), (x * x).sum(reduced).to(torch::kDouble), local_count});
  const auto global = all_reduce_sum(sums, group);
  const auto count = global[2 * channels].detach();
  const auto mean = global.slice(0, 0, channels) / count;
  const auto variance = (global.slice(0, channels, 2 * channels) / count - mean * mean).clamp_min(0);
  const auto shift = mean.to(x.scalar_type()).view(view);
  const auto scale = torch::rsqrt(variance + bn.options.eps()).to(x.scalar_type()).view(view);
  auto y = (x - shift) * scale;
  if (bn.options.affine()) y = y * bn.weight.view(view) + bn.bias.view(view);
  if (bn.options.track_running_stats()) {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked += 1;
    const double momentum =
        bn.options.momentum() ? *bn.options.momentum() : 1.0 / double(bn.num_batches_tracked.item<int64_t>());
    const double n = count.item<double>();
    const auto unbiased = (variance.detach() * (n / std::max(1.0, n - 1))).to(bn.running_var.scalar_type());
    bn.running_mean.mul_(1 - momentum).add_(mean.detach().to(bn.running_mean.scalar_type()), momentum);
    bn.running_var.mul_(1 - momentum).add_(unbiased, momentum);
  }
  return y;
}

}  // namespace

torch::Tensor all_reduce_sum(const torch::Tensor& x, ProcessGroup& group) {
  return AllReduceSum::apply(x, int64_t(reinterpret_cast<intptr_t>(&group)));
}

bool batch_norm_is_synchronised(const torch::nn::BatchNorm2dImpl& bn) {
  return sync_group && sync_group->size() > 1 && bn.is_training();
}

torch::Tensor synchronised_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
  return synchronised_batch_norm(bn, x, *sync_group);
}

torch::Tensor apply_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
  if (batch_norm_is_synchronised(bn)) return synchronised_batch_norm(bn, x, *sync_group);
  return bn.forward(x);
}

SyncBatchNormScope::SyncBatchNormScope(ProcessGroup* group) : previous_(sync_group) { sync_group = group; }
SyncBatchNormScope::~SyncBatchNormScope() { sync_group = previous_; }

}  // namespace edmips
