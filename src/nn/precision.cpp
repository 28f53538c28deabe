#include "nn/precision.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/json_reader.h"
#include "quant/step_sizes.h"

namespace edmips {

nlohmann::json to_json(const BitAllocation& allocation) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : allocation.layers) {
    layers.push_back({{"layer", l.layer}, {"weight_bits", l.weight_bits},
                      {"activation_bits", l.activation_bits}});
  }
  return {{"model", allocation.model}, {"layers", layers}};
}

const char* to_string(MacConvention convention) {
  return convention == MacConvention::released ? "released" : "output";
}

std::optional<MacConvention> mac_convention_from_string(const std::string& name) {
  if (name == "output") return MacConvention::output;
  if (name == "released") return MacConvention::released;
  return std::nullopt;
}

BitAllocation bit_allocation_from_json(const nlohmann::json& j, const std::string& source) {
  JsonObjectReader root(j, "", source);
  BitAllocation allocation;
  allocation.model = root.string_value("model");
  const auto& layers = root.raw("layers");
  if (!layers.is_array() || layers.empty()) root.fail("layers", "a non-empty array of layers");
  for (size_t i = 0; i < layers.size(); ++i) {
    JsonObjectReader layer(layers[i], "/layers/" + std::to_string(i), source);
    LayerBits bits;
    bits.layer = layer.string_value("layer", std::string{});
    bits.weight_bits = static_cast<int>(layer.int_value("weight_bits", kMinBits, kMaxBits));
    bits.activation_bits = static_cast<int>(layer.int_value("activation_bits", kMinBits, kMaxBits));
    layer.reject_unknown_keys();
    allocation.layers.push_back(bits);
  }
  root.reject_unknown_keys();
  return allocation;
}

nlohmann::json to_json(const LayerReport& layer) {
  nlohmann::json j = {{"name", layer.name},
                      {"quantized", layer.quantized},
                      {"macs", layer.macs},
                      {"weight_count", layer.weight_count},
                      {"weight_bits", layer.weight_bits},
                      {"activation_bits", layer.activation_bits},
                      {"bitops", layer.bitops()},
                      {"weight_memory_bits", layer.weight_memory_bits()},
                      {"shape", layer.shape},
                      {"input_elements", layer.input_elements},
                      {"activation_memory_bits", layer.activation_memory_bits()}};
  if (!layer.weight_candidates.empty()) {
    j["expected_weight_bits"] = layer.expected_weight_bits;
    j["expected_activation_bits"] = layer.expected_activation_bits;
    j["weight_candidates"] = layer.weight_candidates;
    j["activation_candidates"] = layer.activation_candidates;
    j["weight_probabilities"] = layer.weight_probabilities;
    j["activation_probabilities"] = layer.activation_probabilities;
  }
  return j;
}

double NetworkCost::normalised_bits() const {
  return quantized_macs > 0 ? std::sqrt(bitops / double(quantized_macs)) : 32.0;
}
double NetworkCost::expected_normalised_bits() const {
  return quantized_macs > 0 ? std::sqrt(expected_bitops / double(quantized_macs)) : 32.0;
}

NetworkCost network_cost(const std::vector<LayerReport>& layers) {
  NetworkCost cost;
  for (const auto& l : layers) {
    cost.total_macs += l.macs;
    cost.weight_memory_bits += l.weight_memory_bits();
    cost.activation_memory_bits += l.activation_memory_bits();
    if (!l.quantized) continue;
    cost.quantized_macs += l.macs;
    cost.bitops += l.bitops();
    cost.expected_bitops += l.expected_bitops();
  }
  return cost;
}

nlohmann::json to_json(const NetworkCost& cost) {
  return {{"total_macs", cost.total_macs},
          {"quantized_macs", cost.quantized_macs},
          {"bitops", cost.bitops},
          {"expected_bitops", cost.expected_bitops},
          {"normalised_bits", cost.normalised_bits()},
          {"expected_normalised_bits", cost.expected_normalised_bits()},
          {"weight_memory_bits", cost.weight_memory_bits},
          {"activation_memory_bits", cost.activation_memory_bits}};
}

Choice choice_of(const std::vector<double>& probabilities) {
  if (probabilities.empty()) return {};
  std::vector<double> sorted = probabilities;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  return {sorted[0], sorted.size() > 1 ? sorted[0] - sorted[1] : 1.0};
}

bool LayerReport::stable(int64_t arch_steps) const {
  if (stable_since < 0 || arch_steps <= 0) return true;
  return double(stable_since) <= (1.0 - kStableFraction) * double(arch_steps);
}

SearchDecision search_decision(const std::vector<LayerReport>& layers, int64_t arch_steps) {
  SearchDecision d;
  d.arch_steps = arch_steps;
  for (const auto& l : layers) {
    if (!l.searched()) continue;
    ++d.searched_layers;
    if (l.decided(arch_steps)) ++d.decided_layers;
    else d.undecided_layers.push_back(l.name);
    if (!l.stable(arch_steps)) d.unstable_layers.push_back(l.name);
    d.last_change_step = std::max(d.last_change_step, l.stable_since);
    d.flips += l.flips;
    const double margin = std::min(l.weight_choice().margin, l.activation_choice().margin);
    if (d.smallest_margin_layer.empty() || margin < d.smallest_margin) {
      d.smallest_margin = margin;
      d.smallest_margin_layer = l.name;
    }
    const double t1 = l.margin_at_temperature_1();
    if (d.smallest_margin_t1_layer.empty() || t1 < d.smallest_margin_t1) {
      d.smallest_margin_t1 = t1;
      d.smallest_margin_t1_layer = l.name;
    }
  }
  return d;
}

nlohmann::json to_json(const SearchDecision& d) {
  return {{"searched_layers", d.searched_layers},
          {"decided_layers", d.decided_layers},
          {"decided_margin", kDecidedMargin},
          {"stable_fraction", kStableFraction},
          {"smallest_margin", d.smallest_margin},
          {"smallest_margin_layer", d.smallest_margin_layer},
          {"smallest_margin_at_temperature_1", d.smallest_margin_t1},
          {"smallest_margin_at_temperature_1_layer", d.smallest_margin_t1_layer},
          {"arch_steps", d.arch_steps},
          {"last_change_step", d.last_change_step},
          {"flips", d.flips},
          {"undecided_layers", d.undecided_layers},
          {"unstable_layers", d.unstable_layers},
          {"decided", d.decided()}};
}

BitAllocation derive_allocation(const std::string& model, const std::vector<LayerReport>& layers) {
  BitAllocation allocation{model, {}};
  for (const auto& l : layers) {
    if (l.quantized) allocation.layers.push_back({l.name, l.weight_bits, l.activation_bits});
  }
  return allocation;
}

}  // namespace edmips
