// nn: the one layer type every model is built from. A QuantLayer is a
// convolution or linear layer that is full precision, searchable (composite
// activation + composite weight, ONE convolution per forward) or fixed-bit.
// Its input is a pre-activation: the layer applies ReLU / HWGQ itself, so the
// same model code builds float, search and fixed networks. Depends on quant/.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/precision.h"

namespace edmips {

enum class LayerKind { conv, linear };

/// Sees (point name, tensor) at named points of a forward pass, for tests that
/// pin a model's layout: every QuantLayer reports its input as "<name>.input".
using ForwardProbe = std::function<void(const std::string& point, const torch::Tensor& value)>;

/// Geometry of a convolution or linear layer.
struct LayerShape {
  LayerKind kind = LayerKind::conv;
  int64_t in_channels = 0, out_channels = 0;
  int64_t kernel = 1, stride = 1, padding = 0, groups = 1;
  bool bias = false;
  static LayerShape conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1,
                         int64_t padding = 0, int64_t groups = 1) {
    return {LayerKind::conv, in, out, kernel, stride, padding, groups, false};
  }
  static LayerShape linear(int64_t in, int64_t out) {
    return {LayerKind::linear, in, out, 1, 1, 0, 1, true};
  }
};

/// How one layer is quantized.
struct LayerPrecision {
  PrecisionMode mode = PrecisionMode::full_precision;
  std::vector<int> weight_bits;      ///< candidates (search) or the one fixed value
  std::vector<int> activation_bits;  ///< candidates (search) or the one fixed value
  /// The input is raw data (the image): no activation function, and when the
  /// layer is quantized its inputs count as 8-bit data.
  bool input_is_data = false;
  double arch_init = 0.01;
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

  /// softmax(alpha / temperature); search layers only.
  torch::Tensor weight_probabilities() const;
  torch::Tensor activation_probabilities() const;
  /// The softmax temperature of the search (1 in the released code; an
  /// annealed search lowers it so the probabilities commit).
  void set_temperature(double temperature) { temperature_ = temperature; }
  double temperature() const { return temperature_; }
  /// E[bits] under the probabilities (differentiable); the fixed bits otherwise.
  torch::Tensor expected_weight_bits() const;
  torch::Tensor expected_activation_bits() const;

  LayerReport report() const;

  torch::Tensor weight;
  torch::Tensor bias;
  torch::Tensor alpha_weight;      ///< search only: one logit per weight candidate
  torch::Tensor alpha_activation;  ///< search only: one logit per activation candidate
  torch::Tensor weight_candidate_bits, activation_candidate_bits;  ///< search only: the candidates, as floats

 private:
  torch::Tensor apply(const torch::Tensor& input, const torch::Tensor& w) const;
  torch::Tensor activate(const torch::Tensor& x) const;
  torch::Tensor quantized_weight() const;
  void record_macs(const torch::Tensor& output);

  std::string name_;
  LayerShape shape_;
  LayerPrecision precision_;
  int64_t macs_ = 0;
  bool naive_ = false;
  double temperature_ = 1.0;
  std::shared_ptr<const ForwardProbe> probe_;
};
TORCH_MODULE(QuantLayer);

/// Prefix of the architecture parameters' names (for optimiser groups).
constexpr const char* kArchParameterPrefix = "alpha_";

}  // namespace edmips
