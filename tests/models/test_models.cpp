#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/model_names.h"
#include "models/network.h"
#include "test_support.h"

using namespace edmips;

namespace {
int64_t total_macs(const std::string& model, const ModelInput& input) {
  return network_cost(make_network(model, input, NetworkPrecision{})->layer_reports()).total_macs;
}
}  // namespace

TEST_CASE("resnet18 at 224x224 has about 1.81 G MACs", "[models][macs]") {
  CHECK(double(total_macs("resnet18", {3, 224, 224, 1000})) == Approx(1.81e9).epsilon(0.02));
}

TEST_CASE("resnet50 at 224x224 has about 4.1 G MACs", "[models][macs]") {
  CHECK(double(total_macs("resnet50", {3, 224, 224, 1000})) == Approx(4.1e9).epsilon(0.02));
}

TEST_CASE("googlenet at 224x224 has about 1.5 G MACs (1.58 G: the paper's 5x5 branch, not torchvision's 3x3)",
          "[models][macs]") {
  // The GoogLeNet paper's table sums to about 1.5 G multiply-adds; the 5x5
  // convolutions of the third branch (the released mixgoogle.py, the paper)
  // give 1.58 G, torchvision's 3x3 substitute 1.50 G.
  CHECK(double(total_macs("googlenet", {3, 224, 224, 1000})) == Approx(1.58e9).epsilon(0.01));
  CHECK(double(total_macs("googlenet", {3, 224, 224, 1000})) == Approx(1.5e9).epsilon(0.06));
}

TEST_CASE("inception_v3 at 299x299 has about 5.7 G MACs", "[models][macs]") {
  CHECK(double(total_macs("inception_v3", {3, 299, 299, 1000})) == Approx(5.71e9).epsilon(0.01));
}

TEST_CASE("the released MAC convention counts input size over stride squared, equal where sizes divide",
          "[models][macs]") {
  auto macs = [](const std::string& model, const ModelInput& input, MacConvention convention) {
    NetworkPrecision p;
    p.mac_convention = convention;
    std::map<std::string, int64_t> by_layer;
    for (const auto& r : make_network(model, input, p)->layer_reports()) by_layer[r.name] = r.macs;
    return by_layer;
  };
  // The ResNets and GoogLeNet at 224: every map is its input over the stride.
  for (const std::string model : {"resnet18", "resnet50", "googlenet"}) {
    INFO(model);
    CHECK(macs(model, {3, 224, 224, 1000}, MacConvention::output) ==
          macs(model, {3, 224, 224, 1000}, MacConvention::released));
  }
  // Inception-V3 at 299: an unpadded 3x3 takes 149 to 147, which the released count does not see.
  const auto output = macs("inception_v3", {3, 299, 299, 1000}, MacConvention::output);
  const auto released = macs("inception_v3", {3, 299, 299, 1000}, MacConvention::released);
  CHECK(output.at("Conv2d_2a_3x3") == int64_t(32) * 32 * 9 * 147 * 147);
  CHECK(released.at("Conv2d_2a_3x3") == int64_t(32) * 32 * 9 * 149 * 149);
  // A stride-2 3x3 without padding on 35x35: 17x17 outputs, 35*35/4 in the released count.
  CHECK(output.at("Mixed_6a.branch3x3") == int64_t(288) * 384 * 9 * 17 * 17);
  CHECK(released.at("Mixed_6a.branch3x3") == int64_t(288) * 384 * 9 * 35 * 35 / 4);
  CHECK(output.at("fc") == released.at("fc"));
}

TEST_CASE("CIFAR resnet20 at 32x32 has about 41 M MACs", "[models][macs]") {
  CHECK(double(total_macs("resnet20", {3, 32, 32, 10})) == Approx(41e6).epsilon(0.02));
}

TEST_CASE("every model builds in float, search and fixed form and classifies a batch", "[models]") {
  for (const auto& name : model_names()) {
    const bool imagenet = (name.rfind("resnet", 0) == 0 && name != "resnet20") || name == "googlenet";
    const ModelInput input = name == "inception_v3" ? ModelInput{3, 75, 75, 7}  // its smallest
                             : imagenet             ? ModelInput{3, 64, 64, 7}
                                                    : ModelInput{1, 28, 28, 7};
    NetworkPrecision search;
    search.mode = PrecisionMode::search;
    search.weight_candidates = {2, 4};
    search.activation_candidates = {2, 4};
    NetworkPrecision fixed;
    fixed.mode = PrecisionMode::fixed;
    fixed.fixed_bits = {{"", 3, 3}};
    for (const auto& precision : {NetworkPrecision{}, search, fixed}) {
      INFO(name << " mode " << int(precision.mode));
      auto net = make_network(name, input, precision);
      const auto out = net->forward(torch::randn({2, input.channels, input.height, input.width}));
      CHECK(out.sizes() == torch::IntArrayRef({2, 7}));
      const auto reports = net->layer_reports();
      CHECK(reports.size() >= 4);
      for (const auto& r : reports) CHECK(r.macs > 0);
      CHECK(net->arch_parameters().size() == (precision.mode == PrecisionMode::search ? 2 * (reports.size() - 2) : 0));
    }
  }
}

TEST_CASE("an unknown model name is rejected with the near spelling", "[models]") {
  CHECK_THROWS_WITH(make_network("resnet19", {3, 32, 32, 10}, NetworkPrecision{}),
                    Catch::Contains("did you mean \"resnet18\""));
}

namespace {

/// Tensors a forward pass showed the network's probe, by point name.
std::map<std::string, torch::Tensor> probe_forward(const std::string& model, const ModelInput& input,
                                                   const NetworkPrecision& precision) {
  torch::manual_seed(5);
  auto net = make_network(model, input, precision);
  if (model == "googlenet" || model == "inception_v3") {
    // GoogLeNet's N(0, 0.01) start makes conv outputs so small that BN's eps of 1e-3
    // visibly lowers the normalised variance; larger weights show the layout.
    torch::NoGradGuard no_grad;
    for (const auto& layer : net->layers()) layer->weight.mul_(100);
  }
  std::map<std::string, torch::Tensor> seen;
  net->set_probe([&](const std::string& point, const torch::Tensor& value) { seen[point] = value.detach().clone(); });
  net->train();
  net->forward(torch::randn({8, input.channels, input.height, input.width}) * 3 + 1);
  return seen;
}

/// True when every channel of an [N, C, H, W] tensor has batch mean 0 and variance 1.
bool batch_normalised(const torch::Tensor& x) {
  const auto mean = x.mean({0, 2, 3});
  const auto var = x.var({0, 2, 3}, /*unbiased=*/false);
  return mean.abs().max().item<double>() < 1e-4 && (var - 1).abs().max().item<double>() < 1e-2;
}

ModelInput input_for(const std::string& model) {
  if (model == "inception_v3") return ModelInput{3, 80, 80, 10};
  return model == "resnet18" || model == "resnet50" || model == "googlenet" ? ModelInput{3, 64, 64, 10}
                                                                            : ModelInput{1, 28, 28, 10};
}

NetworkPrecision search_precision() {
  NetworkPrecision p;
  p.mode = PrecisionMode::search;
  p.weight_candidates = {1, 2, 3, 4};
  p.activation_candidates = {2, 3, 4};
  return p;
}

}  // namespace

TEST_CASE("every model searches the released code's layers: 19, 52, 56 and 93 in resnet18, resnet50, googlenet, "
          "inception_v3",
          "[models][layout]") {
  const std::map<std::string, size_t> searched = {{"simple-cnn", 3},  {"resnet20", 20},  {"vgg-small", 5},
                                                  {"resnet18", 19},   {"resnet50", 52},  {"googlenet", 56},
                                                  {"inception_v3", 93}};
  for (const auto& name : model_names()) {
    INFO(name);
    auto net = make_network(name, input_for(name), search_precision());
    size_t count = 0;
    for (const auto& r : net->layer_reports()) count += r.searched() ? 1 : 0;
    CHECK(count == searched.at(name));
    // The first conv and the classifier stay full precision.
    CHECK_FALSE(net->layer_reports().front().quantized);
    CHECK_FALSE(net->layer_reports().back().quantized);
  }
}

TEST_CASE("every quantized layer's HWGQ sees a batch-normalised input, as the released code arranges",
          "[models][layout]") {
  for (const auto& name : model_names()) {
    const auto seen = probe_forward(name, input_for(name), search_precision());
    auto net = make_network(name, input_for(name), search_precision());
    for (const auto& r : net->layer_reports()) {
      if (!r.searched()) continue;
      INFO(name << " " << r.name);
      REQUIRE(seen.count(r.name + ".input"));
      CHECK(batch_normalised(seen.at(r.name + ".input")));
    }
  }
}

TEST_CASE("resnet blocks add the raw block input, or the projection of the normalised input, as mixresnet.py does",
          "[models][layout]") {
  for (const std::string name : {"resnet20", "resnet18", "resnet50"}) {
    const auto seen = probe_forward(name, input_for(name), search_precision());
    int identity = 0, projected = 0;
    for (const auto& [point, value] : seen) {
      const auto suffix = point.rfind(".block_input");
      if (suffix == std::string::npos) continue;
      const std::string block = point.substr(0, suffix);
      INFO(name << " " << block);
      const auto& residual = seen.at(block + ".residual");
      if (seen.count(block + ".downsample.input")) {
        // The projection quantizes bn0(x), the same tensor conv1 quantizes.
        CHECK(torch::equal(seen.at(block + ".downsample.input"), seen.at(block + ".conv1.input")));
        CHECK_FALSE(torch::equal(residual, value));
        ++projected;
      } else {
        CHECK(torch::equal(residual, value));  // x itself, not bn0(x) (never bitwise equal to x)
        ++identity;
      }
    }
    CHECK(identity > 0);
    CHECK(projected > 0);
  }
}

TEST_CASE("the resnet stem ends in BatchNorm, after the max-pool in the ImageNet layout", "[models][layout]") {
  for (const std::string name : {"resnet20", "resnet18", "resnet50"}) {
    INFO(name);
    const auto input = input_for(name);
    const auto stem = probe_forward(name, input, search_precision()).at("stem");
    CHECK(batch_normalised(stem));  // BN last: a max-pool after it would shift every channel's mean up
    const int64_t reduction = name == "resnet20" ? 1 : 4;  // ImageNet: 7x7 conv stride 2, then 3x3 max-pool stride 2
    CHECK(stem.size(2) == input.height / reduction);
  }
}

TEST_CASE("the released code's searched allocations give the published normalised bits (224x224, Inception at 299)",
          "[models][paper]") {
  // sweeps/allocations/<model>-paper.json: quantres18_pretrained_cfg and
  // quantres50_pretrained_cfg of the released quant_resnet.py, in its layer
  // order (a stage's downsample after its first block's convs). Published:
  // 1.992 (ResNet-18) and 2.007 (ResNet-50); quantgoogle_pretrained_cfg of
  // quant_googlenet.py (each Inception module's branch1, branch2_1,
  // branch2_2, branch3_1, branch3_2, branch4): 1.994.
  // quantinception_pretrained_cfg of quant_inception.py at 299x299 under the
  // released MAC count: 1.982 (1.9873 when MACs are counted from outputs).
  const std::map<std::string, double> published = {
      {"resnet18", 1.992}, {"resnet50", 2.007}, {"googlenet", 1.994}, {"inception_v3", 1.982}};
  for (const auto& [model, bits] : published) {
    INFO(model);
    const int64_t size = model == "inception_v3" ? 299 : 224;
    const auto path = testing::source_dir() / "sweeps" / "allocations" / (model + "-paper.json");
    std::ifstream in(path);
    REQUIRE(in);
    const auto allocation = bit_allocation_from_json(nlohmann::json::parse(in), path.string());
    CHECK(allocation.model == model);
    NetworkPrecision p;
    p.mode = PrecisionMode::fixed;
    p.fixed_bits = allocation.layers;
    p.mac_convention = MacConvention::released;
    auto net = make_network(model, ModelInput{3, size, size, 1000}, p);
    const auto reports = net->layer_reports();
    size_t quantized = 0;
    for (const auto& r : reports) quantized += r.quantized;
    CHECK(quantized == allocation.layers.size());
    CHECK(network_cost(reports).normalised_bits() == Approx(bits).margin(5e-4));
  }
}

TEST_CASE("googlenet is the released mixgoogle.py: conv2 first, shared-BN branches, a pool branch of its own",
          "[models][layout]") {
  auto net = make_network("googlenet", input_for("googlenet"), search_precision());
  std::vector<std::string> searched;
  for (const auto& r : net->layer_reports()) {
    if (r.searched()) searched.push_back(r.name);
  }
  REQUIRE(searched.size() == 56);
  // The first searched layer (the complexity's normaliser) and the released cfg order within a module.
  CHECK(searched[0] == "conv2");
  CHECK(searched[1] == "conv3");
  const std::vector<std::string> module = {"inception3a.branch1",   "inception3a.branch2_1", "inception3a.branch2_2",
                                           "inception3a.branch3_1", "inception3a.branch3_2", "inception3a.branch4"};
  CHECK(std::vector<std::string>(searched.begin() + 2, searched.begin() + 8) == module);
  CHECK(searched.back() == "inception5b.branch4");

  const auto seen = probe_forward("googlenet", input_for("googlenet"), search_precision());
  for (const std::string m : {"inception3a", "inception4e", "inception5b"}) {
    INFO(m);
    // branch1, branch2_1 and branch3_1 quantize one BN of the module input...
    const auto& shared = seen.at(m + ".branch1.input");
    CHECK(torch::equal(shared, seen.at(m + ".branch2_1.input")));
    CHECK(torch::equal(shared, seen.at(m + ".branch3_1.input")));
    // ...the pool branch its own BN of the max-pooled input (3x3, stride 1: same size).
    const auto& pooled = seen.at(m + ".branch4.input");
    CHECK(pooled.sizes() == shared.sizes());
    CHECK_FALSE(torch::equal(pooled, shared));
  }
  // Conv and fc weights: N(0, 0.01) truncated at 2 std (std of the truncation 0.0088).
  torch::manual_seed(3);
  auto fresh = make_network("googlenet", {3, 224, 224, 1000}, NetworkPrecision{});
  for (const auto& layer : fresh->layers()) {
    INFO(layer->layer_name());
    CHECK(layer->weight.abs().max().item<double>() <= 0.02 + 1e-7);
    if (layer->weight.numel() > 10000) CHECK(layer->weight.std().item<double>() == Approx(0.0088).epsilon(0.03));
  }
}

TEST_CASE("inception_v3 is the released mixinception.py: its stem, module order, shared BNs, smallest input",
          "[models][layout]") {
  auto net = make_network("inception_v3", input_for("inception_v3"), search_precision());
  std::vector<std::string> searched;
  for (const auto& r : net->layer_reports()) {
    if (r.searched()) searched.push_back(r.name);
  }
  REQUIRE(searched.size() == 93);
  CHECK(net->layer_reports().front().name == "Conv2d_1a_3x3");  // float
  CHECK(searched[0] == "Conv2d_2a_3x3");
  CHECK(searched[3] == "Conv2d_4a_3x3");
  const std::vector<std::string> mixed_5b = {"Mixed_5b.branch1x1",      "Mixed_5b.branch5x5_1",
                                             "Mixed_5b.branch5x5_2",    "Mixed_5b.branch3x3dbl_1",
                                             "Mixed_5b.branch3x3dbl_2", "Mixed_5b.branch3x3dbl_3",
                                             "Mixed_5b.branch_pool"};
  CHECK(std::vector<std::string>(searched.begin() + 4, searched.begin() + 11) == mixed_5b);
  CHECK(searched[25] == "Mixed_6a.branch3x3");  // the released cfg slices: [25:29] is Mixed_6a
  CHECK(searched[69] == "Mixed_7a.branch3x3_1");
  CHECK(searched[75] == "Mixed_7b.branch1x1");
  CHECK(searched.back() == "Mixed_7c.branch_pool");

  const auto seen = probe_forward("inception_v3", input_for("inception_v3"), search_precision());
  for (const std::string m : {"Mixed_5b", "Mixed_6b", "Mixed_7b"}) {
    INFO(m);
    const std::string first = m == "Mixed_6b" ? ".branch7x7_1" : m == "Mixed_7b" ? ".branch3x3_1" : ".branch5x5_1";
    CHECK(torch::equal(seen.at(m + ".branch1x1.input"), seen.at(m + first + ".input")));
    CHECK_FALSE(torch::equal(seen.at(m + ".branch1x1.input"), seen.at(m + ".branch_pool.input")));
  }
  // InceptionE's split pairs quantize one shared BN.
  CHECK(torch::equal(seen.at("Mixed_7b.branch3x3_2a.input"), seen.at("Mixed_7b.branch3x3_2b.input")));
  CHECK(torch::equal(seen.at("Mixed_7c.branch3x3dbl_3a.input"), seen.at("Mixed_7c.branch3x3dbl_3b.input")));

  // N(0, 0.1) truncated at 2 std.
  torch::manual_seed(3);
  auto fresh = make_network("inception_v3", {3, 75, 75, 10}, NetworkPrecision{});
  for (const auto& layer : fresh->layers()) {
    INFO(layer->layer_name());
    CHECK(layer->weight.abs().max().item<double>() <= 0.2 + 1e-6);
    if (layer->weight.numel() > 10000) CHECK(layer->weight.std().item<double>() == Approx(0.088).epsilon(0.03));
  }
  CHECK_THROWS_WITH(make_network("inception_v3", {3, 74, 74, 10}, NetworkPrecision{}),
                    Catch::Contains("at least 75x75") && Catch::Contains("image_size"));
}
