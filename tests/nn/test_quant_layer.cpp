#include <catch2/catch.hpp>
#include <set>
#include <torch/torch.h>

#include "core/error.h"
#include "models/network.h"
#include "nn/quant_layer.h"
#include "quant/quantizers.h"

using namespace edmips;

namespace {

LayerPrecision search_precision() {
  LayerPrecision p;
  p.mode = PrecisionMode::search;
  p.weight_bits = {1, 2, 3, 4};
  p.activation_bits = {2, 3, 4};
  return p;
}

/// Counts autograd nodes whose name contains `what` in the graph behind `output`.
int count_graph_nodes(const torch::Tensor& output, const std::string& what) {
  std::set<torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> stack = {output.grad_fn().get()};
  int count = 0;
  while (!stack.empty()) {
    auto* node = stack.back();
    stack.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (node->name().find(what) != std::string::npos) ++count;
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
  return count;
}

}  // namespace

TEST_CASE("the composite search convolution equals the mix of all |W|x|A| quantized convolutions",
          "[nn][search]") {
  torch::manual_seed(3);
  QuantLayer layer("conv", LayerShape::conv(8, 16, 3, 2, 1), search_precision());
  {
    torch::NoGradGuard no_grad;
    layer->alpha_weight.copy_(torch::tensor({0.4, -0.2, 0.1, 0.7}));
    layer->alpha_activation.copy_(torch::tensor({-0.3, 0.5, 0.2}));
  }
  const auto x = torch::randn({4, 8, 12, 12});
  const auto composite = layer->forward(x);
  const auto naive = layer->forward_naive(x);
  REQUIRE(composite.sizes() == naive.sizes());
  CHECK((composite - naive).abs().max().item<double>() <= 1e-4);
}

TEST_CASE("a search layer runs exactly one convolution per forward pass", "[nn][search]") {
  QuantLayer layer("conv", LayerShape::conv(4, 4, 3, 1, 1), search_precision());
  const auto x = torch::randn({2, 4, 8, 8});
  CHECK(count_graph_nodes(layer->forward(x), "Convolution") == 1);
  // The naive form, for contrast, runs one per (weight, activation) pair.
  CHECK(count_graph_nodes(layer->forward_naive(x), "Convolution") == 12);
}

TEST_CASE("gradients of a search layer reach both architecture vectors and the shared weight",
          "[nn][search]") {
  QuantLayer layer("conv", LayerShape::conv(4, 6, 3, 1, 1), search_precision());
  CHECK(layer->parameters().size() == 3);  // one weight tensor shared by every candidate + two alphas
  const auto x = torch::randn({2, 4, 8, 8});
  layer->forward(x).pow(2).sum().backward();
  REQUIRE(layer->alpha_weight.grad().defined());
  REQUIRE(layer->alpha_activation.grad().defined());
  REQUIRE(layer->weight.grad().defined());
  CHECK(layer->alpha_weight.grad().abs().sum().item<double>() > 0);
  CHECK(layer->alpha_activation.grad().abs().sum().item<double>() > 0);
  CHECK(layer->weight.grad().abs().sum().item<double>() > 0);
}

TEST_CASE("architecture vectors start equal at 0.01, so all candidates are equally likely", "[nn][search]") {
  QuantLayer layer("conv", LayerShape::conv(4, 6, 3), search_precision());
  CHECK(torch::allclose(layer->alpha_weight, torch::full({4}, 0.01)));
  CHECK(torch::allclose(layer->weight_probabilities(), torch::full({4}, 0.25)));
  CHECK(layer->expected_weight_bits().item<double>() == Approx(2.5));
  CHECK(layer->expected_activation_bits().item<double>() == Approx(3.0));
}

TEST_CASE("MACs come from the real input shape, stride and groups", "[nn][complexity]") {
  LayerPrecision fp;
  QuantLayer conv("conv", LayerShape::conv(8, 16, 3, 2, 1, 2), fp);
  conv->forward(torch::zeros({1, 8, 20, 20}));
  // out 10x10, 16 channels, (8/2)*3*3 per output.
  CHECK(conv->macs() == 10 * 10 * 16 * 4 * 9);
  QuantLayer linear("fc", LayerShape::linear(64, 10), fp);
  linear->forward(torch::zeros({3, 64}));
  CHECK(linear->macs() == 640);
}

TEST_CASE("the complexity loss is differentiable in both architecture vectors and honours the normaliser",
          "[nn][complexity]") {
  NetworkPrecision p;
  p.mode = PrecisionMode::search;
  p.weight_candidates = {1, 2, 3, 4};
  p.activation_candidates = {2, 3, 4};
  auto net = make_network("simple-cnn", ModelInput{1, 28, 28, 10}, p);
  const auto reports = net->layer_reports();
  double first = 0, total = 0, expected_bitops = 0;
  for (const auto& r : reports) {
    if (!r.quantized) continue;
    if (first == 0) first = double(r.macs);
    total += double(r.macs);
    expected_bitops += double(r.macs) * 2.5 * 3.0;
  }
  const auto by_first = net->complexity_loss(ComplexityNormaliser::first_layer);
  CHECK(by_first.item<double>() == Approx(expected_bitops / first));
  // With the "total" normaliser the complexity is the expected normalised bits squared.
  CHECK(net->complexity_loss(ComplexityNormaliser::total).item<double>() == Approx(2.5 * 3.0));
  by_first.backward();
  for (const auto& alpha : net->arch_parameters()) {
    REQUIRE(alpha.grad().defined());
    CHECK(alpha.grad().abs().sum().item<double>() > 0);
  }
}

TEST_CASE("fixed layers report BitOps, normalised bits and weight memory", "[nn][complexity]") {
  NetworkPrecision p;
  p.mode = PrecisionMode::fixed;
  p.fixed_bits = {{"", 2, 2}};
  auto net = make_network("simple-cnn", ModelInput{1, 28, 28, 10}, p);
  const auto reports = net->layer_reports();
  const auto cost = network_cost(reports);
  CHECK(cost.normalised_bits() == Approx(2.0));
  CHECK(cost.bitops == Approx(double(cost.quantized_macs) * 4));
  CHECK_FALSE(reports.front().quantized);  // first conv stays full precision
  CHECK_FALSE(reports.back().quantized);   // so does the classifier
  double memory = 0;
  for (const auto& r : reports) memory += double(r.weight_count) * (r.quantized ? 2 : 32);
  CHECK(cost.weight_memory_bits == Approx(memory));
}

TEST_CASE("a derived allocation takes the most probable candidate of each layer", "[nn][derive]") {
  NetworkPrecision p;
  p.mode = PrecisionMode::search;
  p.weight_candidates = {1, 2, 3, 4};
  p.activation_candidates = {2, 3, 4};
  auto net = make_network("simple-cnn", ModelInput{1, 28, 28, 10}, p);
  const auto& layer = net->layers()[1];
  {
    torch::NoGradGuard no_grad;
    layer->alpha_weight.copy_(torch::tensor({0.0, 0.0, 1.0, 0.0}));
    layer->alpha_activation.copy_(torch::tensor({2.0, 0.0, 0.0}));
  }
  const auto allocation = derive_allocation("simple-cnn", net->layer_reports());
  REQUIRE(allocation.layers.size() == 3);
  CHECK(allocation.layers[0].layer == "conv2");
  CHECK(allocation.layers[0].weight_bits == 3);
  CHECK(allocation.layers[0].activation_bits == 2);
}

TEST_CASE("quantizing the first and last layers is configurable", "[nn][models]") {
  NetworkPrecision p;
  p.mode = PrecisionMode::fixed;
  p.fixed_bits = {{"", 4, 4}};
  p.full_precision_first = false;
  p.full_precision_last = false;
  auto net = make_network("simple-cnn", ModelInput{1, 28, 28, 10}, p);
  const auto reports = net->layer_reports();
  CHECK(reports.front().quantized);
  CHECK(reports.front().activation_bits == 8);  // the image counts as 8-bit data
  CHECK(reports.back().quantized);
  CHECK(reports.back().weight_bits == 4);
}

TEST_CASE("an allocation that does not fit the model is rejected", "[nn][models]") {
  NetworkPrecision p;
  p.mode = PrecisionMode::fixed;
  p.fixed_bits = {{"conv2", 2, 2}, {"conv3", 2, 2}};
  CHECK_THROWS_WITH(make_network("simple-cnn", ModelInput{1, 28, 28, 10}, p),
                    Catch::Contains("/layers: 2 layers, but model simple-cnn has 3"));
  p.fixed_bits = {{"conv2", 2, 2}, {"convX", 2, 2}, {"conv4", 2, 2}};
  CHECK_THROWS_AS(make_network("simple-cnn", ModelInput{1, 28, 28, 10}, p), ConfigError);
  CHECK_THROWS_WITH(make_network("simple-cnn", ModelInput{1, 28, 28, 10}, p),
                    Catch::Contains("/layers/1") && Catch::Contains("convX") && Catch::Contains("conv3"));
  // One named entry is one layer's bits, not a uniform precision for all.
  p.fixed_bits = {{"convX", 2, 2}};
  CHECK_THROWS_AS(make_network("simple-cnn", ModelInput{1, 28, 28, 10}, p), ConfigError);
  p.fixed_bits = {{"", 2, 2}};  // unnamed: uniform
  CHECK_NOTHROW(make_network("simple-cnn", ModelInput{1, 28, 28, 10}, p));
}

TEST_CASE("a layer is decided by a clear margin and a choice unchanged over the final quarter of the search",
          "[nn][decision]") {
  LayerReport l;
  l.name = "conv";
  l.quantized = true;
  l.weight_candidates = {1, 2};
  l.activation_candidates = {2, 4};
  l.weight_probabilities = {0.9, 0.1};
  l.activation_probabilities = {0.2, 0.8};
  l.weight_probabilities_t1 = {0.55, 0.45};  // an annealed search: small logit gaps, sharp probabilities
  l.activation_probabilities_t1 = {0.48, 0.52};
  l.stable_since = 70;
  CHECK(l.decided(100));  // unchanged over steps 70..100, more than the final 25
  CHECK(l.margin_at_temperature_1() == Approx(0.04));
  l.stable_since = 75;
  CHECK(l.decided(100));  // the boundary: the last change at step 75
  l.stable_since = 76;
  CHECK_FALSE(l.decided(100));
  CHECK(l.clear_margin());
  l.stable_since = -1;  // untracked (an engine before the tracker): the margin alone
  CHECK(l.decided(100));
  l.stable_since = 0;
  l.weight_probabilities = {0.7, 0.3};  // margin 0.4
  CHECK_FALSE(l.decided(100));
  const auto d = search_decision({l}, 100);
  CHECK(d.decided_layers == 0);
  CHECK(d.smallest_margin_t1 == Approx(0.04));
  CHECK(d.unstable_layers.empty());
}

TEST_CASE("a network built with the released step table quantizes every layer with the released constants",
          "[nn][models]") {
  torch::manual_seed(4);
  NetworkPrecision p;
  p.mode = PrecisionMode::fixed;
  p.fixed_bits = {{"", 4, 4}};
  p.step_table = StepTable::released;
  auto net = make_network("simple-cnn", ModelInput{1, 28, 28, 10}, p);
  int quantized = 0;
  for (const auto& l : net->layers()) {
    if (!l->quantized()) continue;
    ++quantized;
    CHECK(l->precision().step_table == StepTable::released);
  }
  CHECK(quantized > 0);
  // One layer's forward pass is HWGQ and the weight quantizer at the table's steps.
  LayerPrecision fixed;
  fixed.mode = PrecisionMode::fixed;
  fixed.weight_bits = {4};
  fixed.activation_bits = {4};
  fixed.step_table = StepTable::released;
  QuantLayer layer("conv", LayerShape::conv(4, 8, 3, 1, 1), fixed);
  const auto x = torch::randn({2, 4, 8, 8}) * 2;
  torch::NoGradGuard no_grad;
  const auto expected = torch::conv2d(quantize_activation(x, 4, StepTable::released),
                                      quantize_weight(layer->weight, 4, StepTable::released), layer->bias, 1, 1);
  const auto computed = torch::conv2d(quantize_activation(x, 4, StepTable::computed),
                                      quantize_weight(layer->weight, 4, StepTable::computed), layer->bias, 1, 1);
  CHECK((layer->forward(x) - expected).abs().max().item<double>() <= 1e-5);
  CHECK((layer->forward(x) - computed).abs().max().item<double>() > 1e-3);
}
