// The ONNX importer: one converter per operator (in `converters()`), each
// turning a node into a step of the network's forward pass. Values computed
// from shapes (Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as
// torch.onnx.export writes a flatten) are int64 tensors kept on the host and
// computed from the actual input, so no batch size is baked in.
#include "models/onnx_network.h"

#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "core/error.h"
#include "nn/batch_norm.h"

namespace edmips {
namespace {

namespace F = torch::nn::functional;
using onnx::Node;
using Tensors = std::vector<torch::Tensor>;

torch::Tensor to_tensor(const onnx::TensorData& t) {
  std::vector<int64_t> dims(t.dims.begin(), t.dims.end());
  if (t.type == onnx::TensorData::Type::int64) {
    return torch::tensor(t.ints, torch::kLong).reshape(dims);
  }
  return torch::tensor(t.floats, torch::kFloat).reshape(dims);
}

/// Module names may not hold '.': "layer1.0.conv1" -> "layer1_0_conv1".
std::string module_name(std::string name) {
  for (auto& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name.empty() ? "_" : name;
}

/// torch.onnx's node name "/features/features.2/conv/conv.0/conv.0.0/Conv"
/// -> the module path "features.2.conv.0.0"; any other name unchanged.
std::string module_path(const std::string& node_name) {
  if (node_name.empty() || node_name[0] != '/') return node_name;
  std::vector<std::string> scopes;
  for (size_t start = 1, end; start < node_name.size(); start = end + 1) {
    end = node_name.find('/', start);
    if (end == std::string::npos) break;  // the last part is the op, not a scope
    scopes.push_back(node_name.substr(start, end - start));
  }
  if (scopes.empty()) return node_name;
  std::string path = scopes[0];
  for (size_t i = 1; i < scopes.size(); ++i) {
    const auto& parent = scopes[i - 1];
    // Each scope repeats its parent's name as a prefix ("conv" -> "conv.0").
    const bool nested = scopes[i].size() > parent.size() && scopes[i].compare(0, parent.size() + 1, parent + ".") == 0;
    path += nested ? scopes[i].substr(parent.size()) : "." + scopes[i];
  }
  return path;
}

std::vector<int64_t> pair_of(const Node& node, const std::string& attribute, int64_t fallback) {
  auto values = node.ints_attribute(attribute, {fallback, fallback});
  if (values.size() != 2) {
    throw ConfigError(node.label() + ": attribute " + attribute + " has " + std::to_string(values.size()) +
                      " values; only 2-D operations are supported");
  }
  return values;
}

/// ONNX pads are (top, left, bottom, right); LibTorch pads both sides alike.
std::vector<int64_t> symmetric_pads(const Node& node) {
  const auto auto_pad = node.string_attribute("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") {
    throw ConfigError(node.label() + ": auto_pad " + auto_pad + " is not supported (export with explicit pads)");
  }
  const auto pads = node.ints_attribute("pads", {0, 0, 0, 0});
  if (pads.size() != 4) throw ConfigError(node.label() + ": pads must have 4 values for a 2-D operation");
  if (pads[0] != pads[2] || pads[1] != pads[3]) {
    throw ConfigError(node.label() + ": asymmetric pads are not supported");
  }
  return {pads[0], pads[1]};
}

/// One step of the forward pass: a node's inputs -> its outputs.
struct Step {
  const Node* node = nullptr;
  /// How many of the node's inputs the step reads when it runs; the others
  /// (weights, Clip bounds, axes) were read once at import.
  size_t wired_inputs = SIZE_MAX;
  std::vector<int> inputs, outputs;  ///< value slots; -1 for an omitted optional input
  std::function<Tensors(const Tensors&)> run;
};

class OnnxNetworkImpl;

/// What a converter sees: the node, the constants known at import, and the
/// network to register layers and modules in.
struct ConvertContext {
  OnnxNetworkImpl& network;
  const Node& node;
  /// A constant input (initializer or Constant output), or nullptr.
  std::function<const torch::Tensor*(size_t input)> constant;
  std::function<torch::Tensor(size_t input)> required_constant;
};

class OnnxNetworkImpl : public NetworkImpl {
 public:
  OnnxNetworkImpl(onnx::Graph graph, const std::string& model_name, const ModelInput& input,
                  const NetworkPrecision& precision, bool imported_weights);

  torch::Tensor forward(torch::Tensor x) override;

  /// Registers a layer made by the builder, fills its weights when imported.
  QuantLayer add_layer(const Node& node, const LayerShape& shape, const torch::Tensor& weight,
                       const torch::Tensor& bias, OnnxLayerOrigin origin);
  torch::nn::BatchNorm2d add_batch_norm(const Node& node, int64_t channels, double epsilon, double momentum,
                                        const Tensors& parameters);

  std::vector<OnnxLayerOrigin> origins;
  std::vector<std::pair<std::string, torch::nn::BatchNorm2d>> batch_norms;
  /// While a probe runs (in make_onnx_network), a failing node's error is a
  /// ConfigError naming it; in training it stays what it is.
  bool probing = false;

 private:
  void check_input(const ModelInput& input) const;
  int slot(const std::string& value);
  void convert(const Node& node);
  void mark_non_negative(const Node& node);
  LayerInput input_rule(const Node& node) const;
  /// A value known at import (a Constant's output or an initializer), or nullptr.
  const torch::Tensor* known_constant(const std::string& name);
  /// Makes an initializer a value of the forward pass (float ones as buffers,
  /// so they follow the network to its device).
  void wire_initializer(const std::string& name);
  /// Computes a node whose inputs are all known at import (shape arithmetic,
  /// torch.onnx's Identity copies of shared initializers) into constants.
  bool fold_constants(const Node& node, const Step& step);

  onnx::Graph graph_;  ///< owned: steps point at its nodes; initializers dropped after import
  std::string source_;
  LayerBuilder builder_;
  bool imported_weights_;
  size_t layer_nodes_ = 0, layers_made_ = 0;

  std::map<std::string, int> slots_;
  std::vector<std::string> slot_names_;
  std::map<int, torch::Tensor> constants_;  ///< slot -> value (float ones are registered buffers)
  std::map<std::string, torch::Tensor> import_cache_;  ///< initializers read at import, unregistered
  std::set<std::string> non_negative_;
  std::vector<Step> steps_;
  std::vector<std::vector<int>> release_after_;  ///< per step: slots whose last reader it is
  int input_slot_ = -1, output_slot_ = -1;
  std::map<std::string, int> names_used_;
};

using Converter = std::function<Step(ConvertContext&)>;
const std::map<std::string, Converter>& converters();

bool is_layer_node(const Node& node, const onnx::Graph& graph) {
  if (node.op_type != "Conv" && node.op_type != "Gemm" && node.op_type != "MatMul") return false;
  return node.inputs.size() >= 2 && graph.initializers.count(node.inputs[1]) != 0;
}

OnnxNetworkImpl::OnnxNetworkImpl(onnx::Graph graph, const std::string& model_name, const ModelInput& input,
                                 const NetworkPrecision& precision, bool imported_weights)
    : graph_(std::move(graph)), source_(graph_.source), builder_(precision), imported_weights_(imported_weights) {
  check_input(input);
  input_slot_ = slot(graph_.input_name);
  for (const auto& node : graph_.nodes) layer_nodes_ += is_layer_node(node, graph_) ? 1 : 0;
  if (layer_nodes_ == 0) {
    throw ConfigError(source_ + ": the graph has no Conv, Gemm or MatMul with a weight initializer: nothing to quantize");
  }
  for (const auto& node : graph_.nodes) {
    convert(node);
    mark_non_negative(node);
  }
  if (!slots_.count(graph_.output_name)) throw ConfigError(source_ + ": no node computes the output " + graph_.output_name);
  output_slot_ = slots_.at(graph_.output_name);
  // The weights now live in the layers and buffers.
  graph_.initializers.clear();
  import_cache_.clear();
  // Free every intermediate value after its last reader.
  std::vector<int> last_reader(slot_names_.size(), -1);
  for (size_t s = 0; s < steps_.size(); ++s) {
    for (int in : steps_[s].inputs) {
      if (in >= 0) last_reader[size_t(in)] = int(s);
    }
  }
  release_after_.assign(steps_.size(), {});
  for (size_t v = 0; v < last_reader.size(); ++v) {
    if (last_reader[v] >= 0 && !constants_.count(int(v)) && int(v) != output_slot_) {
      release_after_[size_t(last_reader[v])].push_back(int(v));
    }
  }
  set_layers(model_name, builder_.finish(model_name));
}

void OnnxNetworkImpl::check_input(const ModelInput& input) const {
  const auto& d = graph_.input_dims;
  if (d.size() != 4) {
    throw ConfigError(source_ + ": input " + graph_.input_name + " has " + std::to_string(d.size()) +
                      " dimensions; an image classifier's input is N x C x H x W");
  }
  const int64_t expected[3] = {input.channels, input.height, input.width};
  const char* what[3] = {"channels", "height", "width"};
  for (int i = 0; i < 3; ++i) {
    if (d[size_t(i) + 1] > 0 && d[size_t(i) + 1] != expected[i]) {
      throw ConfigError(source_ + ": input " + graph_.input_name + " has " + std::to_string(d[size_t(i) + 1]) + " " +
                        what[i] + " but the dataset gives " + std::to_string(expected[i]));
    }
  }
}

int OnnxNetworkImpl::slot(const std::string& value) {
  auto [it, added] = slots_.emplace(value, int(slot_names_.size()));
  if (added) slot_names_.push_back(value);
  return it->second;
}

const torch::Tensor* OnnxNetworkImpl::known_constant(const std::string& name) {
  if (name.empty()) return nullptr;
  if (auto it = slots_.find(name); it != slots_.end()) {
    if (auto c = constants_.find(it->second); c != constants_.end()) return &c->second;
  }
  auto init = graph_.initializers.find(name);
  if (init == graph_.initializers.end()) return nullptr;
  auto [cached, added] = import_cache_.emplace(name, torch::Tensor());
  if (added) cached->second = to_tensor(init->second);
  return &cached->second;
}

void OnnxNetworkImpl::wire_initializer(const std::string& name) {
  if (!graph_.initializers.count(name)) return;
  const int s = slot(name);
  if (constants_.count(s)) return;
  auto value = *known_constant(name);
  if (value.is_floating_point()) value = register_buffer("const_" + std::to_string(s), value);
  constants_[s] = value;
}

void OnnxNetworkImpl::convert(const Node& node) {
  if (!node.domain.empty()) {
    throw ConfigError(source_ + ": " + node.label() + ": operator domain \"" + node.domain + "\" is not supported");
  }
  if (node.op_type == "Constant") {
    // A value known at import: it needs no step.
    torch::Tensor value;
    if (node.has("value")) {
      const auto& a = node.attributes.at("value");
      if (a.kind != onnx::Attribute::Kind::tensor) throw ConfigError(source_ + ": " + node.label() + ": value is not a tensor");
      value = to_tensor(*a.tensor);
    } else if (node.has("value_float")) {
      value = torch::tensor(float(node.float_attribute("value_float", 0)));
    } else if (node.has("value_floats")) {
      value = torch::tensor(node.attributes.at("value_floats").floats);
    } else if (node.has("value_int")) {
      value = torch::tensor(node.int_attribute("value_int", 0), torch::kLong);
    } else if (node.has("value_ints")) {
      value = torch::tensor(node.attributes.at("value_ints").ints, torch::kLong);
    } else {
      throw ConfigError(source_ + ": " + node.label() + ": a Constant without value, value_float(s) or value_int(s)");
    }
    if (node.outputs.size() != 1) throw ConfigError(source_ + ": " + node.label() + ": expected one output");
    const int s = slot(node.outputs[0]);
    if (value.is_floating_point()) value = register_buffer("const_" + std::to_string(s), value);
    constants_[s] = value;
    return;
  }
  auto found = converters().find(node.op_type);
  if (found == converters().end()) {
    std::string list;
    for (const auto& name : supported_onnx_operators()) list += (list.empty() ? "" : ", ") + name;
    throw ConfigError(source_ + ": " + node.label() + ": operator " + node.op_type +
                      " is not supported by the importer (supported: " + list + ")");
  }
  ConvertContext context{*this, node,
                         [&](size_t i) { return i < node.inputs.size() ? known_constant(node.inputs[i]) : nullptr; },
                         [&](size_t i) {
                           const auto* c = i < node.inputs.size() ? known_constant(node.inputs[i]) : nullptr;
                           if (!c) {
                             throw ConfigError(node.label() + ": input " + std::to_string(i) +
                                               " must be a constant (an initializer or a Constant)");
                           }
                           return *c;
                         }};
  Step step;
  try {
    step = found->second(context);
  } catch (const ConfigError& e) {
    throw ConfigError(source_ + ": " + std::string(e.what()));
  } catch (const c10::Error& e) {
    throw ConfigError(source_ + ": " + node.label() + ": " + e.what_without_backtrace());
  }
  step.node = &node;
  if (fold_constants(node, step)) return;
  for (size_t i = 0; i < node.inputs.size() && i < step.wired_inputs; ++i) {
    const auto& in = node.inputs[i];
    if (in.empty()) {
      step.inputs.push_back(-1);
      continue;
    }
    wire_initializer(in);
    if (!slots_.count(in)) {
      throw ConfigError(source_ + ": " + node.label() + ": input " + in + " is computed by no earlier node");
    }
    step.inputs.push_back(slots_.at(in));
  }
  for (const auto& out : node.outputs) step.outputs.push_back(out.empty() ? -1 : slot(out));
  steps_.push_back(std::move(step));
}

bool OnnxNetworkImpl::fold_constants(const Node& node, const Step& step) {
  // Layers, BatchNorms and Dropout hold state or act in training: never folded.
  static const std::set<std::string> stateful = {"Conv", "Gemm", "MatMul", "BatchNormalization", "Dropout"};
  if (stateful.count(node.op_type)) return false;
  Tensors inputs;
  for (size_t i = 0; i < node.inputs.size() && i < step.wired_inputs; ++i) {
    if (node.inputs[i].empty()) {
      inputs.emplace_back();
      continue;
    }
    const auto* c = known_constant(node.inputs[i]);
    if (!c) return false;
    inputs.push_back(*c);
  }
  torch::NoGradGuard no_grad;
  Tensors outputs;
  try {
    outputs = step.run(inputs);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string message = e.what();
    throw ConfigError(source_ + ": " + node.label() + ": cannot compute it from its constant inputs: " +
                      message.substr(0, message.find('\n')));
  }
  for (size_t o = 0; o < node.outputs.size() && o < outputs.size(); ++o) {
    if (node.outputs[o].empty()) continue;
    const int s = slot(node.outputs[o]);
    auto value = outputs[o].contiguous();
    if (value.is_floating_point()) value = register_buffer("const_" + std::to_string(s), value);
    constants_[s] = value;
  }
  return true;
}

/// Values known to be >= 0: behind such a value a quantized layer uses the
/// unsigned (HWGQ) quantizer, elsewhere the signed one.
void OnnxNetworkImpl::mark_non_negative(const Node& node) {
  static const std::set<std::string> producers = {"Relu", "Sigmoid", "HardSigmoid"};
  static const std::set<std::string> keep_sign = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
                                                  "Flatten", "Reshape", "Identity", "Dropout", "Concat", "Mul",
                                                  "Add", "Squeeze", "Unsqueeze"};
  if (node.outputs.empty()) return;
  bool non_negative = producers.count(node.op_type) != 0;
  if (node.op_type == "Clip") {
    double low = node.float_attribute("min", -1);
    if (node.inputs.size() > 1 && !node.inputs[1].empty()) {
      const auto* c = known_constant(node.inputs[1]);
      low = c ? c->item<double>() : -1;
    }
    non_negative = low >= 0;
  } else if (keep_sign.count(node.op_type)) {
    non_negative = true;
    const size_t data_inputs = (node.op_type == "Concat" || node.op_type == "Mul" || node.op_type == "Add")
                                   ? node.inputs.size() : 1;
    for (size_t i = 0; i < data_inputs && i < node.inputs.size(); ++i) {
      const auto& in = node.inputs[i];
      const auto* c = known_constant(in);
      const bool constant_non_negative = c && c->numel() > 0 && c->min().item<double>() >= 0;
      if (!non_negative_.count(in) && !constant_non_negative) non_negative = false;
    }
  }
  if (non_negative) non_negative_.insert(node.outputs[0]);
}

LayerInput OnnxNetworkImpl::input_rule(const Node& node) const {
  return non_negative_.count(node.inputs[0]) ? LayerInput::non_negative : LayerInput::signed_values;
}

QuantLayer OnnxNetworkImpl::add_layer(const Node& node, const LayerShape& shape, const torch::Tensor& weight,
                                      const torch::Tensor& bias, OnnxLayerOrigin origin) {
  std::string name = origin.weight;
  const std::string suffix = ".weight";
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    name.resize(name.size() - suffix.size());
  }
  if (name.rfind("onnx::", 0) == 0 || name.empty()) {
    // Folded or shared weights carry no module name; torch.onnx's node names
    // are module scopes: take the module's path from them.
    name = module_path(node.name);
  }
  if (int uses = names_used_[name]++; uses > 0) name += "_" + std::to_string(uses);
  const bool first = layers_made_ == 0, last = layers_made_ + 1 == layer_nodes_;
  ++layers_made_;
  auto layer = first  ? builder_.first(name, shape)
               : last ? builder_.last(name, shape, input_rule(node))
                      : builder_.inner(name, shape, input_rule(node));
  register_module(module_name(name), layer);
  if (imported_weights_) {
    torch::NoGradGuard no_grad;
    layer->weight.copy_(weight.reshape(layer->weight.sizes()));
    if (bias.defined()) layer->bias.copy_(bias.reshape({-1}));
  }
  origin.layer = name;
  origin.node = node.name;
  origin.data_input = node.inputs[0];
  origins.push_back(origin);
  return layer;
}

torch::nn::BatchNorm2d OnnxNetworkImpl::add_batch_norm(const Node& node, int64_t channels, double epsilon,
                                                       double momentum, const Tensors& parameters) {
  auto bn = torch::nn::BatchNorm2d(torch::nn::BatchNormOptions(channels).eps(epsilon).momentum(momentum));
  register_module("bn_" + module_name(node.name) + "_" + std::to_string(batch_norms.size()), bn);
  if (imported_weights_) {
    torch::NoGradGuard no_grad;
    bn->weight.copy_(parameters[0]);
    bn->bias.copy_(parameters[1]);
    bn->running_mean.copy_(parameters[2]);
    bn->running_var.copy_(parameters[3]);
  }
  batch_norms.emplace_back(node.name, bn);
  return bn;
}

torch::Tensor OnnxNetworkImpl::forward(torch::Tensor x) {
  std::vector<torch::Tensor> values(slot_names_.size());
  for (const auto& [s, value] : constants_) values[size_t(s)] = value;
  values[size_t(input_slot_)] = x;
  Tensors inputs;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const auto& step = steps_[i];
    inputs.clear();
    for (int in : step.inputs) inputs.push_back(in >= 0 ? values[size_t(in)] : torch::Tensor());
    Tensors outputs;
    if (probing) {
      try {
        outputs = step.run(inputs);
      } catch (const Error&) {
        throw;
      } catch (const std::exception& e) {
        std::string message = e.what();
        message = message.substr(0, message.find('\n'));  // LibTorch appends a stack trace
        throw ConfigError(source_ + ": " + step.node->label() + " fails on the dataset's input: " + message);
      }
    } else {
      outputs = step.run(inputs);
    }
    for (size_t o = 0; o < step.outputs.size() && o < outputs.size(); ++o) {
      if (step.outputs[o] >= 0) values[size_t(step.outputs[o])] = std::move(outputs[o]);
    }
    for (int r : release_after_[i]) values[size_t(r)] = torch::Tensor();
  }
  auto out = values[size_t(output_slot_)];
  if (!out.defined()) throw Error(source_ + ": the graph's output " + graph_.output_name + " was not computed");
  return out;
}

// ---- converters, one per operator --------------------------------------

/// A one-input step; any further inputs (bounds, axes) were read at import.
Step unary(std::function<torch::Tensor(const torch::Tensor&)> f) {
  Step s;
  s.wired_inputs = 1;
  s.run = [f = std::move(f)](const Tensors& in) { return Tensors{f(in[0])}; };
  return s;
}

/// A Conv / Gemm / MatMul node's step: its layer on the node's data input.
Step layer_step(QuantLayer layer) {
  Step s;
  s.wired_inputs = 1;
  s.run = [layer](const Tensors& in) mutable { return Tensors{layer->forward(in[0])}; };
  return s;
}

Step convert_conv(ConvertContext& c) {
  const auto& n = c.node;
  const auto weight = c.required_constant(1);
  if (weight.dim() != 4) throw ConfigError(n.label() + ": only 2-D convolutions are supported (weight of rank " + std::to_string(weight.dim()) + ")");
  LayerShape shape;
  shape.groups = n.int_attribute("group", 1);
  if (shape.groups < 1) throw ConfigError(n.label() + ": group must be >= 1");
  shape.in_channels = weight.size(1) * shape.groups;
  shape.out_channels = weight.size(0);
  const auto kernel = pair_of(n, "kernel_shape", weight.size(2));
  if (kernel[0] != weight.size(2) || kernel[1] != weight.size(3)) throw ConfigError(n.label() + ": kernel_shape disagrees with the weight");
  const auto stride = pair_of(n, "strides", 1), dilation = pair_of(n, "dilations", 1), pads = symmetric_pads(n);
  shape.kernel = {kernel[0], kernel[1]};
  shape.stride = {stride[0], stride[1]};
  shape.dilation = {dilation[0], dilation[1]};
  shape.padding = {pads[0], pads[1]};
  torch::Tensor bias;
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    bias = c.required_constant(2);
    if (bias.numel() != shape.out_channels) throw ConfigError(n.label() + ": bias size disagrees with the weight");
    shape.bias = true;
  }
  OnnxLayerOrigin origin;
  origin.weight = n.inputs[1];
  origin.bias = shape.bias ? n.inputs[2] : "";
  return layer_step(c.network.add_layer(n, shape, weight, bias, origin));
}

Step convert_linear(ConvertContext& c) {
  const auto& n = c.node;
  auto b = c.required_constant(1);
  if (b.dim() != 2) throw ConfigError(n.label() + ": the weight must be a matrix");
  OnnxLayerOrigin origin;
  origin.weight = n.inputs[1];
  torch::Tensor weight, bias;
  if (n.op_type == "Gemm") {
    if (n.int_attribute("transA", 0) != 0) throw ConfigError(n.label() + ": transA = 1 is not supported");
    origin.transposed = n.int_attribute("transB", 0) == 0;
    origin.weight_factor = n.float_attribute("alpha", 1.0);
    origin.bias_factor = n.float_attribute("beta", 1.0);
    weight = (origin.transposed ? b.t() : b) * origin.weight_factor;
    if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
      bias = c.required_constant(2) * origin.bias_factor;
      if (bias.numel() == 1) bias = bias.reshape({1}).expand({weight.size(0)}).clone();
      if (bias.numel() != weight.size(0)) throw ConfigError(n.label() + ": bias C must have one value per output");
      origin.bias = n.inputs[2];
    }
  } else {
    origin.transposed = true;
    weight = b.t();
  }
  auto shape = LayerShape::linear(weight.size(1), weight.size(0));
  shape.bias = bias.defined();
  return layer_step(c.network.add_layer(n, shape, weight.contiguous(), bias, origin));
}

Step convert_batch_norm(ConvertContext& c) {
  const auto& n = c.node;
  Tensors parameters;
  for (size_t i = 1; i <= 4; ++i) parameters.push_back(c.required_constant(i).reshape({-1}));
  const int64_t channels = parameters[0].numel();
  for (const auto& p : parameters) {
    if (p.numel() != channels) throw ConfigError(n.label() + ": scale, bias, mean and variance differ in size");
  }
  // ONNX's momentum weighs the old running value, LibTorch's the new one.
  auto bn = c.network.add_batch_norm(n, channels, n.float_attribute("epsilon", 1e-5),
                                     1.0 - n.float_attribute("momentum", 0.9), parameters);
  Step s;
  s.wired_inputs = 1;
  s.run = [bn](const Tensors& in) mutable {
    if (batch_norm_is_synchronised(*bn)) return Tensors{synchronised_batch_norm(*bn, in[0])};
    return Tensors{torch::batch_norm(in[0], bn->weight, bn->bias, bn->running_mean, bn->running_var, bn->is_training(),
                                     bn->options.momentum().value(), bn->options.eps(), true)};
  };
  return s;
}

Step convert_clip(ConvertContext& c) {
  const auto& n = c.node;
  std::optional<double> low, high;
  if (n.has("min")) low = n.float_attribute("min", 0);
  if (n.has("max")) high = n.float_attribute("max", 0);
  if (n.inputs.size() > 1 && !n.inputs[1].empty()) low = c.required_constant(1).item<double>();
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) high = c.required_constant(2).item<double>();
  return unary([low, high](const torch::Tensor& x) {
    return torch::clamp(x, low ? c10::optional<c10::Scalar>(*low) : c10::nullopt,
                        high ? c10::optional<c10::Scalar>(*high) : c10::nullopt);
  });
}

Step binary(std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)> f) {
  Step s;
  s.run = [f = std::move(f)](const Tensors& in) { return Tensors{f(in[0], in[1])}; };
  return s;
}

Step convert_pool(ConvertContext& c) {
  const auto& n = c.node;
  if (!n.has("kernel_shape")) throw ConfigError(n.label() + ": kernel_shape is required");
  const auto kernel = pair_of(n, "kernel_shape", 1), stride = pair_of(n, "strides", 1), pads = symmetric_pads(n);
  const bool ceil = n.int_attribute("ceil_mode", 0) != 0;
  if (n.op_type == "MaxPool") {
    if (n.int_attribute("storage_order", 0) != 0) throw ConfigError(n.label() + ": storage_order 1 is not supported");
    if (n.outputs.size() > 1 && !n.outputs[1].empty()) throw ConfigError(n.label() + ": the Indices output is not supported");
    const auto dilation = pair_of(n, "dilations", 1);
    return unary([=](const torch::Tensor& x) { return torch::max_pool2d(x, kernel, stride, pads, dilation, ceil); });
  }
  const bool include_pad = n.int_attribute("count_include_pad", 0) != 0;
  return unary([=](const torch::Tensor& x) { return torch::avg_pool2d(x, kernel, stride, pads, ceil, include_pad); });
}

int64_t axis_of(int64_t axis, int64_t rank, const Node& n) {
  if (axis < -rank || axis >= rank) throw Error(n.label() + ": axis " + std::to_string(axis) + " out of range");
  return axis < 0 ? axis + rank : axis;
}

/// Axes of Squeeze/Unsqueeze: an attribute before opset 13, an input from 13 on.
std::vector<int64_t> axes_of(ConvertContext& c) {
  if (c.node.has("axes")) return c.node.ints_attribute("axes", {});
  if (c.node.inputs.size() > 1 && !c.node.inputs[1].empty()) {
    auto t = c.required_constant(1).to(torch::kLong).contiguous();
    return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
  }
  return {};
}

Step convert_reshape(ConvertContext& c) {
  const bool allow_zero = c.node.int_attribute("allowzero", 0) != 0;
  Step s;
  s.run = [allow_zero, node = &c.node](const Tensors& in) {
    const auto shape_tensor = in[1].to(torch::kCPU, torch::kLong).contiguous();
    std::vector<int64_t> shape(shape_tensor.data_ptr<int64_t>(), shape_tensor.data_ptr<int64_t>() + shape_tensor.numel());
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == 0 && !allow_zero) {
        if (int64_t(i) >= in[0].dim()) throw Error(node->label() + ": shape copies a dimension the input lacks");
        shape[i] = in[0].size(int64_t(i));
      }
    }
    return Tensors{in[0].reshape(shape)};
  };
  return s;
}

Step convert_gather(ConvertContext& c) {
  const int64_t axis = c.node.int_attribute("axis", 0);
  Step s;
  s.run = [axis, node = &c.node](const Tensors& in) {
    const auto& data = in[0];
    const int64_t a = axis_of(axis, data.dim(), *node);
    auto indices = in[1].to(data.device(), torch::kLong);
    indices = torch::where(indices < 0, indices + data.size(a), indices);
    auto flat = data.index_select(a, indices.reshape({-1}));
    std::vector<int64_t> shape(data.sizes().begin(), data.sizes().begin() + a);
    for (auto d : indices.sizes()) shape.push_back(d);
    for (int64_t d = a + 1; d < data.dim(); ++d) shape.push_back(data.size(d));
    return Tensors{flat.reshape(shape)};
  };
  return s;
}

/// Pad: pads as an attribute before opset 11, an input from 11 on; ONNX
/// orders them (x1_begin, x2_begin, ..., x1_end, ...), LibTorch last axis first.
Step convert_pad(ConvertContext& c) {
  const auto& n = c.node;
  std::vector<int64_t> pads = n.ints_attribute("pads", {});
  if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
    auto t = c.required_constant(1).to(torch::kLong).contiguous();
    pads.assign(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
  }
  double value = n.float_attribute("value", 0.0);
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) value = c.required_constant(2).item<double>();
  if (n.inputs.size() > 3 && !n.inputs[3].empty()) throw ConfigError(n.label() + ": the axes input is not supported");
  const auto mode = n.string_attribute("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge") throw ConfigError(n.label() + ": mode " + mode + " is not supported");
  if (pads.size() % 2 != 0) throw ConfigError(n.label() + ": pads must have an even number of values");
  const size_t rank = pads.size() / 2;
  std::vector<int64_t> torch_pads;
  for (size_t axis = rank; axis-- > 0;) {
    torch_pads.push_back(pads[axis]);
    torch_pads.push_back(pads[axis + rank]);
  }
  // LibTorch pads only trailing axes in reflect/edge mode: the leading pads must be 0 there.
  while (torch_pads.size() > 2 && torch_pads[torch_pads.size() - 1] == 0 && torch_pads[torch_pads.size() - 2] == 0) {
    torch_pads.resize(torch_pads.size() - 2);
  }
  return unary([torch_pads, value, mode](const torch::Tensor& x) {
    if (mode == "constant") return torch::constant_pad_nd(x, torch_pads, value);
    if (mode == "reflect") return F::pad(x, F::PadFuncOptions(torch_pads).mode(torch::kReflect));
    return F::pad(x, F::PadFuncOptions(torch_pads).mode(torch::kReplicate));
  });
}

const std::map<std::string, Converter>& converters() {
  static const std::map<std::string, Converter> table = {
      {"Conv", convert_conv},
      {"Gemm", convert_linear},
      {"MatMul",
       [](ConvertContext& c) {
         if (c.constant(1)) return convert_linear(c);
         return binary([](const torch::Tensor& a, const torch::Tensor& b) { return torch::matmul(a, b); });
       }},
      {"BatchNormalization", convert_batch_norm},
      {"Relu", [](ConvertContext&) { return unary([](const torch::Tensor& x) { return torch::relu(x); }); }},
      {"Sigmoid", [](ConvertContext&) { return unary([](const torch::Tensor& x) { return torch::sigmoid(x); }); }},
      {"HardSigmoid",
       [](ConvertContext& c) {
         const double alpha = c.node.float_attribute("alpha", 0.2), beta = c.node.float_attribute("beta", 0.5);
         return unary([=](const torch::Tensor& x) { return torch::clamp(x * alpha + beta, 0.0, 1.0); });
       }},
      {"HardSwish", [](ConvertContext&) { return unary([](const torch::Tensor& x) { return torch::hardswish(x); }); }},
      {"Clip", convert_clip},
      {"Add", [](ConvertContext&) { return binary([](const torch::Tensor& a, const torch::Tensor& b) { return a + b; }); }},
      {"Sub", [](ConvertContext&) { return binary([](const torch::Tensor& a, const torch::Tensor& b) { return a - b; }); }},
      {"Mul", [](ConvertContext&) { return binary([](const torch::Tensor& a, const torch::Tensor& b) { return a * b; }); }},
      {"Div",
       [](ConvertContext&) {
         return binary([](const torch::Tensor& a, const torch::Tensor& b) {
           // Integer division (shape arithmetic) truncates, as ONNX's does.
           return a.is_floating_point() ? a / b : torch::div(a, b, "trunc");
         });
       }},
      {"Concat",
       [](ConvertContext& c) {
         if (!c.node.has("axis")) throw ConfigError(c.node.label() + ": axis is required");
         const int64_t axis = c.node.int_attribute("axis", 1);
         Step s;
         s.run = [axis, node = &c.node](const Tensors& in) {
           Tensors parts;
           for (const auto& t : in) {
             if (t.defined()) parts.push_back(t.dim() == 0 ? t.reshape({1}) : t);
           }
           const bool host = std::all_of(parts.begin(), parts.end(), [](const torch::Tensor& t) { return !t.is_floating_point(); });
           if (host) {
             for (auto& t : parts) t = t.to(torch::kCPU);
           }
           return Tensors{torch::cat(parts, axis_of(axis, parts.at(0).dim(), *node))};
         };
         return s;
       }},
      {"MaxPool", convert_pool},
      {"AveragePool", convert_pool},
      {"GlobalAveragePool",
       [](ConvertContext&) { return unary([](const torch::Tensor& x) { return x.mean({2, 3}, true); }); }},
      {"GlobalMaxPool",
       [](ConvertContext&) { return unary([](const torch::Tensor& x) { return x.amax({2, 3}, true); }); }},
      {"Flatten",
       [](ConvertContext& c) {
         const int64_t axis = c.node.int_attribute("axis", 1);
         return unary([axis, node = &c.node](const torch::Tensor& x) {
           const int64_t a = axis == x.dim() ? axis : axis_of(axis, x.dim(), *node);
           int64_t outer = 1;
           for (int64_t d = 0; d < a; ++d) outer *= x.size(d);
           return x.reshape({outer, -1});
         });
       }},
      {"Reshape", convert_reshape},
      {"Pad", convert_pad},
      {"Dropout",
       [](ConvertContext& c) {
         if (c.node.outputs.size() > 1 && !c.node.outputs[1].empty()) {
           throw ConfigError(c.node.label() + ": the mask output is not supported");
         }
         double ratio = c.node.float_attribute("ratio", 0.5);
         if (c.node.inputs.size() > 1 && !c.node.inputs[1].empty()) ratio = c.required_constant(1).item<double>();
         auto& net = c.network;
         Step s;
         s.wired_inputs = 1;
         // Dropout acts in training (search and retraining), as in the source model.
         s.run = [ratio, &net](const Tensors& in) { return Tensors{F::dropout(in[0], F::DropoutFuncOptions().p(ratio).training(net.is_training()))}; };
         return s;
       }},
      {"Identity", [](ConvertContext&) { return unary([](const torch::Tensor& x) { return x; }); }},
      {"Shape",
       [](ConvertContext& c) {
         const int64_t start = c.node.int_attribute("start", 0), end = c.node.int_attribute("end", INT64_MAX);
         return unary([=](const torch::Tensor& x) {
           const int64_t rank = x.dim();
           auto clampi = [rank](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t(0), rank); };
           std::vector<int64_t> dims(x.sizes().begin() + clampi(start), x.sizes().begin() + std::max(clampi(start), clampi(end)));
           return torch::tensor(dims, torch::kLong);
         });
       }},
      {"Gather", convert_gather},
      {"Unsqueeze",
       [](ConvertContext& c) {
         auto axes = axes_of(c);
         return unary([axes, node = &c.node](const torch::Tensor& x) {
           const int64_t rank = x.dim() + int64_t(axes.size());
           std::vector<int64_t> sorted;
           for (auto a : axes) sorted.push_back(axis_of(a, rank, *node));
           std::sort(sorted.begin(), sorted.end());
           auto out = x;
           for (auto a : sorted) out = out.unsqueeze(a);
           return out;
         });
       }},
      {"Squeeze",
       [](ConvertContext& c) {
         auto axes = axes_of(c);
         return unary([axes, node = &c.node](const torch::Tensor& x) {
           if (axes.empty()) return x.squeeze();
           std::vector<int64_t> sorted;
           for (auto a : axes) sorted.push_back(axis_of(a, x.dim(), *node));
           std::sort(sorted.rbegin(), sorted.rend());
           auto out = x;
           for (auto a : sorted) out = out.squeeze(a);
           return out;
         });
       }},
      {"Cast",
       [](ConvertContext& c) {
         const int64_t to = c.node.int_attribute("to", 1);
         // 1 float, 7 int64, 6 int32, 11 double: the integer ones stay int64.
         const bool to_float = to == 1 || to == 10 || to == 11;
         return unary([to_float](const torch::Tensor& x) { return to_float ? x.to(torch::kFloat) : x.to(torch::kLong); });
       }},
      {"ReduceMean",
       [](ConvertContext& c) {
         auto axes = axes_of(c);
         const bool keep = c.node.int_attribute("keepdims", 1) != 0;
         return unary([axes, keep](const torch::Tensor& x) { return axes.empty() ? x.mean() : x.mean(axes, keep); });
       }},
  };
  return table;
}

}  // namespace

const std::vector<std::string>& supported_onnx_operators() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out = {"Constant"};
    for (const auto& [name, converter] : converters()) out.push_back(name);
    std::sort(out.begin(), out.end());
    return out;
  }();
  return names;
}

Network make_onnx_network(const onnx::Graph& graph, const std::string& model_name, const ModelInput& input,
                          const NetworkPrecision& precision, bool imported_weights) {
  auto network = std::make_shared<OnnxNetworkImpl>(graph, model_name, input, precision, imported_weights);
  torch::NoGradGuard no_grad;
  network->eval();
  network->probing = true;
  const auto logits = network->forward(torch::zeros({2, input.channels, input.height, input.width}));
  network->probing = false;
  network->train();
  if (logits.dim() != 2 || logits.size(1) != input.classes) {
    std::string shape;
    for (auto d : logits.sizes()) shape += (shape.empty() ? "" : " x ") + std::to_string(d);
    throw ConfigError(graph.source + ": output " + graph.output_name + " is " + shape + " but the dataset has " +
                      std::to_string(input.classes) + " classes (expected N x " + std::to_string(input.classes) + ")");
  }
  return network;
}

std::vector<OnnxLayerOrigin> onnx_layer_origins(const NetworkImpl& network) {
  const auto* imported = dynamic_cast<const OnnxNetworkImpl*>(&network);
  return imported ? imported->origins : std::vector<OnnxLayerOrigin>{};
}

std::vector<std::pair<std::string, torch::nn::BatchNorm2d>> onnx_batch_norms(const NetworkImpl& network) {
  const auto* imported = dynamic_cast<const OnnxNetworkImpl*>(&network);
  return imported ? imported->batch_norms : std::vector<std::pair<std::string, torch::nn::BatchNorm2d>>{};
}

}  // namespace edmips
