#include "models/network.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/error.h"

namespace edmips {

void NetworkImpl::describe(GraphDescriber&) const {
  throw ConfigError("model " + model_name_ + " cannot be written as an ONNX graph");
}

QuantLayer LayerBuilder::make(const std::string& name, const LayerShape& shape, bool quantize,
                              bool is_data, LayerInput input) {
  LayerPrecision p;
  p.input = is_data ? LayerInput::data : input;
  p.arch_init = precision_.arch_init;
  p.mac_convention = precision_.mac_convention;
  p.step_table = precision_.step_table;
  p.mode = quantize ? precision_.mode : PrecisionMode::full_precision;
  if (p.mode == PrecisionMode::search) {
    p.weight_bits = precision_.weight_candidates;
    p.activation_bits = precision_.activation_candidates;
  } else if (p.mode == PrecisionMode::fixed) {
    const auto& all = precision_.fixed_bits;
    // One unnamed pair is a uniform precision; named pairs are one per layer.
    const bool uniform = all.size() == 1 && all[0].layer.empty();
    const auto& bits = uniform ? all[0]
                       : quantized_count_ < all.size() ? all[quantized_count_]
                                                       : all.back();  // mismatch reported by finish()
    if (quantize && !uniform && !bits.layer.empty() && bits.layer != name && quantized_count_ < all.size()) {
      throw ConfigError("/layers/" + std::to_string(quantized_count_) + ": for layer \"" + bits.layer +
                        "\", but the model's quantized layer " + std::to_string(quantized_count_) + " is \"" +
                        name + "\"");
    }
    p.weight_bits = {bits.weight_bits};
    p.activation_bits = {bits.activation_bits};
  }
  if (quantize && precision_.mode != PrecisionMode::full_precision) ++quantized_count_;
  layers_.emplace_back(name, shape, p);
  return layers_.back();
}

QuantLayer LayerBuilder::first(const std::string& name, const LayerShape& shape) {
  return make(name, shape, !precision_.full_precision_first, true, LayerInput::data);
}
QuantLayer LayerBuilder::inner(const std::string& name, const LayerShape& shape, LayerInput input) {
  return make(name, shape, true, false, input);
}
QuantLayer LayerBuilder::last(const std::string& name, const LayerShape& shape, LayerInput input) {
  return make(name, shape, !precision_.full_precision_last, false, input);
}

std::vector<QuantLayer> LayerBuilder::finish(const std::string& model) const {
  const bool uniform = precision_.fixed_bits.size() == 1 && precision_.fixed_bits[0].layer.empty();
  if (precision_.mode == PrecisionMode::fixed && !uniform && precision_.fixed_bits.size() != quantized_count_) {
    throw ConfigError("/layers: " + std::to_string(precision_.fixed_bits.size()) + " layers, but model " + model +
                      " has " + std::to_string(quantized_count_) + " quantized layers");
  }
  if (precision_.mode == PrecisionMode::fixed && precision_.fixed_bits.empty()) {
    throw ConfigError("fixed precision needs at least one bit pair");
  }
  return layers_;
}

void NetworkImpl::set_naive_search(bool naive) {
  for (auto& layer : layers_) layer->set_naive_search(naive);
}

bool NetworkImpl::needs_calibration() const {
  return std::any_of(layers_.begin(), layers_.end(), [](const QuantLayer& l) { return l->scales_input(); });
}

void NetworkImpl::set_calibrating(bool on) {
  for (auto& layer : layers_) layer->set_calibrating(on);
}

torch::Tensor NetworkImpl::choice_indices() const {
  std::vector<torch::Tensor> parts;
  for (const auto& layer : layers_) {
    if (layer->searching()) parts.push_back(layer->choice_indices());
  }
  return parts.empty() ? torch::empty({0}, torch::kLong) : torch::cat(parts);
}

void NetworkImpl::set_temperature(double temperature) {
  for (auto& layer : layers_) layer->set_temperature(temperature);
}

std::vector<torch::Tensor> NetworkImpl::weight_parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& item : named_parameters()) {
    if (item.key().find(kArchParameterPrefix) == std::string::npos) out.push_back(item.value());
  }
  return out;
}

std::vector<torch::Tensor> NetworkImpl::arch_parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& layer : layers_) {
    if (!layer->searching()) continue;
    out.push_back(layer->alpha_weight);
    out.push_back(layer->alpha_activation);
  }
  return out;
}

torch::Tensor NetworkImpl::complexity_loss(ComplexityNormaliser normaliser) const {
  torch::Tensor total;
  double normal = 0.0;
  for (const auto& layer : layers_) {
    if (!layer->searching()) continue;
    if (normaliser == ComplexityNormaliser::first_layer && normal == 0.0) normal = double(layer->macs());
    if (normaliser == ComplexityNormaliser::total) normal += double(layer->macs());
    auto term = layer->expected_weight_bits() * layer->expected_activation_bits() * double(layer->macs());
    total = total.defined() ? total + term : term;
  }
  if (!total.defined()) return torch::zeros({});
  return total / normal;
}

std::vector<torch::Tensor> NetworkImpl::cost_matrices(const CostModel& model, ComplexityNormaliser normaliser,
                                                      double* normal_out) const {
  struct Priced {
    const QuantLayerImpl* layer;
    std::vector<double> costs;  ///< row-major, weights x activations
  };
  std::vector<Priced> priced;
  double normal = 0.0;
  for (const auto& layer : layers_) {
    if (!layer->searching()) continue;
    const auto input = layer->cost_input();
    const auto& weights = layer->precision().weight_bits;
    const auto& activations = layer->precision().activation_bits;  // {8} for the image
    Priced p{layer.get(), {}};
    for (int w : weights) {
      for (int a : activations) p.costs.push_back(model.layer_cost(input, w, a));
    }
    const double unit = p.costs.front() / double(weights.front() * activations.front());
    if (normaliser == ComplexityNormaliser::total || priced.empty()) normal += unit;
    priced.push_back(std::move(p));
  }
  if (normal <= 0) normal = 1;  // a free cheapest pair: the costs as they are
  if (normal_out) *normal_out = normal;
  std::vector<torch::Tensor> out;
  for (const auto& p : priced) {
    std::vector<double> scaled;
    for (double v : p.costs) scaled.push_back(v / normal);
    const auto rows = int64_t(p.layer->precision().weight_bits.size());
    // In the architecture parameters' dtype and device (float in a search).
    const auto options = p.layer->alpha_weight.options();
    out.push_back(torch::tensor(scaled, options.dtype(torch::kDouble)).to(options.dtype()).view({rows, -1}));
  }
  return out;
}

torch::Tensor NetworkImpl::expected_cost(const std::vector<torch::Tensor>& matrices) const {
  torch::Tensor total;
  size_t l = 0;
  for (const auto& layer : layers_) {
    if (!layer->searching()) continue;
    const auto& m = matrices.at(l++);
    const auto pa = m.size(1) == 1 ? torch::ones({1}, m.options()) : layer->activation_probabilities();
    auto term = torch::matmul(layer->weight_probabilities(), torch::matmul(m, pa));
    total = total.defined() ? total + term : term;
  }
  return total.defined() ? total : torch::zeros({});
}

std::vector<LayerReport> NetworkImpl::layer_reports() const {
  std::vector<LayerReport> out;
  for (const auto& layer : layers_) out.push_back(layer->report());
  return out;
}

}  // namespace edmips
