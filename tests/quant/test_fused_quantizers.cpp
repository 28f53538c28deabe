#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <optional>

#include "quant/fused_test_support.h"
#include "quant/quantizers.h"

using namespace edmips;

namespace {

/// |a - b| <= 1e-5 * max(1, |b|), elementwise.
void check_close(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  INFO(what);
  REQUIRE(a.sizes() == b.sizes());
  const auto tolerance = 1e-5 * torch::clamp_min(b.abs(), 1.0);
  CHECK(((a - b).abs() <= tolerance).all().item<bool>());
}

/// The architecture gradient is a float sum over every element: held to the
/// reference in double precision, within float rounding of the sum of the
/// terms' magnitudes (`scale`), as in the threads test below.
void check_probability_gradient(const torch::Tensor& fused, const torch::Tensor& reference, double scale) {
  INFO("architecture gradient: fused " << fused << " reference " << reference);
  CHECK(((fused.to(torch::kDouble) - reference).abs() <= 1e-6 * scale).all().item<bool>());
}

using Run = edmips::testing::QuantizerRun;

/// One forward and backward pass of a quantizer (fused_test_support.h).
template <typename F>
Run run(F quantizer, const torch::Tensor& input, const torch::Tensor& logits, const std::vector<int>& bits,
        const torch::Tensor& upstream, StepTable table = StepTable::computed) {
  return edmips::testing::run_quantizer(quantizer, input, logits, bits, upstream, table);
}

}  // namespace

const std::vector<StepTable> kTables = {StepTable::computed, StepTable::released};

TEST_CASE("the fused composite activation matches the reference in output and gradients", "[quant][fused]") {
  torch::manual_seed(11);
  // Scaled so that every candidate's clamp range and the negative side are hit.
  const auto x = torch::randn({8, 16, 12, 12}) * 1.5;
  const auto upstream = torch::randn({8, 16, 12, 12});
  for (const auto table : kTables)
  for (const auto& bits : std::vector<std::vector<int>>{{2, 3, 4}, {1, 2, 3, 4, 5, 6, 7, 8}, {3}}) {
    INFO("table " << to_string(table));
    const auto logits = torch::randn({int64_t(bits.size())});
    const auto fused = run(composite_activation, x, logits, bits, upstream, table);
    const auto reference = run(composite_activation_reference, x, logits, bits, upstream, table);
    check_close(fused.out, reference.out, "output");
    check_close(fused.grad_input, reference.grad_input, "input gradient");
    const auto exact = run(composite_activation_reference, x.to(torch::kDouble), logits.to(torch::kDouble), bits,
                           upstream.to(torch::kDouble), table);
    check_probability_gradient(fused.grad_probs, exact.grad_probs, (upstream.abs() * x.abs()).sum().item<double>());
  }
}

TEST_CASE("the fused composite weight matches the reference in output and gradients", "[quant][fused]") {
  torch::manual_seed(12);
  const auto w = torch::randn({32, 16, 3, 3}) * 0.05;
  const auto upstream = torch::randn({32, 16, 3, 3});
  for (const auto table : kTables)
  for (const auto& bits : std::vector<std::vector<int>>{{1, 2, 3, 4}, {2, 4, 8}, {2}}) {
    INFO("table " << to_string(table));
    const auto logits = torch::randn({int64_t(bits.size())});
    const auto fused = run(composite_weight, w, logits, bits, upstream, table);
    const auto reference = run(composite_weight_reference, w, logits, bits, upstream, table);
    check_close(fused.out, reference.out, "output");
    check_close(fused.grad_input, reference.grad_input, "weight gradient");
    const auto exact = run(composite_weight_reference, w.to(torch::kDouble), logits.to(torch::kDouble), bits,
                           upstream.to(torch::kDouble), table);
    // |q(w)| stays within a step of |w| plus the 1-bit level (0.8 std).
    const double scale = (upstream.abs() * (w.abs() + 2 * w.std())).sum().item<double>();
    check_probability_gradient(fused.grad_probs, exact.grad_probs, scale);
  }
}

TEST_CASE("the fused fixed-bit quantizers match the reference", "[quant][fused]") {
  torch::manual_seed(13);
  for (const auto table : kTables)
  for (int bits = 1; bits <= 8; ++bits) {
    INFO("bits = " << bits << ", table " << to_string(table));
    auto x = (torch::randn({4096}) * 2).requires_grad_(true);
    auto x_ref = x.detach().clone().requires_grad_(true);
    const auto g = torch::randn({4096});
    quantize_activation(x, bits, table).backward(g);
    quantize_activation_reference(x_ref, bits, table).backward(g);
    check_close(quantize_activation(x.detach(), bits, table),
                quantize_activation_reference(x_ref.detach(), bits, table), "activation output");
    check_close(x.grad(), x_ref.grad(), "activation gradient");
    const auto w = torch::randn({4096}) * 0.1;
    check_close(quantize_weight(w, bits, table), quantize_weight_reference(w, bits, table), "weight output");
  }
}

TEST_CASE("the fused activation gradients are exact and bitwise identical at 1 to 16 threads",
          "[quant][fused][threads]") {
  // Sizes around the kernels' 32768-element slices, none a multiple of it:
  // OpenMP cuts such ranges into pieces smaller than a slice, which once made
  // two threads add into one partial sum (lost architecture gradients).
  const int previous = torch::get_num_threads();
  torch::manual_seed(14);
  for (const int64_t n : {int64_t(200704), int64_t(98305), int64_t(65537), int64_t(40000)}) {
    const auto x = torch::randn({n}) * 1.5;
    const auto upstream = torch::randn({n});
    const auto logits = torch::randn({3});
    // The reference in double precision; the fused float sums over n terms
    // of both signs may err by about float epsilon times the sum of |terms|.
    const auto reference =
        run(composite_activation_reference, x.to(torch::kDouble), logits.to(torch::kDouble), {2, 3, 4},
            upstream.to(torch::kDouble));
    const double scale = (upstream.abs() * x.abs().clamp_max(4.0)).sum().item<double>();
    std::optional<Run> first;
    for (const int threads : {1, 2, 3, 4, 5, 6, 7, 8, 11, 16}) {
      INFO("n = " << n << ", threads = " << threads);
      torch::set_num_threads(threads);
      for (int repeat = 0; repeat < 2; ++repeat) {
        const auto fused = run(composite_activation, x, logits, {2, 3, 4}, upstream);
        INFO("fused " << fused.grad_probs << " reference " << reference.grad_probs);
        CHECK(((fused.grad_probs.to(torch::kDouble) - reference.grad_probs).abs() <= 1e-6 * scale).all().item<bool>());
        if (!first) {
          first = fused;
          continue;
        }
        CHECK(torch::equal(fused.out, first->out));
        CHECK(torch::equal(fused.grad_input, first->grad_input));
        CHECK(torch::equal(fused.grad_probs, first->grad_probs));
      }
    }
  }
  torch::set_num_threads(previous);
}
