#include <torch/torch.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "models/network.h"
#include "nn/cost_model.h"

using namespace edmips;

namespace {

/// simple-cnn searching w{1,2,3} a{2,4} with random architecture logits: three search layers.
Network searching_network() {
  NetworkPrecision p;
  p.mode = PrecisionMode::search;
  p.weight_candidates = {1, 2, 3};
  p.activation_candidates = {2, 4};
  torch::manual_seed(5);
  auto net = make_network("simple-cnn", ModelInput{1, 28, 28, 10}, p);
  net->to(torch::kDouble);  // the expectation and its brute force in double precision
  torch::NoGradGuard no_grad;
  for (auto& alpha : net->arch_parameters()) alpha.copy_(torch::randn(alpha.sizes()));
  return net;
}

std::vector<QuantLayer> search_layers(const Network& net) {
  std::vector<QuantLayer> out;
  for (const auto& l : net->layers()) {
    if (l->searching()) out.push_back(l);
  }
  return out;
}

/// sum over every allocation of its probability times its summed cost, as a
/// differentiable tensor: the brute force the exact expectation must equal.
torch::Tensor brute_force(const Network& net, const CostModel& model) {
  const auto layers = search_layers(net);
  std::vector<torch::Tensor> pw, pa;
  for (const auto& l : layers) {
    pw.push_back(l->weight_probabilities());
    pa.push_back(l->activation_probabilities());
  }
  const auto& wb = layers[0]->precision().weight_bits;
  const auto& ab = layers[0]->precision().activation_bits;
  const int64_t per_layer = int64_t(wb.size() * ab.size());
  int64_t count = 1;
  for (size_t l = 0; l < layers.size(); ++l) count *= per_layer;
  torch::Tensor total = torch::zeros({}, torch::kDouble);
  for (int64_t code = 0; code < count; ++code) {
    int64_t rest = code;
    torch::Tensor probability = torch::ones({}, torch::kDouble);
    double cost = 0;
    for (size_t l = 0; l < layers.size(); ++l) {
      const int64_t choice = rest % per_layer;
      rest /= per_layer;
      const int64_t i = choice / int64_t(ab.size()), j = choice % int64_t(ab.size());
      probability = probability * pw[l][i].to(torch::kDouble) * pa[l][j].to(torch::kDouble);
      cost += model.layer_cost(layers[l]->cost_input(), wb[size_t(i)], ab[size_t(j)]);
    }
    total = total + probability * cost;
  }
  return total;
}

std::vector<torch::Tensor> gradients(const Network& net, const torch::Tensor& value) {
  const auto params = net->arch_parameters();
  return torch::autograd::grad({value}, params);
}

std::string write_file(const std::string& name, const nlohmann::json& j) {
  const auto path =
      std::filesystem::temp_directory_path() / ("edmips-cost-" + std::to_string(::getpid()) + name);
  std::ofstream(path) << j.dump();
  return path.string();
}

/// A table of the network's search layers at `scale` x BitOps, one layer `dearer` times more.
nlohmann::json bitops_table(const Network& net, double scale, const std::string& dearer = "",
                            double factor = 1) {
  nlohmann::json layers = nlohmann::json::object();
  for (const auto& l : search_layers(net)) {
    const auto in = l->cost_input();
    for (int w : l->precision().weight_bits) {
      for (int a : l->precision().activation_bits) {
        layers[in.name]["w" + std::to_string(w) + "a" + std::to_string(a)] =
            scale * double(in.macs) * w * a * (in.name == dearer ? factor : 1.0);
      }
    }
  }
  return {{"unit", "microseconds"}, {"layers", layers}};
}

}  // namespace

TEST_CASE(
    "the expected cost and its gradient equal the brute-force sum over all allocations, for every measure",
    "[nn][cost]") {
  auto net = searching_network();
  REQUIRE(search_layers(net).size() == 3);  // 6^3 = 216 allocations
  std::vector<std::pair<std::string, CostModel>> models;
  CostModel bitops;
  models.push_back({"bitops", bitops});
  CostModel rounded;  // 1 and 3 bits run as 2 and 4: not a product of the widths any more
  rounded.supported = {{2, 4}, {4}};
  models.push_back({"bitops, supported {2,4} x {4}", rounded});
  CostModel weights;
  weights.measure = CostBasis::weight_memory;
  models.push_back({"weight_memory", weights});
  CostModel activations;
  activations.measure = CostBasis::activation_memory;
  models.push_back({"activation_memory", activations});
  CostModel table;
  table.measure = CostBasis::table;
  auto t = bitops_table(net, 1e-6, "conv3", 7);
  t["layers"]["conv2"]["w1a4"] = 123.0;  // not proportional to anything
  table.table = read_cost_table(write_file("brute.json", t));
  models.push_back({"table", table});
  for (const auto& [name, model] : models) {
    INFO(name);
    double normal = 0;
    const auto matrices = net->cost_matrices(model, ComplexityNormaliser::first_layer, &normal);
    const auto exact = net->expected_cost(matrices) * normal;
    const auto brute = brute_force(net, model);
    const double value = brute.item<double>();
    CHECK(exact.item<double>() == Approx(value).epsilon(1e-12));
    const auto g_exact = gradients(net, exact);
    const auto g_brute = gradients(net, brute);
    double largest = 0;
    for (size_t k = 0; k < g_exact.size(); ++k) {
      CHECK((g_exact[k] - g_brute[k]).abs().max().item<double>() <= 1e-12 * value);
      largest = std::max(largest, g_brute[k].abs().max().item<double>());
    }
    CHECK(largest > 1e-3 * value);  // the gradient is not trivially zero: the check can fail
  }
}

TEST_CASE(
    "BitOps through the cost matrices is today's complexity loss, and so is a table proportional to BitOps",
    "[nn][cost]") {
  auto net = searching_network();
  for (auto normaliser : {ComplexityNormaliser::first_layer, ComplexityNormaliser::total}) {
    const double today = net->complexity_loss(normaliser).item<double>();
    CHECK(net->expected_cost(net->cost_matrices(CostModel{}, normaliser)).item<double>() == Approx(today));
    CostModel table;
    table.measure = CostBasis::table;
    table.table = read_cost_table(write_file("proportional.json", bitops_table(net, 3e-5)));
    CHECK(net->expected_cost(net->cost_matrices(table, normaliser)).item<double>() == Approx(today));
  }
}

TEST_CASE("BitOps through the cost matrices has today's gradient", "[nn][cost]") {
  auto net = searching_network();
  const auto today = gradients(net, net->complexity_loss(ComplexityNormaliser::first_layer));
  const auto matrices =
      gradients(net, net->expected_cost(net->cost_matrices(CostModel{}, ComplexityNormaliser::first_layer)));
  for (size_t k = 0; k < today.size(); ++k) {
    CHECK((today[k] - matrices[k]).abs().max().item<double>() <=
          1e-12 * (today[k].abs().max().item<double>() + 1));
  }
}

TEST_CASE("a cost table finds a layer by name, then by shape, and names the layer and pair it lacks",
          "[nn][cost]") {
  auto net = searching_network();
  const auto layers = search_layers(net);
  auto t = bitops_table(net, 1.0);
  // conv4 only by its shape key.
  t["shapes"][layers[2]->cost_input().shape_key] = t["layers"]["conv4"];
  t["layers"].erase("conv4");
  CostModel model;
  model.measure = CostBasis::table;
  model.table = read_cost_table(write_file("shapes.json", t));
  CHECK(model.layer_cost(layers[2]->cost_input(), 2, 4) == Approx(double(layers[2]->cost_input().macs) * 8));
  CHECK(model.unit() == "microseconds");
  t["layers"]["conv2"].erase("w3a4");
  model.table = read_cost_table(write_file("missing.json", t));
  CHECK_THROWS_WITH(net->cost_matrices(model, ComplexityNormaliser::first_layer),
                    Catch::Contains("conv2") && Catch::Contains("w3a4"));
  try {
    net->cost_matrices(model, ComplexityNormaliser::first_layer);
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::invalid_input);  // exit 2, never a guess
  }
  t["layers"]["conv2"]["w3a4"] = 1.0;
  t["layers"].erase("conv3");
  model.table = read_cost_table(write_file("nolayer.json", t));
  CHECK_THROWS_WITH(net->cost_matrices(model, ComplexityNormaliser::first_layer),
                    Catch::Contains("\"conv3\"") && Catch::Contains("/shapes/conv"));
  CHECK_THROWS_WITH(
      read_cost_table(write_file("bad.json", {{"unit", "us"}, {"layers", {{"conv2", {{"w2", 1}}}}}})),
      Catch::Contains("/layers/conv2/w2") && Catch::Contains("w2a4"));
  CHECK_THROWS_WITH(
      read_cost_table(write_file("neg.json", {{"unit", "us"}, {"layers", {{"c", {{"w2a2", -1}}}}}})),
      Catch::Contains("/layers/c/w2a2") && Catch::Contains(">= 0"));
  CHECK_THROWS_WITH(read_cost_table(write_file("nounit.json", {{"layers", {{"c", {{"w2a2", 1}}}}}})),
                    Catch::Contains("/unit"));
}

TEST_CASE("supported widths round a width up to the next one the hardware runs", "[nn][cost]") {
  CHECK(supported_width(3, {4, 8}, "weight") == 4);
  CHECK(supported_width(4, {4, 8}, "weight") == 4);
  CHECK(supported_width(5, {4, 8}, "weight") == 8);
  CHECK(supported_width(3, {}, "weight") == 3);
  CHECK_THROWS_WITH(supported_width(9, {4, 8}, "weight"), Catch::Contains("9 bits"));
  CostModel m;
  m.supported = {{4, 8}, {4, 8}};
  LayerCostInput layer{"l", "k", 100, 10, 50};
  CHECK(m.layer_cost(layer, 3, 2) == m.layer_cost(layer, 4, 4));
  CHECK(m.layer_cost(layer, 3, 2) == 100.0 * 16);
}

TEST_CASE("a result's layers are priced as deployed, and a result from before cost models is refused",
          "[nn][cost]") {
  auto net = searching_network();
  const auto reports = net->layer_reports();
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& r : reports) layers.push_back(to_json(r));
  const auto priced = quantized_layers_of(layers, "result.json");
  CHECK(priced.size() == search_layers(net).size());
  // Under BitOps the layers' sum is the network's BitOps at its argmax bits.
  CostModel bitops;
  CHECK(total_cost(bitops, priced) == Approx(network_cost(reports).bitops).epsilon(1e-12));
  // A table is looked up by name (and falls back by the recorded shape).
  CostModel table;
  table.measure = CostBasis::table;
  auto t = bitops_table(net, 1e-6, "conv3", 7);
  const auto conv4 = t["layers"]["conv4"];
  t["layers"].erase("conv4");
  t["shapes"][priced.back().input.shape_key] = conv4;
  table.table = read_cost_table(write_file("deployed.json", t));
  double expected = 0;
  for (const auto& r : reports) {
    if (!r.quantized) continue;
    expected += 1e-6 * double(r.macs) * r.weight_bits * r.activation_bits * (r.name == "conv3" ? 7 : 1);
  }
  CHECK(total_cost(table, priced) == Approx(expected).epsilon(1e-12));
  // Activation memory: what each layer reads per image, at its bits.
  CHECK(network_cost(reports).activation_memory_bits > 0);
  layers[1].erase("shape");
  try {
    quantized_layers_of(layers, "old/result.json");
    FAIL("a layer without its shape was priced");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::data_error);
    CHECK_THAT(e.what(), Catch::Contains("old/result.json") && Catch::Contains("shape"));
  }
}

TEST_CASE("a cost-table template is refused until it is filled in", "[nn][cost]") {
  CHECK_THROWS_WITH(read_cost_table(write_file("template.json", {{"unit", "us"}, {"layers", {{"c", {{"w2a2", nullptr}}}}}})),
                    Catch::Contains("/layers/c/w2a2") && Catch::Contains("not filled in"));
  CHECK_THROWS_WITH(read_cost_table(write_file("unit.json", {{"unit", "FILL IN: the unit"}, {"layers", {{"c", {{"w2a2", 1}}}}}})),
                    Catch::Contains("/unit"));
}
