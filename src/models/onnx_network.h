// models: a network imported from an ONNX graph. Every Conv and every Gemm or
// MatMul whose weight is an initializer becomes a QuantLayer (searchable,
// fixed-bit or float like a built-in model's); every other operator of the
// supported set runs as the graph says. Depends on nn/ and onnx/.
#pragma once

#include <string>
#include <vector>

#include "models/network.h"
#include "onnx/onnx_graph.h"

namespace edmips {

/// The operators the importer handles (default domain), sorted.
const std::vector<std::string>& supported_onnx_operators();

/// Builds `graph` as a network named `model_name` for `input` (whose channels,
/// size and classes the graph must match: ConfigError naming the file
/// otherwise). With `imported_weights` the layers and BatchNorms take the
/// file's weights and running statistics; without, they are initialised as
/// the built-in models' are (the paper's from-scratch protocol). Unsupported
/// operators, attributes and unresolvable shapes are ConfigErrors naming the
/// file, the node and its op type.
Network make_onnx_network(const onnx::Graph& graph, const std::string& model_name, const ModelInput& input,
                          const NetworkPrecision& precision, bool imported_weights);

/// Where an imported layer came from in the graph: what the exporter needs
/// to put quantizers back into the same file.
struct OnnxLayerOrigin {
  std::string layer;        ///< the QuantLayer's name
  std::string node;         ///< the Conv / Gemm / MatMul node's name
  std::string data_input;   ///< the value the node reads (quantized activations go there)
  std::string weight;       ///< the weight initializer's name
  std::string bias;         ///< the bias initializer's name, "" when none
  bool transposed = false;  ///< MatMul, or Gemm with transB = 0: the file holds weight^T
  double weight_factor = 1; ///< Gemm's alpha (the layer holds alpha * B)
  double bias_factor = 1;   ///< Gemm's beta
};

/// The origins of an imported network's layers, in layer order (empty for a
/// built-in model).
std::vector<OnnxLayerOrigin> onnx_layer_origins(const NetworkImpl& network);

/// The BatchNormalization nodes of an imported network: node name -> the
/// module holding its (possibly retrained) parameters and statistics.
std::vector<std::pair<std::string, torch::nn::BatchNorm2d>> onnx_batch_norms(const NetworkImpl& network);

}  // namespace edmips
