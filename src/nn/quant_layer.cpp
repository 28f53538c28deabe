#include "nn/quant_layer.h"

#include <cmath>

#include <torch/torch.h>

#include "core/error.h"
#include "quant/quantizers.h"

namespace edmips {
namespace {
// Input data (images) are 8-bit; a quantized first layer counts them so.
constexpr int kDataBits = 8;

torch::Tensor bits_tensor(const std::vector<int>& bits) {
  std::vector<float> values(bits.begin(), bits.end());
  return torch::tensor(values);
}
}  // namespace

QuantLayerImpl::QuantLayerImpl(std::string name, LayerShape shape, LayerPrecision precision)
    : name_(std::move(name)), shape_(shape), precision_(std::move(precision)) {
  if (precision_.input == LayerInput::data && quantized()) precision_.activation_bits = {kDataBits};
  if (quantized() && (precision_.weight_bits.empty() || precision_.activation_bits.empty())) {
    throw Error("layer " + name_ + ": quantized layer without bit-widths");
  }
  if (precision_.mode == PrecisionMode::fixed &&
      (precision_.weight_bits.size() != 1 || precision_.activation_bits.size() != 1)) {
    throw Error("layer " + name_ + ": a fixed layer takes exactly one bit pair");
  }
  if (shape_.kind == LayerKind::conv) {
    weight = register_parameter(
        "weight", torch::empty({shape_.out_channels, shape_.in_channels / shape_.groups,
                                shape_.kernel[0], shape_.kernel[1]}));
    torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);
  } else {
    weight = register_parameter("weight", torch::empty({shape_.out_channels, shape_.in_channels}));
    torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  }
  if (shape_.bias) {
    const double bound = 1.0 / std::sqrt(double(shape_.in_channels / shape_.groups) *
                                         double(shape_.kernel[0] * shape_.kernel[1]));
    bias = register_parameter("bias", torch::empty({shape_.out_channels}).uniform_(-bound, bound));
  }
  if (searching()) {
    alpha_weight = register_parameter(
        "alpha_weight",
        torch::full({int64_t(precision_.weight_bits.size())}, precision_.arch_init));
    alpha_activation = register_parameter(
        "alpha_activation",
        torch::full({int64_t(precision_.activation_bits.size())}, precision_.arch_init));
    // Buffers, so they follow the layer to its device: no host copy per step.
    weight_candidate_bits = register_buffer("weight_candidate_bits", bits_tensor(precision_.weight_bits));
    activation_candidate_bits = register_buffer("activation_candidate_bits", bits_tensor(precision_.activation_bits));
  }
  if (scales_input()) input_scale = register_buffer("input_scale", torch::zeros({}));
}

void QuantLayerImpl::set_calibrating(bool on) {
  calibrating_ = on && scales_input();
  calibration_batches_ = 0;
}

torch::Tensor QuantLayerImpl::current_input_scale(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  auto batch = x.detach().square().mean().sqrt();
  // A half-wave's RMS is 1/sqrt 2 of the Gaussian's it was cut from.
  if (precision_.input == LayerInput::non_negative) batch = batch * std::sqrt(2.0);
  batch = batch.clamp_min(1e-12);
  if (calibrating_) {
    const double n = double(++calibration_batches_);
    input_scale.mul_((n - 1) / n).add_(batch / n);
    return input_scale.clone();
  }
  // Stays on the device: no host synchronisation per layer.
  const auto measured = input_scale > 0;
  if (is_training()) input_scale.copy_(torch::where(measured, input_scale * 0.9 + batch * 0.1, batch));
  return torch::where(measured, input_scale, batch);
}

torch::Tensor QuantLayerImpl::weight_probabilities() const {
  return torch::softmax(temperature_ == 1.0 ? alpha_weight : alpha_weight / temperature_, 0);
}
torch::Tensor QuantLayerImpl::activation_probabilities() const {
  return torch::softmax(temperature_ == 1.0 ? alpha_activation : alpha_activation / temperature_, 0);
}

torch::Tensor QuantLayerImpl::choice_indices() const {
  const auto weight = alpha_weight.detach().argmax();
  if (precision_.input == LayerInput::data) return torch::stack({weight, torch::zeros_like(weight)});
  return torch::stack({weight, alpha_activation.detach().argmax()});
}

torch::Tensor QuantLayerImpl::expected_weight_bits() const {
  if (searching()) {
    return (weight_probabilities() * weight_candidate_bits).sum();
  }
  return torch::tensor(quantized() ? float(precision_.weight_bits[0]) : 32.0f);
}

torch::Tensor QuantLayerImpl::expected_activation_bits() const {
  if (searching() && precision_.input != LayerInput::data) {
    return (activation_probabilities() * activation_candidate_bits).sum();
  }
  return torch::tensor(quantized() ? float(precision_.activation_bits[0]) : 32.0f);
}

torch::Tensor QuantLayerImpl::activate(const torch::Tensor& x) {
  if (precision_.input == LayerInput::data) return x;
  if (precision_.input != LayerInput::pre_activation) return activate_scaled(x);
  switch (precision_.mode) {
    case PrecisionMode::full_precision: return torch::relu(x);
    case PrecisionMode::fixed: return quantize_activation(x, precision_.activation_bits[0], precision_.step_table);
    case PrecisionMode::search:
      return composite_activation(x, activation_probabilities(), precision_.activation_bits, precision_.step_table);
  }
  return x;
}

torch::Tensor QuantLayerImpl::activate_scaled(const torch::Tensor& x) {
  if (!quantized()) return x;  // the graph applies its own activation functions
  const auto scale = current_input_scale(x);
  const auto unit = x / scale;
  const bool is_signed = precision_.input == LayerInput::signed_values;
  torch::Tensor q;
  if (precision_.mode == PrecisionMode::fixed) {
    const int bits = precision_.activation_bits[0];
    q = is_signed ? quantize_signed_activation(unit, bits, precision_.step_table)
                  : quantize_activation(unit, bits, precision_.step_table);
  } else {
    const auto probs = activation_probabilities();
    const auto& bits = precision_.activation_bits;
    q = is_signed ? composite_signed_activation(unit, probs, bits, precision_.step_table)
                  : composite_activation(unit, probs, bits, precision_.step_table);
  }
  return q * scale;
}

torch::Tensor QuantLayerImpl::quantized_weight() const {
  switch (precision_.mode) {
    case PrecisionMode::full_precision: return weight;
    case PrecisionMode::fixed: return quantize_weight(weight, precision_.weight_bits[0], precision_.step_table);
    case PrecisionMode::search:
      return composite_weight(weight, weight_probabilities(), precision_.weight_bits, precision_.step_table);
  }
  return weight;
}

torch::Tensor QuantLayerImpl::apply(const torch::Tensor& input, const torch::Tensor& w) const {
  if (shape_.kind == LayerKind::linear) return torch::nn::functional::linear(input, w, bias);
  return torch::conv2d(input, w, bias, shape_.stride, shape_.padding, shape_.dilation, shape_.groups);
}

void QuantLayerImpl::record_macs(const torch::Tensor& input, const torch::Tensor& output) {
  input_elements_ = input.numel() / std::max<int64_t>(1, input.size(0));
  if (input.dim() == 4) input_size_ = {input.size(2), input.size(3)};
  if (shape_.kind == LayerKind::linear) {
    macs_ = shape_.in_channels * shape_.out_channels;
  } else if (precision_.mac_convention == MacConvention::released) {
    const double filter = double(shape_.in_channels / shape_.groups) * double(shape_.out_channels) *
                          double(shape_.kernel[0] * shape_.kernel[1]) / double(shape_.stride[0] * shape_.stride[1]);
    macs_ = std::llround(filter * double(input.size(2) * input.size(3)));
  } else {
    macs_ = output.size(1) * output.size(2) * output.size(3) *
            (shape_.in_channels / shape_.groups) * shape_.kernel[0] * shape_.kernel[1];
  }
}

torch::Tensor QuantLayerImpl::forward(const torch::Tensor& x) {
  if (probe_ && *probe_) (*probe_)(name_ + ".input", x);
  if (naive_ && searching()) return forward_naive(x);
  auto output = apply(activate(x), quantized_weight());
  if (macs_ == 0) record_macs(x, output);
  return output;
}

torch::Tensor QuantLayerImpl::forward_naive(const torch::Tensor& x) {
  // The naive form is the built-in layers' (pre-activation input); any other
  // layer computes its one composite convolution.
  if (!searching() || precision_.input != LayerInput::pre_activation) {
    auto output = apply(activate(x), quantized_weight());
    if (macs_ == 0) record_macs(x, output);
    return output;
  }
  const auto pw = weight_probabilities();
  const auto pa = activation_probabilities();
  torch::Tensor output;
  for (size_t i = 0; i < precision_.weight_bits.size(); ++i) {
    const auto w = quantize_weight(weight, precision_.weight_bits[i], precision_.step_table);
    for (size_t j = 0; j < precision_.activation_bits.size(); ++j) {
      auto branch = apply(quantize_activation(x, precision_.activation_bits[j], precision_.step_table), w) *
                    (pw[int64_t(i)] * pa[int64_t(j)]);
      output = output.defined() ? output + branch : branch;
    }
  }
  if (macs_ == 0) record_macs(x, output);
  return output;
}

LayerCostInput QuantLayerImpl::cost_input() const {
  LayerCostInput c;
  c.name = name_;
  c.macs = macs_;
  c.weight_count = weight.numel();
  c.input_elements = input_elements_;
  auto pair = [](const std::array<int64_t, 2>& v) { return std::to_string(v[0]) + "x" + std::to_string(v[1]); };
  const std::string channels = std::to_string(shape_.in_channels) + ">" + std::to_string(shape_.out_channels);
  c.shape_key = shape_.kind == LayerKind::linear
                    ? "linear " + channels
                    : "conv " + channels + " k" + pair(shape_.kernel) + " s" + pair(shape_.stride) + " g" +
                          std::to_string(shape_.groups) + " in " + pair(input_size_);
  return c;
}

LayerReport QuantLayerImpl::report() const {
  torch::NoGradGuard no_grad;
  LayerReport r;
  r.name = name_;
  r.quantized = quantized();
  r.macs = macs_;
  r.weight_count = weight.numel();
  const auto cost = cost_input();
  r.shape = cost.shape_key;
  r.input_elements = cost.input_elements;
  if (!quantized()) return r;
  if (!searching()) {
    r.weight_bits = precision_.weight_bits[0];
    r.activation_bits = precision_.activation_bits[0];
    r.expected_weight_bits = r.weight_bits;
    r.expected_activation_bits = r.activation_bits;
    return r;
  }
  auto to_vector = [](const torch::Tensor& t) {
    const auto c = t.to(torch::kCPU, torch::kDouble).contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  };
  r.weight_candidates = precision_.weight_bits;
  r.activation_candidates = precision_.activation_bits;
  r.weight_probabilities = to_vector(weight_probabilities());
  r.activation_probabilities =
      precision_.input == LayerInput::data ? std::vector<double>{1.0} : to_vector(activation_probabilities());
  auto argmax = [](const std::vector<double>& p) {
    return size_t(std::max_element(p.begin(), p.end()) - p.begin());
  };
  r.weight_probabilities_t1 = to_vector(torch::softmax(alpha_weight, 0));
  r.activation_probabilities_t1 = precision_.input == LayerInput::data
                                      ? std::vector<double>{1.0}
                                      : to_vector(torch::softmax(alpha_activation, 0));
  r.weight_bits = r.weight_candidates[argmax(r.weight_probabilities)];
  r.activation_bits = r.activation_candidates[argmax(r.activation_probabilities)];
  r.expected_weight_bits = expected_weight_bits().item<double>();
  r.expected_activation_bits = expected_activation_bits().item<double>();
  return r;
}

}  // namespace edmips
