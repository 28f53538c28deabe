// nn: how a network is quantized, described without LibTorch: the search
// space, a derived per-layer bit allocation, and per-layer/network cost
// reports. Used by trials, sweeps and reports alike.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "quant/step_sizes.h"

namespace edmips {

/// How every layer of a network is built.
enum class PrecisionMode {
  full_precision,  ///< float weights, ReLU activations
  search,          ///< differentiable mixed-precision search (composite layers)
  fixed,           ///< one (weight_bits, activation_bits) pair per quantized layer
};

/// Bits chosen for one quantized layer.
struct LayerBits {
  std::string layer;  ///< layer name, for humans and for checking the model matches
  int weight_bits = 0;
  int activation_bits = 0;
};

/// A derived mixed-precision network: one entry per quantized layer, in order.
struct BitAllocation {
  std::string model;
  std::vector<LayerBits> layers;
};
nlohmann::json to_json(const BitAllocation& allocation);
/// Parses an allocation written by to_json (ConfigError naming `source`).
BitAllocation bit_allocation_from_json(const nlohmann::json& j, const std::string& source);

/// How a convolution's MACs are counted (and so BitOps, normalised bits and
/// the complexity loss). Linear layers count in_features x out_features in both.
enum class MacConvention {
  /// Cout x Hout x Wout x (Cin / groups) x kh x kw: the multiply-accumulates
  /// the layer performs (the default).
  output,
  /// Cin x Cout x kh x kw x Hin x Win / stride^2, as the released
  /// quant_module.py counts them: equal wherever the input size is the output
  /// size times the stride (the ResNets at 224, GoogLeNet at 224), larger where
  /// an unpadded conv shrinks its map (Inception-V3 at 299).
  released,
};
const char* to_string(MacConvention convention);
/// "output" or "released"; nullopt otherwise.
std::optional<MacConvention> mac_convention_from_string(const std::string& name);

/// What a model builder needs to know to build each layer.
struct NetworkPrecision {
  PrecisionMode mode = PrecisionMode::full_precision;
  std::vector<int> weight_candidates;      ///< search: candidate weight bits
  std::vector<int> activation_candidates;  ///< search: candidate activation bits
  double arch_init = 0.01;                 ///< search: initial value of every alpha
  /// fixed: either one entry per quantized layer, or exactly one entry applied
  /// to every quantized layer (a uniform network).
  std::vector<LayerBits> fixed_bits;
  bool full_precision_first = true;  ///< keep the first conv in float
  bool full_precision_last = true;   ///< keep the last linear layer in float
  MacConvention mac_convention = MacConvention::output;
  StepTable step_table = StepTable::computed;  ///< the quantizers' step constants
};

/// How clearly a search layer has chosen one candidate list's entry.
struct Choice {
  double probability = 1;  ///< of the chosen (argmax) candidate
  double margin = 1;       ///< its lead over the runner-up (1 when there is one candidate)
};
/// Choice of a probability vector (empty: a layer that chose nothing, margin 1).
Choice choice_of(const std::vector<double>& probabilities);

/// A search layer is decided when the chosen weight and activation candidates
/// each lead their runner-up by at least this much probability (at the
/// search's own temperature, the probabilities the derivation reads) and
/// neither choice changed over the last kStableFraction of the steps the
/// architecture parameters moved. Below the margin the derived allocation is
/// close to an argmax of near-equal probabilities; a choice that still flips
/// late could as well have ended on the other candidate.
constexpr double kDecidedMargin = 0.5;
constexpr double kStableFraction = 0.25;

/// Per-layer figures for reports (history, result, allocation).
struct LayerReport {
  std::string name;
  bool quantized = false;
  int64_t macs = 0;
  int64_t weight_count = 0;
  /// The layer's shape key (a cost table's fallback; see LayerCostInput) and
  /// its input's elements per image; empty and 0 before the first forward.
  std::string shape;
  int64_t input_elements = 0;
  int weight_bits = 32;      ///< chosen (argmax) or fixed; 32 for float layers
  int activation_bits = 32;  ///< chosen (argmax) or fixed; 32 for float layers
  double expected_weight_bits = 32;
  double expected_activation_bits = 32;
  std::vector<int> weight_candidates, activation_candidates;
  std::vector<double> weight_probabilities, activation_probabilities;
  /// softmax of the architecture logits at temperature 1 (equal to the above
  /// in an unannealed search): an annealed search's low temperature sharpens
  /// small logit gaps into large probability margins.
  std::vector<double> weight_probabilities_t1, activation_probabilities_t1;
  /// Search tracking (trial engine): the arch step from which the weight and
  /// activation choices stayed what they are now, and how often they changed;
  /// -1 when not tracked.
  int64_t stable_since = -1;
  int flips = 0;
  double bitops() const { return quantized ? double(macs) * weight_bits * activation_bits : 0.0; }
  double expected_bitops() const {
    return quantized ? double(macs) * expected_weight_bits * expected_activation_bits : 0.0;
  }
  double weight_memory_bits() const { return double(weight_count) * weight_bits; }
  double activation_memory_bits() const { return double(input_elements) * activation_bits; }
  bool searched() const { return quantized && !weight_candidates.empty(); }
  Choice weight_choice() const { return choice_of(weight_probabilities); }
  Choice activation_choice() const { return choice_of(activation_probabilities); }
  /// The smaller of the weight and activation margins at temperature 1.
  double margin_at_temperature_1() const {
    return std::min(choice_of(weight_probabilities_t1).margin, choice_of(activation_probabilities_t1).margin);
  }
  bool clear_margin() const {
    return weight_choice().margin >= kDecidedMargin && activation_choice().margin >= kDecidedMargin;
  }
  /// Stable over the final kStableFraction of `arch_steps` (true when untracked).
  bool stable(int64_t arch_steps) const;
  bool decided(int64_t arch_steps) const { return clear_margin() && stable(arch_steps); }
};
nlohmann::json to_json(const LayerReport& layer);

/// Network totals; BitOps count quantized layers only, as in the paper.
struct NetworkCost {
  int64_t total_macs = 0;
  int64_t quantized_macs = 0;
  double bitops = 0;           ///< with the chosen/fixed bits
  double expected_bitops = 0;  ///< with the expected bits (search); equals bitops when fixed
  double weight_memory_bits = 0;
  double activation_memory_bits = 0;  ///< per image: every layer's input x its activation bits
  /// sqrt(BitOps / quantized MACs): uniform W2A2 reads 2.0.
  double normalised_bits() const;
  double expected_normalised_bits() const;
};
NetworkCost network_cost(const std::vector<LayerReport>& layers);
nlohmann::json to_json(const NetworkCost& cost);

/// Whether a search has decided: counts over its search layers.
struct SearchDecision {
  int searched_layers = 0;
  int decided_layers = 0;
  double smallest_margin = 1;       ///< over weights and activations of every search layer
  std::string smallest_margin_layer;
  double smallest_margin_t1 = 1;    ///< the same at temperature 1
  std::string smallest_margin_t1_layer;
  int64_t arch_steps = 0;           ///< steps the architecture parameters moved (0: untracked)
  int64_t last_change_step = 0;     ///< the latest step at which some layer's choice changed
  int flips = 0;                    ///< choice changes over the whole search, all layers
  std::vector<std::string> undecided_layers;
  std::vector<std::string> unstable_layers;  ///< changed within the final kStableFraction
  bool decided() const { return decided_layers == searched_layers; }
};
SearchDecision search_decision(const std::vector<LayerReport>& layers, int64_t arch_steps);
nlohmann::json to_json(const SearchDecision& decision);

/// The argmax allocation of a searched network.
BitAllocation derive_allocation(const std::string& model, const std::vector<LayerReport>& layers);

}  // namespace edmips
