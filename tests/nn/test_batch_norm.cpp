#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "nn/batch_norm.h"

using namespace edmips;

namespace {

/// A process group of threads in one process: to test the synchronised
/// BatchNorm's arithmetic in isolation (the MPI group is tested on real
/// ranks, tests/integration/test_data_parallel.py).
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size) {}

  class Member : public ProcessGroup {
   public:
    Member(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
    int rank() const override { return rank_; }
    int size() const override { return group_.size_; }
    void all_reduce_sum(float* values, size_t count) override { reduce(values, count); }
    void all_reduce_sum(double* values, size_t count) override { reduce(values, count); }
    void report_failure(const std::string&, ExitCode) noexcept override {}
    double communication_seconds() const override { return 0; }

   private:
    template <typename T>
    void reduce(T* values, size_t count) {
      std::unique_lock<std::mutex> lock(group_.mutex_);
      auto& slot = group_.slots_[calls_++];
      if (slot.sum.empty()) slot.sum.assign(count, 0.0);
      for (size_t i = 0; i < count; ++i) slot.sum[i] += double(values[i]);
      if (++slot.arrived == group_.size_) group_.ready_.notify_all();
      group_.ready_.wait(lock, [&] { return slot.arrived == group_.size_; });
      for (size_t i = 0; i < count; ++i) values[i] = T(slot.sum[i]);
    }
    ThreadGroup& group_;
    int rank_;
    size_t calls_ = 0;
  };

 private:
  struct Slot {
    std::vector<double> sum;
    int arrived = 0;
  };
  int size_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::map<size_t, Slot> slots_;
};

torch::nn::BatchNorm2d copy_of(const torch::nn::BatchNorm2d& bn) {
  auto copy = torch::nn::BatchNorm2d(bn->options);
  torch::NoGradGuard no_grad;
  copy->weight.copy_(bn->weight);
  copy->bias.copy_(bn->bias);
  copy->running_mean.copy_(bn->running_mean);
  copy->running_var.copy_(bn->running_var);
  return copy;
}

}  // namespace

TEST_CASE("synchronised BatchNorm over shards equals BatchNorm over the whole batch, forward and backward",
          "[nn][data-parallel]") {
  torch::manual_seed(7);
  const int ranks = GENERATE(2, 3);
  const int64_t rows = 12, channels = 5;
  // A mean far from zero: the variance must not cancel away.
  const auto x = torch::randn({rows, channels, 6, 6}) * 2.5 + 4.0;
  const auto upstream = torch::randn({rows, channels, 6, 6});
  auto reference = torch::nn::BatchNorm2d(channels);
  {
    torch::NoGradGuard no_grad;
    reference->weight.uniform_(0.5, 1.5);
    reference->bias.uniform_(-0.5, 0.5);
  }
  std::vector<torch::nn::BatchNorm2d> copies;
  for (int r = 0; r < ranks; ++r) copies.push_back(copy_of(reference));

  const auto x_reference = x.clone().requires_grad_(true);
  const auto y_reference = reference->forward(x_reference);
  (y_reference * upstream).sum().backward();

  ThreadGroup group(ranks);
  const size_t n = size_t(ranks);
  std::vector<torch::Tensor> y(n), x_grad(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      ThreadGroup::Member member(group, r);
      const int64_t begin = rows * r / ranks, end = rows * (r + 1) / ranks;
      const auto shard = x.narrow(0, begin, end - begin).clone().requires_grad_(true);
      const SyncBatchNormScope sync(&member);
      y[size_t(r)] = apply_batch_norm(*copies[size_t(r)], shard);
      (y[size_t(r)] * upstream.narrow(0, begin, end - begin)).sum().backward();
      x_grad[size_t(r)] = shard.grad();
    });
  }
  for (auto& t : threads) t.join();

  CHECK(torch::allclose(torch::cat(y), y_reference, 1e-5, 1e-5));
  CHECK(torch::allclose(torch::cat(x_grad), x_reference.grad(), 1e-5, 1e-5));
  auto weight_grad = torch::zeros_like(reference->weight), bias_grad = torch::zeros_like(reference->bias);
  for (const auto& c : copies) {
    weight_grad += c->weight.grad();  // what the step's gradient all-reduce sums
    bias_grad += c->bias.grad();
    // Every rank holds the global batch's running statistics.
    CHECK(torch::allclose(c->running_mean, reference->running_mean, 1e-5, 1e-6));
    CHECK(torch::allclose(c->running_var, reference->running_var, 1e-5, 1e-6));
    CHECK(c->num_batches_tracked.item<int64_t>() == 1);
  }
  CHECK(torch::allclose(weight_grad, reference->weight.grad(), 1e-4, 1e-4));
  CHECK(torch::allclose(bias_grad, reference->bias.grad(), 1e-4, 1e-4));
}

TEST_CASE("without a group, or in evaluation mode, BatchNorm is LibTorch's own", "[nn][data-parallel]") {
  torch::manual_seed(3);
  const auto x = torch::randn({4, 3, 5, 5});
  auto a = torch::nn::BatchNorm2d(3);
  auto b = copy_of(a);
  CHECK(torch::equal(apply_batch_norm(*a, x), b->forward(x)));
  ThreadGroup group(2);
  ThreadGroup::Member member(group, 0);
  const SyncBatchNormScope sync(&member);
  a->eval();
  b->eval();
  // Evaluation uses the running statistics: no collective (a lone member would wait for ever).
  CHECK(torch::equal(apply_batch_norm(*a, x), b->forward(x)));
}
