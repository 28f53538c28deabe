#include "models/builtin_graph.h"

#include <torch/torch.h>

#include "core/error.h"

namespace edmips {

GraphDescriber::GraphDescriber(const ModelInput& input) {
  spec_.input = "input";
  spec_.output = "logits";
  spec_.channels = input.channels;
  spec_.height = input.height;
  spec_.width = input.width;
  spec_.classes = input.classes;
}

std::vector<float> float_values(const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::string GraphDescriber::tensor(const std::string& name, const torch::Tensor& t) {
  onnx::GraphSpec::Tensor out;
  out.name = name;
  for (auto d : t.sizes()) out.dims.push_back(d);
  out.values = float_values(t);
  spec_.initializers.push_back(std::move(out));
  return name;
}

std::string GraphDescriber::node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                                 onnx::GraphSpec::Node extra) {
  extra.op = op;
  extra.name = name;
  extra.inputs = std::move(inputs);
  extra.outputs = {name};  // each node's one value is called as the node
  spec_.nodes.push_back(std::move(extra));
  return name;
}

std::string GraphDescriber::layer(const QuantLayerImpl& l, const std::string& x) {
  const auto& name = l.layer_name();
  const auto& s = l.shape();
  std::string in = x;
  if (l.precision().input == LayerInput::pre_activation) in = relu(name + ".relu", x);
  else if (l.precision().input != LayerInput::data) {
    throw ConfigError("layer " + name + ": only the built-in quantizer rule can be described");
  }
  std::vector<std::string> inputs = {in, tensor(name + ".weight", l.weight)};
  if (l.bias.defined()) inputs.push_back(tensor(name + ".bias", l.bias));
  onnx::GraphSpec::Node attributes;
  std::string op = "Conv";
  if (s.kind == LayerKind::linear) {
    op = "Gemm";
    attributes.int_scalars = {{"transB", 1}};
  } else {
    attributes.ints = {{"kernel_shape", {s.kernel[0], s.kernel[1]}},
                       {"strides", {s.stride[0], s.stride[1]}},
                       {"pads", {s.padding[0], s.padding[1], s.padding[0], s.padding[1]}},
                       {"dilations", {s.dilation[0], s.dilation[1]}}};
    attributes.int_scalars = {{"group", s.groups}};
  }
  OnnxLayerOrigin origin;
  origin.layer = name;
  origin.node = name;
  origin.data_input = in;
  origin.weight = name + ".weight";
  if (l.bias.defined()) origin.bias = name + ".bias";
  origins_[name] = origin;
  return node(op, name, inputs, attributes);
}

std::string GraphDescriber::batch_norm(const torch::nn::BatchNorm2dImpl& bn, const std::string& name,
                                       const std::string& x) {
  onnx::GraphSpec::Node attributes;
  attributes.floats = {{"epsilon", float(bn.options.eps())}};
  return node("BatchNormalization", name,
              {x, tensor(name + ".weight", bn.weight), tensor(name + ".bias", bn.bias),
               tensor(name + ".running_mean", bn.running_mean), tensor(name + ".running_var", bn.running_var)},
              attributes);
}

std::string GraphDescriber::relu(const std::string& name, const std::string& x) { return node("Relu", name, {x}); }

std::string GraphDescriber::max_pool(const std::string& name, const std::string& x, int64_t kernel, int64_t stride,
                                     int64_t padding, bool ceil_mode) {
  onnx::GraphSpec::Node attributes;
  attributes.ints = {{"kernel_shape", {kernel, kernel}},
                     {"strides", {stride, stride}},
                     {"pads", {padding, padding, padding, padding}}};
  if (ceil_mode) attributes.int_scalars = {{"ceil_mode", 1}};
  return node("MaxPool", name, {x}, attributes);
}

std::string GraphDescriber::average_pool(const std::string& name, const std::string& x, int64_t kernel,
                                         int64_t stride, int64_t padding) {
  onnx::GraphSpec::Node attributes;
  attributes.ints = {{"kernel_shape", {kernel, kernel}},
                     {"strides", {stride, stride}},
                     {"pads", {padding, padding, padding, padding}}};
  attributes.int_scalars = {{"count_include_pad", 1}};
  return node("AveragePool", name, {x}, attributes);
}

std::string GraphDescriber::concat(const std::string& name, const std::vector<std::string>& xs) {
  onnx::GraphSpec::Node attributes;
  attributes.int_scalars = {{"axis", 1}};
  return node("Concat", name, xs, attributes);
}

std::string GraphDescriber::add(const std::string& name, const std::string& a, const std::string& b) {
  return node("Add", name, {a, b});
}

std::string GraphDescriber::global_average_pool_flat(const std::string& name, const std::string& x) {
  return flatten(name + ".flatten", node("GlobalAveragePool", name, {x}));
}

std::string GraphDescriber::flatten(const std::string& name, const std::string& x) {
  onnx::GraphSpec::Node attributes;
  attributes.int_scalars = {{"axis", 1}};
  return node("Flatten", name, {x}, attributes);
}

void GraphDescriber::output(const std::string& x) { node("Identity", spec_.output, {x}); }

BuiltinGraph describe_builtin(const NetworkImpl& network, const ModelInput& input) {
  GraphDescriber d(input);
  network.describe(d);
  BuiltinGraph g;
  g.model = onnx::serialize_graph(d.spec());
  for (const auto& l : network.layers()) {
    const auto it = d.origins().find(l->layer_name());
    if (it == d.origins().end()) {
      throw Error("model " + network.model_name() + ": layer " + l->layer_name() + " missing from its graph");
    }
    g.origins.push_back(it->second);
  }
  return g;
}

}  // namespace edmips
