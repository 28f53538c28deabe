// The ONNX importer against PyTorch: torchvision networks exported by Debian's
// python3-torch with random weights must give PyTorch's logits, and files the
// importer cannot represent must be refused naming the file, node and op.
#include <onnx/onnx_pb.h>
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "models/onnx_network.h"
#include "onnx/onnx_graph.h"
#include "test_support.h"

using namespace edmips;
using edmips::testing::TempDir;

namespace {

torch::Tensor read_floats(const std::filesystem::path& path, std::vector<int64_t> shape) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto t = torch::empty(shape, torch::kFloat);
  REQUIRE(bytes.size() == size_t(t.numel()) * sizeof(float));
  std::memcpy(t.data_ptr<float>(), bytes.data(), bytes.size());
  return t;
}

struct Reference {
  edmips::onnx::Graph graph;
  torch::Tensor input, logits;
  ModelInput model_input;
};

Reference export_reference(const TempDir& dir, const std::string& model, int opset, const std::string& mode) {
  const auto script = (edmips::testing::source_dir() / "tests" / "onnx" / "torchvision_reference.py").string();
  REQUIRE(edmips::testing::run_python("'" + script + "' " + model + " " + std::to_string(opset) + " " + mode + " '" +
                                      dir.path().string() + "' > /dev/null") == 0);
  std::ifstream shape_file(dir / "shape.txt");
  int64_t n, c, h, w, k;
  shape_file >> n >> c >> h >> w >> k;
  Reference r{edmips::onnx::read_graph((dir / "model.onnx").string()), read_floats(dir / "input.f32", {n, c, h, w}),
              read_floats(dir / "logits.f32", {n, k}), ModelInput{c, h, w, k}};
  return r;
}

double relative_error(const torch::Tensor& ours, const torch::Tensor& reference) {
  return (ours - reference).abs().max().item<double>() / reference.abs().max().item<double>();
}

torch::Tensor float_logits(const Reference& r) {
  auto net = make_onnx_network(r.graph, "imported", r.model_input, NetworkPrecision{}, true);
  torch::NoGradGuard no_grad;
  net->eval();
  return net->forward(r.input);
}

}  // namespace

TEST_CASE("imported torchvision networks give PyTorch's logits within 1e-4 relative", "[onnx][import]") {
  // Opsets 11 to 17, with BatchNorm folded (an eval export), kept, and in its
  // training form: every operator the torchvision classifiers export.
  struct Case {
    const char* model;
    int opset;
    const char* mode;
  };
  const Case cases[] = {
      {"resnet18", 11, "bn"},           {"resnet18", 13, "training"},    {"resnet50", 13, "folded"},
      {"mobilenet_v2", 12, "bn"},       {"mobilenet_v3_small", 13, "bn"}, {"mobilenet_v3_small", 14, "folded"},
      {"efficientnet_b0", 17, "bn"},    {"googlenet", 13, "folded"},     {"inception_v3", 13, "bn"},
      {"squeezenet1_1", 11, "folded"},  {"vgg11_bn", 15, "bn"},          {"alexnet", 16, "folded"},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.model << " opset " << c.opset << " " << c.mode) {
      TempDir dir;
      const auto reference = export_reference(dir, c.model, c.opset, c.mode);
      const auto logits = float_logits(reference);
      REQUIRE(logits.sizes() == reference.logits.sizes());
      CHECK(relative_error(logits, reference.logits) < 1e-4);
    }
  }
}

TEST_CASE("every convolution and linear layer of an imported network is searchable, first and last in float",
          "[onnx][import]") {
  TempDir dir;
  const auto reference = export_reference(dir, "mobilenet_v2", 13, "bn");
  NetworkPrecision search;
  search.mode = PrecisionMode::search;
  search.weight_candidates = {2, 4};
  search.activation_candidates = {2, 4};
  auto net = make_onnx_network(reference.graph, "mobilenet_v2.onnx", reference.model_input, search, true);
  const auto& layers = net->layers();
  // torchvision's mobilenet_v2: 52 convolutions (17 of them depthwise) and one Linear.
  REQUIRE(layers.size() == 53);
  CHECK_FALSE(layers.front()->quantized());
  CHECK_FALSE(layers.back()->quantized());
  int depthwise = 0;
  for (size_t i = 1; i + 1 < layers.size(); ++i) {
    CHECK(layers[i]->searching());
    CHECK(layers[i]->macs() > 0);
    depthwise += layers[i]->shape().groups > 1 ? 1 : 0;
  }
  CHECK(depthwise == 17);
  // Names come from the weights' names in the file.
  CHECK(layers.front()->layer_name() == "features.0.0");
  // A search forward and backward runs, and the architecture parameters get gradients.
  auto loss = net->forward(reference.input).sum() + net->complexity_loss(ComplexityNormaliser::first_layer);
  loss.backward();
  for (const auto& alpha : net->arch_parameters()) CHECK(alpha.grad().defined());
}

TEST_CASE("an imported network quantized and calibrated comes closer to its float logits with every bit",
          "[onnx][import]") {
  TempDir dir;
  const auto reference = export_reference(dir, "resnet18", 13, "bn");
  auto error_at = [&](int bits) {
    NetworkPrecision fixed;
    fixed.mode = PrecisionMode::fixed;
    fixed.fixed_bits = {LayerBits{"", bits, bits}};
    auto net = make_onnx_network(reference.graph, "resnet18.onnx", reference.model_input, fixed, true);
    REQUIRE(net->needs_calibration());
    torch::NoGradGuard no_grad;
    net->eval();
    net->set_calibrating(true);
    net->forward(reference.input);
    net->set_calibrating(false);
    return relative_error(net->forward(reference.input), reference.logits);
  };
  const double e2 = error_at(2), e4 = error_at(4), e8 = error_at(8);
  INFO("relative logit error W2A2 " << e2 << ", W4A4 " << e4 << ", W8A8 " << e8);
  // Fewer bits, farther from float. (Not halving per bit: the Gaussian-fitted
  // clipping costs the same at every width, and random networks amplify noise;
  // docs/onnx.md has the W8A8 accuracy of a trained network.)
  CHECK(e4 < e2);
  CHECK(e8 < e4);
}

TEST_CASE("imported layers behind a ReLU quantize unsigned, those on a linear bottleneck signed", "[onnx][import]") {
  TempDir dir;
  const auto reference = export_reference(dir, "mobilenet_v2", 13, "bn");
  NetworkPrecision fixed;
  fixed.mode = PrecisionMode::fixed;
  fixed.fixed_bits = {LayerBits{"", 4, 4}};
  auto net = make_onnx_network(reference.graph, "mobilenet_v2.onnx", reference.model_input, fixed, true);
  std::map<std::string, LayerInput> rule;
  for (const auto& l : net->layers()) rule[l->layer_name()] = l->precision().input;
  CHECK(rule.at("features.0.0") == LayerInput::data);
  // Block 2's expansion reads block 1's projection: no ReLU, signed.
  CHECK(rule.at("features.2.conv.0.0") == LayerInput::signed_values);
  // Its depthwise convolution reads the expansion's ReLU6 (a Clip at 0).
  CHECK(rule.at("features.2.conv.1.0") == LayerInput::non_negative);
  CHECK(rule.at("features.2.conv.2") == LayerInput::non_negative);
}

namespace {

/// A one-convolution model written with protobuf directly, with `op` after it.
std::string tiny_model(const std::string& op, int64_t channels = 1) {
  ::onnx::ModelProto model;
  model.set_ir_version(7);
  model.add_opset_import()->set_version(13);
  auto* g = model.mutable_graph();
  g->set_name("tiny");
  auto* input = g->add_input();
  input->set_name("x");
  auto* type = input->mutable_type()->mutable_tensor_type();
  type->set_elem_type(::onnx::TensorProto::FLOAT);
  for (int64_t d : {int64_t(1), channels, int64_t(8), int64_t(8)}) type->mutable_shape()->add_dim()->set_dim_value(d);
  auto* w = g->add_initializer();
  w->set_name("conv.weight");
  w->set_data_type(::onnx::TensorProto::FLOAT);
  for (int64_t d : {int64_t(4), channels, int64_t(3), int64_t(3)}) w->add_dims(d);
  for (int64_t i = 0; i < 4 * channels * 9; ++i) w->add_float_data(0.01f * float(i % 7));
  auto* conv = g->add_node();
  conv->set_name("the_conv");
  conv->set_op_type("Conv");
  conv->add_input("x");
  conv->add_input("conv.weight");
  conv->add_output("y");
  auto* node = g->add_node();
  node->set_name("the_odd_one");
  node->set_op_type(op);
  node->add_input("y");
  node->add_output("z");
  auto* output = g->add_output();
  output->set_name("z");
  auto* out_type = output->mutable_type()->mutable_tensor_type();
  out_type->set_elem_type(::onnx::TensorProto::FLOAT);
  out_type->mutable_shape()->add_dim()->set_dim_param("N");
  return model.SerializeAsString();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no ConfigError";
}

}  // namespace

TEST_CASE("an operator outside the importer's set is refused naming the file, the node and its op type",
          "[onnx][import][errors]") {
  const auto graph = edmips::onnx::parse_graph(tiny_model("Softplus"), "tiny.onnx");
  const auto message = error_of([&] { make_onnx_network(graph, "tiny", ModelInput{1, 8, 8, 4}, {}, true); });
  CHECK_THAT(message, Catch::Contains("tiny.onnx") && Catch::Contains("the_odd_one") && Catch::Contains("Softplus") &&
                          Catch::Contains("not supported"));
}

TEST_CASE("a graph that does not fit the dataset is refused naming what differs", "[onnx][import][errors]") {
  const auto graph = edmips::onnx::parse_graph(tiny_model("Relu", 3), "tiny.onnx");
  CHECK_THAT(error_of([&] { make_onnx_network(graph, "tiny", ModelInput{1, 8, 8, 4}, {}, true); }),
             Catch::Contains("3 channels") && Catch::Contains("dataset gives 1"));
  // A 4-D output is no classifier's output for 4 classes.
  CHECK_THAT(error_of([&] { make_onnx_network(graph, "tiny", ModelInput{3, 8, 8, 4}, {}, true); }),
             Catch::Contains("output z") && Catch::Contains("4 classes"));
}

TEST_CASE("truncated, empty and non-ONNX files are refused, never a crash", "[onnx][import][errors]") {
  const auto bytes = tiny_model("Relu");
  for (size_t cut : {size_t(0), size_t(1), bytes.size() / 3, bytes.size() / 2, bytes.size() - 1}) {
    CHECK_THROWS_AS(edmips::onnx::parse_graph(bytes.substr(0, cut), "cut.onnx"), ConfigError);
  }
  CHECK_THROWS_AS(edmips::onnx::parse_graph("{\"not\": \"onnx\"}", "config.json"), ConfigError);
  TempDir dir;
  CHECK_THROWS_AS(edmips::onnx::read_graph((dir / "missing.onnx").string()), ConfigError);
  CHECK_THROWS_AS(edmips::onnx::read_graph(dir.path().string()), ConfigError);  // a directory
}
