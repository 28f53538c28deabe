// nn: the one layer type every model is built from. A QuantLayer is a
// convolution or linear layer that is full precision, searchable (composite
// activation + composite weight, ONE convolution per forward) or fixed-bit.
// A built-in model's layer takes a pre-activation and applies ReLU / HWGQ
// itself, so the same model code builds float, search and fixed networks; an
// imported graph's layer takes whatever the graph computed (LayerInput says
// which). Depends on quant/.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/cost_model.h"
#include "nn/precision.h"

namespace edmips {

enum class LayerKind { conv, linear };

/// Sees (point name, tensor) at named points of a forward pass, for tests that
/// pin a model's layout: every QuantLayer reports its input as "<name>.input".
using ForwardProbe = std::function<void(const std::string& point, const torch::Tensor& value)>;

/// Geometry of a convolution or linear layer; 2-D fields are (height, width).
struct LayerShape {
  LayerKind kind = LayerKind::conv;
  int64_t in_channels = 0, out_channels = 0;
  std::array<int64_t, 2> kernel{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
  bool bias = false;
  /// A square convolution without bias (the built-in models').
  static LayerShape conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1,
                         int64_t padding = 0, int64_t groups = 1) {
    LayerShape s;
    s.in_channels = in;
    s.out_channels = out;
    s.kernel = {kernel, kernel};
    s.stride = {stride, stride};
    s.padding = {padding, padding};
    s.groups = groups;
    return s;
  }
  static LayerShape linear(int64_t in, int64_t out) {
    LayerShape s;
    s.kind = LayerKind::linear;
    s.in_channels = in;
    s.out_channels = out;
    s.bias = true;
    return s;
  }
};

/// What a layer's input is, which decides its activation function.
/// docs/onnx.md gives the rule for imported graphs and why.
enum class LayerInput {
  /// Built-in models: a batch-normalised pre-activation; the layer applies
  /// ReLU (float) or HWGQ at the trial's fixed steps (quantized).
  pre_activation,
  /// The image: no activation; a quantized layer counts it as 8-bit data.
  data,
  /// Imported graphs, behind a ReLU (or another non-negative op): identity
  /// in float; quantized, HWGQ's steps times the input's running scale.
  non_negative,
  /// Imported graphs, any sign (a residual stream, a linear bottleneck):
  /// identity in float; quantized, the mid-rise Gaussian quantizer (the
  /// weights' rule) times the input's running scale.
  signed_values,
};

/// How one layer is quantized.
struct LayerPrecision {
  PrecisionMode mode = PrecisionMode::full_precision;
  std::vector<int> weight_bits;      ///< candidates (search) or the one fixed value
  std::vector<int> activation_bits;  ///< candidates (search) or the one fixed value
  LayerInput input = LayerInput::pre_activation;
  double arch_init = 0.01;
  MacConvention mac_convention = MacConvention::output;
  StepTable step_table = StepTable::computed;  ///< the quantizers' step constants
};

class QuantLayerImpl : public torch::nn::Module {
 public:
  QuantLayerImpl(std::string name, LayerShape shape, LayerPrecision precision);

  /// activation(x) then conv/linear with the (composite) quantized weight.
  torch::Tensor forward(const torch::Tensor& x);
  /// The naive search forward: |W|x|A| separate convolutions mixed by
  /// pi_w[i]*pi_a[j]. Only for tests and benchmarks of the composite trick.
  torch::Tensor forward_naive(const torch::Tensor& x);
  /// Makes forward() use forward_naive() (benchmarks of the naive search).
  void set_naive_search(bool naive) { naive_ = naive; }
  /// Shares the network's probe (empty unless a test sets it).
  void set_probe(std::shared_ptr<const ForwardProbe> probe) { probe_ = std::move(probe); }

  const std::string& layer_name() const { return name_; }
  const LayerShape& shape() const { return shape_; }
  const LayerPrecision& precision() const { return precision_; }
  bool quantized() const { return precision_.mode != PrecisionMode::full_precision; }
  bool searching() const { return precision_.mode == PrecisionMode::search; }
  /// MACs of one sample, known after the first forward pass.
  int64_t macs() const { return macs_; }
  /// What a cost model prices this layer by (after a forward pass): name,
  /// shape key ("conv 16>32 k3x3 s1x1 g1 in 32x32", "linear 64>10"), MACs,
  /// parameters and input activations per image.
  LayerCostInput cost_input() const;

  /// softmax(alpha / temperature); search layers only.
  torch::Tensor weight_probabilities() const;
  torch::Tensor activation_probabilities() const;
  /// Search layers: the indices of the chosen weight and activation
  /// candidates (argmax of the logits; 0 for a data input's activation), on
  /// the layer's device, no host synchronisation.
  torch::Tensor choice_indices() const;
  /// The softmax temperature of the search (1 in the released code; an
  /// annealed search lowers it so the probabilities commit).
  void set_temperature(double temperature) { temperature_ = temperature; }
  double temperature() const { return temperature_; }
  /// E[bits] under the probabilities (differentiable); the fixed bits otherwise.
  torch::Tensor expected_weight_bits() const;
  torch::Tensor expected_activation_bits() const;

  LayerReport report() const;

  /// Whether the quantized activation is scaled by a running estimate of the
  /// input's scale (imported graphs' layers), held in `input_scale`.
  bool scales_input() const {
    return quantized() && (precision_.input == LayerInput::non_negative ||
                           precision_.input == LayerInput::signed_values);
  }
  /// Calibration: while on, every forward (also in eval mode) adds its batch's
  /// scale to an equal-weight mean that becomes `input_scale`.
  void set_calibrating(bool on);
  /// The input scale the quantizer uses now: the running estimate, or the
  /// batch's own while none has been measured (0 in the buffer).
  torch::Tensor current_input_scale(const torch::Tensor& x);

  torch::Tensor weight;
  torch::Tensor bias;
  torch::Tensor alpha_weight;      ///< search only: one logit per weight candidate
  torch::Tensor alpha_activation;  ///< search only: one logit per activation candidate
  torch::Tensor weight_candidate_bits, activation_candidate_bits;  ///< search only: the candidates, as floats
  /// scales_input() only: the input's scale, sqrt(mean(x^2)) (times sqrt 2
  /// behind a ReLU, the scale of the Gaussian a half-wave came from); 0 until
  /// measured. Momentum 0.1 in training, fixed in evaluation.
  torch::Tensor input_scale;

 private:
  torch::Tensor apply(const torch::Tensor& input, const torch::Tensor& w) const;
  torch::Tensor activate(const torch::Tensor& x);
  torch::Tensor activate_scaled(const torch::Tensor& x);
  torch::Tensor quantized_weight() const;
  void record_macs(const torch::Tensor& input, const torch::Tensor& output);

  std::string name_;
  LayerShape shape_;
  LayerPrecision precision_;
  int64_t macs_ = 0;
  std::array<int64_t, 2> input_size_{0, 0};  ///< conv: the input's height and width (first forward)
  int64_t input_elements_ = 0;               ///< the input's values per image (first forward)
  bool naive_ = false;
  double temperature_ = 1.0;
  bool calibrating_ = false;
  int64_t calibration_batches_ = 0;
  std::shared_ptr<const ForwardProbe> probe_;
};
TORCH_MODULE(QuantLayer);

/// Prefix of the architecture parameters' names (for optimiser groups).
constexpr const char* kArchParameterPrefix = "alpha_";

}  // namespace edmips
