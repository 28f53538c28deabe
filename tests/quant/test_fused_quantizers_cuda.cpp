// The fused CUDA quantizers against the plain LibTorch reference on the GPU.
// Without a CUDA device, or in a CPU-only build, each test ends with
// EDMIPS_SKIP, which CTest counts as skipped (label gpu; tests/CMakeLists.txt).
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "models/network.h"
#include "quant/fused_cuda.h"
#include "quant/fused_test_support.h"
#include "quant/quantizers.h"
#include "trial/trial.h"
#include "test_support.h"

#ifdef EDMIPS_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

using namespace edmips;

namespace {

/// Why the CUDA tests cannot run here, if they cannot.
const char* cuda_missing() {
  if (!cuda_fused::built()) return "this build has no CUDA kernels (a CPU LibTorch)";
  if (!torch::cuda::is_available()) return "no CUDA device visible";
  return nullptr;
}

using Run = edmips::testing::QuantizerRun;

/// One forward and backward pass of a quantizer (fused_test_support.h).
template <typename F>
Run run(F quantizer, const torch::Tensor& input, const torch::Tensor& logits, const std::vector<int>& bits,
        const torch::Tensor& upstream, StepTable table = StepTable::computed) {
  return edmips::testing::run_quantizer(quantizer, input, logits, bits, upstream, table);
}

/// |a - b| <= tolerance * max(1, |b|), elementwise.
bool close(const torch::Tensor& a, const torch::Tensor& b, double tolerance) {
  return ((a - b).abs() <= tolerance * torch::clamp_min(b.abs(), 1.0)).all().item<bool>();
}

const torch::Device kGpu(torch::kCUDA, 0);

}  // namespace

TEST_CASE("the CUDA composite activation matches the reference on the GPU in output and gradients",
          "[quant][cuda]") {
  if (const char* why = cuda_missing()) EDMIPS_SKIP(why);
  torch::manual_seed(21);
  for (const int64_t n : {int64_t(7), int64_t(40000), int64_t(1) << 20 | 3}) {
    const auto x = (torch::randn({n}) * 1.5).to(kGpu);
    const auto upstream = torch::randn({n}).to(kGpu);
    for (const auto& bits : std::vector<std::vector<int>>{{2, 3, 4}, {1, 2, 3, 4, 5, 6, 7, 8}, {3}}) {
      INFO("n = " << n << ", " << bits.size() << " candidates");
      const auto logits = torch::randn({int64_t(bits.size())}).to(kGpu);
      // The released step table on even sizes, the computed one on the rest.
      const auto table = (bits.size() % 2 == 0) ? StepTable::released : StepTable::computed;
      const auto fused = run(composite_activation, x, logits, bits, upstream, table);
      const auto reference = run(composite_activation_reference, x, logits, bits, upstream, table);
      // LibTorch's CUDA division by a scalar multiplies by its reciprocal, so
      // an input within an ulp of a rounding boundary may land one level
      // apart; the kernels divide, as the CPU kernels do (next test).
      const auto mismatch = (fused.out - reference.out).abs() > 1e-6;
      CHECK(mismatch.sum().item<int64_t>() <= n / 100000 + 1);
      CHECK((fused.out - reference.out).abs().max().item<double>() <= 1.0);
      CHECK(close(fused.grad_input, reference.grad_input, 1e-6));
      // Float sums of n terms of both signs: compare at the scale of sum |terms|.
      const double scale = (upstream.abs() * x.abs().clamp_max(4.0)).sum().item<double>();
      CHECK(((fused.grad_probs - reference.grad_probs).abs() <= 1e-5 * scale).all().item<bool>());
    }
  }
}

TEST_CASE("the CUDA composite weight matches the reference on the GPU in output and gradients", "[quant][cuda]") {
  if (const char* why = cuda_missing()) EDMIPS_SKIP(why);
  torch::manual_seed(22);
  for (const auto& shape : std::vector<std::vector<int64_t>>{{32, 16, 3, 3}, {512, 512, 3, 3}, {10, 7}}) {
    const auto w = (torch::randn(shape) * 0.05).to(kGpu);
    const auto upstream = torch::randn(shape).to(kGpu);
    for (const auto& bits : std::vector<std::vector<int>>{{1, 2, 3, 4}, {2, 4, 8}, {2}}) {
      const auto logits = torch::randn({int64_t(bits.size())}).to(kGpu);
      // The released step table on even sizes, the computed one on the rest.
      const auto table = (bits.size() % 2 == 0) ? StepTable::released : StepTable::computed;
      const auto fused = run(composite_weight, w, logits, bits, upstream, table);
      const auto reference = run(composite_weight_reference, w, logits, bits, upstream, table);
      CHECK(close(fused.out, reference.out, 1e-6));
      CHECK(close(fused.grad_input, reference.grad_input, 1e-6));
      const double scale = (upstream.abs() * w.abs()).sum().item<double>() + 1e-3;
      CHECK(((fused.grad_probs - reference.grad_probs).abs() <= 1e-5 * scale).all().item<bool>());
    }
  }
}

TEST_CASE("the CUDA kernels agree with the CPU kernels and repeat bitwise", "[quant][cuda]") {
  if (const char* why = cuda_missing()) EDMIPS_SKIP(why);
  torch::manual_seed(23);
  const auto x = torch::randn({8, 16, 33, 31}) * 1.5;
  const auto upstream = torch::randn({8, 16, 33, 31});
  const auto logits = torch::randn({3});
  const auto cpu = run(composite_activation, x, logits, {2, 3, 4}, upstream);
  const auto gpu = run(composite_activation, x.to(kGpu), logits.to(kGpu), {2, 3, 4}, upstream.to(kGpu));
  const auto again = run(composite_activation, x.to(kGpu), logits.to(kGpu), {2, 3, 4}, upstream.to(kGpu));
  CHECK(torch::equal(gpu.out.cpu(), cpu.out));  // the same float operations, no FMA contraction
  CHECK(close(gpu.grad_input.cpu(), cpu.grad_input, 1e-6));
  CHECK(close(gpu.grad_probs.cpu(), cpu.grad_probs, 1e-4));
  CHECK(torch::equal(gpu.out, again.out));
  CHECK(torch::equal(gpu.grad_input, again.grad_input));
  CHECK(torch::equal(gpu.grad_probs, again.grad_probs));
  const auto w = torch::randn({64, 32, 3, 3}) * 0.05;
  const auto wl = torch::randn({4});
  const auto wg = torch::randn({64, 32, 3, 3});
  const auto first = run(composite_weight, w.to(kGpu), wl.to(kGpu), {1, 2, 3, 4}, wg.to(kGpu));
  const auto second = run(composite_weight, w.to(kGpu), wl.to(kGpu), {1, 2, 3, 4}, wg.to(kGpu));
  CHECK(torch::equal(first.grad_probs, second.grad_probs));
  CHECK(close(first.out.cpu(), run(composite_weight, w, wl, {1, 2, 3, 4}, wg).out, 1e-5));
}

#ifdef EDMIPS_WITH_CUDA
TEST_CASE("a search network's training step on the GPU never waits for the host inside a layer", "[quant][cuda]") {
  if (const char* why = cuda_missing()) EDMIPS_SKIP(why);
  NetworkPrecision precision;
  precision.mode = PrecisionMode::search;
  precision.weight_candidates = {1, 2, 3, 4};
  precision.activation_candidates = {2, 3, 4};
  auto net = make_network("resnet20", {3, 32, 32, 10}, precision);
  net->to(kGpu);
  const auto x = torch::randn({16, 3, 32, 32}).to(kGpu);
  const auto y = torch::randint(10, {16}, torch::kLong).to(kGpu);
  auto step = [&] {
    net->zero_grad();
    auto loss = torch::nn::functional::cross_entropy(net->forward(x), y) +
                1e-3 * net->complexity_loss(ComplexityNormaliser::first_layer);
    loss.backward();
  };
  step();  // warm-up: cuDNN picks its algorithms
  torch::cuda::synchronize();
  // Any host synchronisation (.item(), a blocking copy) now throws.
  c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
  bool ok = true;
  try {
    step();
  } catch (const std::exception& e) {
    ok = false;
    INFO(e.what());
    CHECK(ok);
  }
  c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
  CHECK(ok);
  for (const auto& a : net->arch_parameters()) CHECK(a.grad().defined());
}
#endif

TEST_CASE("a search trial runs on the GPU and derives a decided allocation", "[trial][cuda]") {
  if (const char* why = cuda_missing()) EDMIPS_SKIP(why);
  edmips::testing::TempDir data, out;
  edmips::testing::write_mnist(data, 256, 64);
  const nlohmann::json j = {{"seed", 3},
                            {"device", "cuda"},
                            {"dataset", {{"name", "mnist"}, {"path", data.path().string()}}},
                            {"model", {{"name", "simple-cnn"}}},
                            {"search", {{"epochs", 4}, {"batch_size", 32}, {"complexity_penalty", 1e-3}}},
                            {"train", {{"epochs", 1}, {"batch_size", 32}}}};
  const auto result = TrialRunner().run(parse_trial_config(j, "gpu"), out.path(), {});
  CHECK(result.at("device").get<std::string>().rfind("cuda", 0) == 0);
  CHECK(result.at("search").at("decision").at("searched_layers") == 3);
  CHECK(result.at("allocation").at("layers").size() == 3);
}
