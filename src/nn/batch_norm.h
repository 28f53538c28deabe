// nn: every BatchNorm of the models goes through apply_batch_norm, so a trial
// that spans a group of ranks can synchronise the batch statistics: while a
// SyncBatchNormScope is alive on this thread, a training-mode BatchNorm
// normalises with the mean and variance of the whole global batch (summed
// over the group, gradients too), as torch.nn.SyncBatchNorm does; otherwise
// it is LibTorch's own BatchNorm2d.
#pragma once

#include <torch/torch.h>

#include "core/process_group.h"

namespace edmips {

torch::Tensor apply_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x);

/// Whether apply_batch_norm would synchronise `bn` now; and that path alone,
/// for inputs of any rank >= 2 (an imported network's BatchNorm after a Gemm).
bool batch_norm_is_synchronised(const torch::nn::BatchNorm2dImpl& bn);
torch::Tensor synchronised_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x);

/// Sums `x` over the group (differentiable: the gradient is summed too).
torch::Tensor all_reduce_sum(const torch::Tensor& x, ProcessGroup& group);

class SyncBatchNormScope {
 public:
  explicit SyncBatchNormScope(ProcessGroup* group);  ///< nullptr: no synchronisation
  ~SyncBatchNormScope();
  SyncBatchNormScope(const SyncBatchNormScope&) = delete;
  SyncBatchNormScope& operator=(const SyncBatchNormScope&) = delete;

 private:
  ProcessGroup* previous_;
};

}  // namespace edmips
