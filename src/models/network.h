// models: the network base type and the model zoo. Each model is written once
// against LayerBuilder and so builds in float, search and fixed-bit form.
// Depends on nn/.
#pragma once

#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <vector>

#include "nn/precision.h"
#include "nn/quant_layer.h"

namespace edmips {

/// What the dataset tells the model: input geometry and number of classes.
struct ModelInput {
  int64_t channels = 1, height = 28, width = 28, classes = 10;
};

/// How the complexity loss is normalised.
enum class ComplexityNormaliser {
  first_layer,  ///< by the MACs of the first searched layer (the released code; its lambdas carry over)
  total,        ///< by all quantized MACs (complexity = expected normalised bits squared)
};

/// Hands out QuantLayers with the right precision, in network order.
class LayerBuilder {
 public:
  explicit LayerBuilder(NetworkPrecision precision) : precision_(std::move(precision)) {}
  /// The network's first layer (its input is the image).
  QuantLayer first(const std::string& name, const LayerShape& shape);
  /// An inner layer: quantized unless the network is full precision.
  QuantLayer inner(const std::string& name, const LayerShape& shape,
                   LayerInput input = LayerInput::pre_activation);
  /// The classifier.
  QuantLayer last(const std::string& name, const LayerShape& shape,
                  LayerInput input = LayerInput::pre_activation);
  /// Checks a fixed allocation matched the layers; returns every layer made.
  std::vector<QuantLayer> finish(const std::string& model) const;

 private:
  QuantLayer make(const std::string& name, const LayerShape& shape, bool quantize, bool is_data,
                  LayerInput input);
  NetworkPrecision precision_;
  std::vector<QuantLayer> layers_;
  size_t quantized_count_ = 0;
};

class GraphDescriber;  // models/builtin_graph.h

class NetworkImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  /// Writes the forward pass (eval mode) into `d` as a float ONNX graph
  /// (models/builtin_graph.h): the built-in models do; others refuse.
  virtual void describe(GraphDescriber& d) const;
  /// Switches every search layer to the naive |W|x|A| form (benchmarks, tests).
  void set_naive_search(bool naive);
  /// Every search layer's choice_indices(), concatenated (int64, on the
  /// network's device); empty without search layers.
  torch::Tensor choice_indices() const;
  /// Sets every search layer's softmax temperature.
  void set_temperature(double temperature);
  /// Whether some layer scales its quantized input by a measured scale (an
  /// imported graph, quantized): such a network is calibrated before use.
  bool needs_calibration() const;
  /// Switches calibration of those scales on or off (QuantLayerImpl::set_calibrating).
  void set_calibrating(bool on);
  /// Calls `probe` at the model's named points during forward (tests of the
  /// layout); an empty function switches it off.
  void set_probe(ForwardProbe probe) { *probe_ = std::move(probe); }

  const std::string& model_name() const { return model_name_; }
  const std::vector<QuantLayer>& layers() const { return layers_; }
  /// Network weights (everything but the architecture parameters).
  std::vector<torch::Tensor> weight_parameters() const;
  /// alpha_weight / alpha_activation of every search layer.
  std::vector<torch::Tensor> arch_parameters() const;

  /// sum_l MACs_l * E[weight_bits_l] * E[activation_bits_l] / normaliser.
  torch::Tensor complexity_loss(ComplexityNormaliser normaliser) const;
  /// Per search layer, in order, the |W| x |A| matrix C_l(w_i, a_j) / normal
  /// under `model` (float, on the layers' device; one column for a layer fed
  /// the image). normal is the first search layer's (first_layer) or every
  /// search layer's summed (total) cost per bit squared at its cheapest pair,
  /// C(w_min, a_min) / (w_min * a_min): MACs under BitOps, as the loss above.
  /// ConfigError for a table without a layer or pair.
  /// `normal`, when given, receives normal.
  std::vector<torch::Tensor> cost_matrices(const CostModel& model, ComplexityNormaliser normaliser,
                                           double* normal_out = nullptr) const;
  /// The expected cost under the search probabilities,
  /// sum_l pi_w[l]^T M_l pi_a[l], exact and differentiable in both.
  torch::Tensor expected_cost(const std::vector<torch::Tensor>& matrices) const;
  std::vector<LayerReport> layer_reports() const;

 protected:
  void set_layers(std::string model, std::vector<QuantLayer> layers) {
    model_name_ = std::move(model);
    layers_ = std::move(layers);
    for (auto& layer : layers_) layer->set_probe(probe_);
  }
  /// The probe, for the model's own sub-modules (blocks) to hold.
  std::shared_ptr<const ForwardProbe> probe() const { return probe_; }

 private:
  std::string model_name_;
  std::vector<QuantLayer> layers_;
  std::shared_ptr<ForwardProbe> probe_ = std::make_shared<ForwardProbe>();
};
using Network = std::shared_ptr<NetworkImpl>;

/// Builds `name` for `input`; runs one probe forward so every layer knows its
/// MACs. Throws ConfigError for an unknown name (suggesting the near one).
Network make_network(const std::string& name, const ModelInput& input,
                     const NetworkPrecision& precision);

/// Which network a trial builds: a built-in model, or an imported ONNX graph.
struct ModelSpec {
  std::string name;               ///< the built-in model's, or the imported model's display name
  std::string onnx_path;          ///< non-empty: import this file (models/onnx_network.h)
  bool imported_weights = false;  ///< ONNX: start from the file's weights, else from random ones
};
Network make_network(const ModelSpec& model, const ModelInput& input, const NetworkPrecision& precision);

}  // namespace edmips
