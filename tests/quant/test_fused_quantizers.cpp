#include <catch2/catch.hpp>
#include <torch/torch.h>

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

struct Run {
  torch::Tensor out, grad_input, grad_probs;
};

template <typename F>
Run run(F quantizer, const torch::Tensor& input, const torch::Tensor& logits, const std::vector<int>& bits,
        const torch::Tensor& upstream) {
  auto x = input.clone().requires_grad_(true);
  auto alpha = logits.clone().requires_grad_(true);
  auto out = quantizer(x, torch::softmax(alpha, 0), bits);
  out.backward(upstream);
  return {out.detach(), x.grad(), alpha.grad()};
}

}  // namespace

TEST_CASE("the fused composite activation matches the reference in output and gradients", "[quant][fused]") {
  torch::manual_seed(11);
  // Scaled so that every candidate's clamp range and the negative side are hit.
  const auto x = torch::randn({8, 16, 12, 12}) * 1.5;
  const auto upstream = torch::randn({8, 16, 12, 12});
  for (const auto& bits : std::vector<std::vector<int>>{{2, 3, 4}, {1, 2, 3, 4, 5, 6, 7, 8}, {3}}) {
    const auto logits = torch::randn({int64_t(bits.size())});
    const auto fused = run(composite_activation, x, logits, bits, upstream);
    const auto reference = run(composite_activation_reference, x, logits, bits, upstream);
    check_close(fused.out, reference.out, "output");
    check_close(fused.grad_input, reference.grad_input, "input gradient");
    check_close(fused.grad_probs, reference.grad_probs, "architecture gradient");
  }
}

TEST_CASE("the fused composite weight matches the reference in output and gradients", "[quant][fused]") {
  torch::manual_seed(12);
  const auto w = torch::randn({32, 16, 3, 3}) * 0.05;
  const auto upstream = torch::randn({32, 16, 3, 3});
  for (const auto& bits : std::vector<std::vector<int>>{{1, 2, 3, 4}, {2, 4, 8}, {2}}) {
    const auto logits = torch::randn({int64_t(bits.size())});
    const auto fused = run(composite_weight, w, logits, bits, upstream);
    const auto reference = run(composite_weight_reference, w, logits, bits, upstream);
    check_close(fused.out, reference.out, "output");
    check_close(fused.grad_input, reference.grad_input, "weight gradient");
    check_close(fused.grad_probs, reference.grad_probs, "architecture gradient");
  }
}

TEST_CASE("the fused fixed-bit quantizers match the reference", "[quant][fused]") {
  torch::manual_seed(13);
  for (int bits = 1; bits <= 8; ++bits) {
    INFO("bits = " << bits);
    auto x = (torch::randn({4096}) * 2).requires_grad_(true);
    auto x_ref = x.detach().clone().requires_grad_(true);
    const auto g = torch::randn({4096});
    quantize_activation(x, bits).backward(g);
    quantize_activation_reference(x_ref, bits).backward(g);
    check_close(quantize_activation(x.detach(), bits), quantize_activation_reference(x_ref.detach(), bits),
                "activation output");
    check_close(x.grad(), x_ref.grad(), "activation gradient");
    const auto w = torch::randn({4096}) * 0.1;
    check_close(quantize_weight(w, bits), quantize_weight_reference(w, bits), "weight output");
  }
}

TEST_CASE("the fused kernels give the same result with one thread and with two", "[quant][fused]") {
  const auto x = torch::randn({4, 32, 64, 64});
  const auto probs = torch::softmax(torch::randn({3}), 0);
  torch::set_num_threads(1);
  const auto one = composite_activation(x, probs, {2, 3, 4});
  torch::set_num_threads(2);
  const auto two = composite_activation(x, probs, {2, 3, 4});
  CHECK(torch::equal(one, two));
}
