// nn: what a bit allocation costs on the user's hardware, per layer and per
// (weight bits, activation bits) pair: BitOps (the paper's), the deployed
// weights' memory, the activations' memory, any of them with the widths
// rounded up to what the hardware runs, or a table of measured costs.
// Without LibTorch: trial configs, sweeps and reports read it too.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace edmips {

/// The measure a cost model prices a layer in.
enum class CostBasis {
  bitops,             ///< MACs x weight bits x activation bits (the default; the paper's)
  weight_memory,      ///< parameters x weight bits: the deployed file's size
  activation_memory,  ///< input activations per image x activation bits: what the layer reads
  table,              ///< measured costs per layer and pair, from a JSON file
};
const char* to_string(CostBasis measure);
/// The names above, in the order the docs list them.
const std::vector<std::string>& cost_basis_names();
/// One of the names above; nullopt otherwise.
std::optional<CostBasis> cost_basis_from_string(const std::string& name);
/// The unit a measure's costs are in ("bit-ops", "bits", or the table's own).
std::string cost_unit(CostBasis measure, const std::string& table_unit);

/// What one layer brings to its price: its name, its shape key (the table's
/// fallback) and the counts the built-in measures multiply.
struct LayerCostInput {
  std::string name;
  std::string shape_key;
  int64_t macs = 0;
  int64_t weight_count = 0;
  int64_t input_elements = 0;  ///< per image
};

/// A table's key of a (weight bits, activation bits) pair: "w2a4".
std::string pair_key(int weight_bits, int activation_bits);
/// Measured costs keyed by pair_key (e.g. "w2a4").
using PairCosts = std::map<std::string, double>;

/// A cost table file: {"unit": "microseconds", "layers": {NAME: {"w2a2": ...}},
/// "shapes": {SHAPE_KEY: {"w2a2": ...}}}. A layer's entry is looked up by name,
/// then by its shape key; a pair missing from the entry found is an error.
struct CostTable {
  std::string path;  ///< where it was read (for errors)
  std::string unit;
  std::string content;  ///< stable ID of the file's bytes (part of the trial ID)
  std::map<std::string, PairCosts> layers, shapes;
};
/// Reads and checks a table file (ConfigError naming the file and JSON path).
std::shared_ptr<const CostTable> read_cost_table(const std::string& path);

/// Widths the hardware runs; a width not in the list costs what the next one
/// up does. Empty: every width runs as itself.
struct SupportedBits {
  std::vector<int> weights, activations;
};
/// The smallest supported width >= bits (bits itself when `supported` is
/// empty); ConfigError when none is.
int supported_width(int bits, const std::vector<int>& supported, const char* what);

/// The search's cost: a measure, the supported widths, the table for `table`.
struct CostModel {
  CostBasis measure = CostBasis::bitops;
  SupportedBits supported;
  std::shared_ptr<const CostTable> table;  ///< measure == table
  /// bitops without supported widths: the search's loss is today's
  /// MACs x E[w] x E[a], computed as before.
  bool plain_bitops() const {
    return measure == CostBasis::bitops && supported.weights.empty() && supported.activations.empty();
  }
  std::string unit() const { return cost_unit(measure, table ? table->unit : ""); }
  /// The cost of `layer` at (weight_bits, activation_bits), widths rounded up
  /// to the supported ones first. A table without the layer (by name or shape)
  /// or without the pair is a ConfigError naming both.
  double layer_cost(const LayerCostInput& layer, int weight_bits, int activation_bits) const;
};

/// A layer as deployed: what it brings to its price, and its bits.
struct PricedLayer {
  LayerCostInput input;
  int weight_bits = 32, activation_bits = 32;
};
/// The quantized layers of a result.json's "layers" (to_json(LayerReport)),
/// in order. DataError naming `where` for a layer without "shape" or
/// "input_elements" (a result written before cost models).
std::vector<PricedLayer> quantized_layers_of(const nlohmann::json& layers, const std::string& where);
/// What `layers` cost together under `model`, in its unit (layer_cost summed).
double total_cost(const CostModel& model, const std::vector<PricedLayer>& layers);

/// A short name for reports and group names: "weight_memory", "table
/// roofline.json", "bitops on w4,8 a4,8".
std::string short_name(const CostModel& model);

/// "bitops" etc. as written in a config, or the object form with
/// supported_bits and table; what to_json writes back.
nlohmann::json to_json(const CostModel& model);

}  // namespace edmips
