// models: a built-in network written out as a float ONNX graph, node for node
// what its forward pass computes (eval mode), so `edmips export` writes a
// built-in model's trial exactly as it writes an imported one: the layers'
// Conv / Gemm nodes get their quantizers and trained weights there
// (onnx/onnx_export). Each model's NetworkImpl::describe calls this.
#pragma once

#include <torch/nn/modules/batchnorm.h>

#include <map>
#include <string>
#include <vector>

#include "models/network.h"
#include "models/onnx_network.h"
#include "onnx/onnx_export.h"

namespace edmips {

/// A tensor's values as floats on the host, in row-major order.
std::vector<float> float_values(const torch::Tensor& t);

/// Builds the graph of a forward pass, one call per operation; every call
/// returns the name of the value it computes.
class GraphDescriber {
 public:
  explicit GraphDescriber(const ModelInput& input);
  const std::string& input() const { return spec_.input; }
  /// A QuantLayer: its own ReLU first where it reads a pre-activation (the
  /// built-in layers' HWGQ clips at 0: the export puts the quantizer after
  /// it), then the Conv or Gemm node named as the layer.
  std::string layer(const QuantLayerImpl& layer, const std::string& x);
  std::string batch_norm(const torch::nn::BatchNorm2dImpl& bn, const std::string& name, const std::string& x);
  std::string relu(const std::string& name, const std::string& x);
  std::string max_pool(const std::string& name, const std::string& x, int64_t kernel, int64_t stride,
                       int64_t padding, bool ceil_mode = false);
  /// AveragePool counting the zero padding (PyTorch's avg_pool2d default).
  std::string average_pool(const std::string& name, const std::string& x, int64_t kernel, int64_t stride,
                           int64_t padding);
  /// Concatenation along the channels.
  std::string concat(const std::string& name, const std::vector<std::string>& xs);
  std::string add(const std::string& name, const std::string& a, const std::string& b);
  /// adaptive_avg_pool2d(x, 1).flatten(1): GlobalAveragePool and Flatten.
  std::string global_average_pool_flat(const std::string& name, const std::string& x);
  std::string flatten(const std::string& name, const std::string& x);
  /// Ends the graph: `x` is the logits.
  void output(const std::string& x);

  const onnx::GraphSpec& spec() const { return spec_; }
  /// Where each layer is in the graph, by layer name.
  const std::map<std::string, OnnxLayerOrigin>& origins() const { return origins_; }

 private:
  std::string node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                   onnx::GraphSpec::Node extra = {});
  std::string tensor(const std::string& name, const torch::Tensor& t);
  onnx::GraphSpec spec_;
  std::map<std::string, OnnxLayerOrigin> origins_;
};

/// A built-in network's graph, serialized, and its layers' origins in the
/// order of network.layers(). ConfigError for a network that cannot say.
struct BuiltinGraph {
  std::string model;  ///< ONNX ModelProto bytes
  std::vector<OnnxLayerOrigin> origins;
};
BuiltinGraph describe_builtin(const NetworkImpl& network, const ModelInput& input);

}  // namespace edmips
