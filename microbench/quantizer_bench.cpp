// Fused vs reference composite quantizers, forward + backward, on one
// resnet20 first-stage activation (128 x 16 x 32 x 32) and weight tensor.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "core/allocator.h"
#include "quant/quantizers.h"

namespace {

using Quantizer = at::Tensor (*)(const at::Tensor&, const at::Tensor&, const std::vector<int>&, edmips::StepTable);

void run(benchmark::State& state, Quantizer quantizer, std::vector<int64_t> shape, std::vector<int> bits) {
  torch::set_num_threads(int(state.range(0)));
  auto x = torch::randn(shape, torch::requires_grad());
  auto alpha = torch::zeros({int64_t(bits.size())}, torch::requires_grad());
  const auto g = torch::randn(shape);
  for (auto _ : state) {
    auto y = quantizer(x, torch::softmax(alpha, 0), bits, edmips::StepTable::computed);
    y.backward(g);
    benchmark::DoNotOptimize(x.grad().data_ptr<float>());
    x.grad().zero_();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * x.numel() * 4 * 4);
}

const std::vector<int64_t> kActivation = {128, 16, 32, 32};
const std::vector<int64_t> kWeight = {64, 64, 3, 3};

void BM_activation_fused(benchmark::State& s) { run(s, edmips::composite_activation, kActivation, {2, 3, 4}); }
void BM_activation_reference(benchmark::State& s) {
  run(s, edmips::composite_activation_reference, kActivation, {2, 3, 4});
}
void BM_weight_fused(benchmark::State& s) { run(s, edmips::composite_weight, kWeight, {1, 2, 3, 4}); }
void BM_weight_reference(benchmark::State& s) { run(s, edmips::composite_weight_reference, kWeight, {1, 2, 3, 4}); }
void BM_relu(benchmark::State& state) {
  torch::set_num_threads(int(state.range(0)));
  auto x = torch::randn(kActivation, torch::requires_grad());
  const auto g = torch::randn(kActivation);
  for (auto _ : state) {
    torch::relu(x).backward(g);
    x.grad().zero_();
  }
}

}  // namespace

BENCHMARK(BM_relu)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_activation_fused)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_activation_reference)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_weight_fused)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_weight_reference)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  edmips::tune_memory_allocator();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
