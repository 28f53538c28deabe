#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "quant/quantizers.h"
#include "quant/step_sizes.h"

using namespace edmips;

TEST_CASE("HWGQ maps inputs onto 2^b levels starting at zero and acts as the ReLU", "[quant]") {
  torch::manual_seed(0);
  const auto x = torch::randn({10000}) * 2;
  for (int bits = 1; bits <= 4; ++bits) {
    const auto y = quantize_activation(x, bits);
    const double step = activation_step(bits);
    const auto levels = std::get<0>(torch::_unique(y));
    CHECK(levels.numel() == (1 << bits));
    CHECK(y.min().item<double>() == Approx(0.0));
    CHECK(y.max().item<double>() == Approx(step * ((1 << bits) - 1)));
    // Every output is a multiple of the step.
    CHECK(((y / step) - (y / step).round()).abs().max().item<double>() < 1e-4);
    // Negative inputs are zeroed, like a ReLU.
    CHECK(y.masked_select(x < 0).abs().max().item<double>() == 0.0);
  }
}

TEST_CASE("HWGQ passes the gradient inside the clamp range only", "[quant]") {
  const int bits = 2;
  const double clip = activation_step(bits) * 3;
  auto x = torch::tensor({-1.0f, 0.3f, 1.0f, float(clip) + 0.5f}, torch::requires_grad());
  quantize_activation(x, bits).sum().backward();
  const auto g = x.grad();
  CHECK(g[0].item<float>() == 0.0f);
  CHECK(g[1].item<float>() == 1.0f);
  CHECK(g[2].item<float>() == 1.0f);
  CHECK(g[3].item<float>() == 0.0f);
}

TEST_CASE("the weight quantizer gives 2^b symmetric levels scaled by the weights' std", "[quant]") {
  torch::manual_seed(1);
  const auto w = torch::randn({64, 32, 3, 3}) * 0.05;
  const double s = w.std().item<double>();
  for (int bits = 1; bits <= 4; ++bits) {
    const auto q = quantize_weight(w, bits);
    const auto levels = std::get<0>(torch::_unique(q));
    CHECK(levels.numel() == (1 << bits));
    const double step = weight_step(bits) * s;
    CHECK(q.max().item<double>() == Approx(step * ((1 << bits) / 2 - 0.5)).epsilon(1e-4));
    CHECK(q.min().item<double>() == Approx(-step * ((1 << bits) / 2 - 0.5)).epsilon(1e-4));
  }
}

TEST_CASE("the weight quantizer's gradient is the identity (straight-through)", "[quant]") {
  auto w = torch::randn({100}, torch::requires_grad());
  const auto upstream = torch::randn({100});
  (quantize_weight(w, 2) * upstream).sum().backward();
  CHECK(torch::allclose(w.grad(), upstream));
}

TEST_CASE("the composite activation equals the probability-weighted sum of quantizers", "[quant]") {
  const auto x = torch::randn({1000});
  const auto p = torch::softmax(torch::tensor({0.3, -0.1, 0.5}), 0).to(torch::kFloat);
  const std::vector<int> bits = {2, 3, 4};
  const auto expected = quantize_activation(x, 2) * p[0] + quantize_activation(x, 3) * p[1] +
                        quantize_activation(x, 4) * p[2];
  CHECK(torch::allclose(composite_activation(x, p, bits), expected, 1e-6, 1e-6));
}
