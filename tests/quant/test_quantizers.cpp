#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "quant/quantizers.h"
#include "quant/step_sizes.h"

using namespace edmips;

TEST_CASE("HWGQ maps inputs onto 2^b levels starting at zero and acts as the ReLU", "[quant]") {
  torch::manual_seed(0);
  const auto x = torch::randn({10000}) * 2;
  for (const auto table : {StepTable::computed, StepTable::released})
  for (int bits = 1; bits <= 4; ++bits) {
    INFO("bits " << bits << ", table " << to_string(table));
    const auto y = quantize_activation(x, bits, table);
    const double step = activation_step(bits, table);
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
  const double clip = activation_step(bits, StepTable::computed) * 3;
  auto x = torch::tensor({-1.0f, 0.3f, 1.0f, float(clip) + 0.5f}, torch::requires_grad());
  quantize_activation(x, bits, StepTable::computed).sum().backward();
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
  for (const auto table : {StepTable::computed, StepTable::released})
  for (int bits = 1; bits <= 4; ++bits) {
    INFO("bits " << bits << ", table " << to_string(table));
    const auto q = quantize_weight(w, bits, table);
    const auto levels = std::get<0>(torch::_unique(q));
    CHECK(levels.numel() == (1 << bits));
    const double step = weight_step(bits, table) * s;
    CHECK(q.max().item<double>() == Approx(step * ((1 << bits) / 2 - 0.5)).epsilon(1e-4));
    CHECK(q.min().item<double>() == Approx(-step * ((1 << bits) / 2 - 0.5)).epsilon(1e-4));
  }
}

TEST_CASE("the weight quantizer's gradient is the identity (straight-through)", "[quant]") {
  auto w = torch::randn({100}, torch::requires_grad());
  const auto upstream = torch::randn({100});
  (quantize_weight(w, 2, StepTable::computed) * upstream).sum().backward();
  CHECK(torch::allclose(w.grad(), upstream));
}

TEST_CASE("the composite activation equals the probability-weighted sum of quantizers", "[quant]") {
  const auto x = torch::randn({1000});
  const auto p = torch::softmax(torch::tensor({0.3, -0.1, 0.5}), 0).to(torch::kFloat);
  const std::vector<int> bits = {2, 3, 4};
  const auto table = StepTable::computed;
  const auto expected = quantize_activation(x, 2, table) * p[0] + quantize_activation(x, 3, table) * p[1] +
                        quantize_activation(x, 4, table) * p[2];
  CHECK(torch::allclose(composite_activation(x, p, bits, table), expected, 1e-6, 1e-6));
}

TEST_CASE("the released step table moves every level by the ratio of its constant to the computed one", "[quant]") {
  // 4-bit weights: 0.336 released against 0.3352 computed; the two quantizers
  // must differ, so a table that is plumbed nowhere cannot pass.
  torch::manual_seed(2);
  const auto w = torch::randn({4096}) * 0.05;
  const auto computed = quantize_weight(w, 4, StepTable::computed);
  const auto released = quantize_weight(w, 4, StepTable::released);
  const double ratio = 0.336 / weight_step(4, StepTable::computed);
  CHECK(released.max().item<double>() == Approx(computed.max().item<double>() * ratio).epsilon(1e-5));
  const auto x = torch::rand({4096}) * 3;
  CHECK(quantize_activation(x, 4, StepTable::released).max().item<double>() == Approx(0.185 * 15).epsilon(1e-6));
  CHECK(quantize_activation(x, 4, StepTable::computed).max().item<double>() ==
        Approx(activation_step(4, StepTable::computed) * 15).epsilon(1e-6));
}
