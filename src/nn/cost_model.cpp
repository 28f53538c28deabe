#include "nn/cost_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/json_reader.h"
#include "core/stable_id.h"

namespace edmips {
namespace {

constexpr size_t kMaxTableBytes = size_t(64) << 20;

/// {"w2a2": number >= 0, ...} at `pointer` of the table file.
PairCosts read_pair_costs(const nlohmann::json& j, const std::string& pointer, const std::string& source) {
  if (!j.is_object() || j.empty()) {
    throw ConfigError(source + ": " + pointer +
                      ": expected an object of costs per pair (\"w2a4\": number), found " + describe_json(j));
  }
  PairCosts costs;
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    int w = 0, a = 0;
    char tail = 0;
    if (std::sscanf(key.c_str(), "w%da%d%c", &w, &a, &tail) != 2 || w < 1 || w > 32 || a < 1 || a > 32 ||
        key != pair_key(w, a)) {
      throw ConfigError(source + ": " + pointer + "/" + key + ": expected a pair key like \"w2a4\"");
    }
    const auto& value = item.value();
    if (value.is_null()) {
      throw ConfigError(source + ": " + pointer + "/" + key +
                        ": not filled in (a template from edmips cost-table: put the measured cost there)");
    }
    if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < 0) {
      throw ConfigError(source + ": " + pointer + "/" + key + ": expected a finite cost >= 0, found " +
                        describe_json(value));
    }
    costs[key] = value.get<double>();
  }
  return costs;
}

}  // namespace

const char* to_string(CostBasis measure) {
  switch (measure) {
    case CostBasis::bitops:
      return "bitops";
    case CostBasis::weight_memory:
      return "weight_memory";
    case CostBasis::activation_memory:
      return "activation_memory";
    case CostBasis::table:
      return "table";
  }
  return "?";
}

namespace {
constexpr CostBasis kCostBases[] = {CostBasis::bitops, CostBasis::weight_memory, CostBasis::activation_memory,
                                    CostBasis::table};
}  // namespace

std::string pair_key(int weight_bits, int activation_bits) {
  return "w" + std::to_string(weight_bits) + "a" + std::to_string(activation_bits);
}

const std::vector<std::string>& cost_basis_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (auto m : kCostBases) out.push_back(to_string(m));
    return out;
  }();
  return names;
}

std::optional<CostBasis> cost_basis_from_string(const std::string& name) {
  for (auto m : kCostBases) {
    if (name == to_string(m)) return m;
  }
  return std::nullopt;
}

std::string cost_unit(CostBasis measure, const std::string& table_unit) {
  switch (measure) {
    case CostBasis::bitops:
      return "bit-ops";
    case CostBasis::weight_memory:
    case CostBasis::activation_memory:
      return "bits";
    case CostBasis::table:
      return table_unit;
  }
  return "";
}

std::shared_ptr<const CostTable> read_cost_table(const std::string& path) {
  const std::string text = read_text_file(path, kMaxTableBytes);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError(path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw ConfigError(path + ": expected a cost table object, found " + describe_json(j));
  JsonObjectReader root(j, "", path);
  auto table = std::make_shared<CostTable>();
  table->path = path;
  table->content = stable_id(text);
  table->unit = root.string_value("unit");
  if (table->unit.empty() || table->unit.rfind("FILL IN", 0) == 0) {
    root.fail("unit", "the costs' unit (\"microseconds\", \"microjoules\", ...)");
  }
  for (const char* section : {"layers", "shapes"}) {
    if (!root.has(section)) continue;
    const auto& entries = root.raw(section);
    if (!entries.is_object())
      root.fail(section, "an object keyed by layer " + std::string(section[0] == 'l' ? "name" : "shape"));
    auto& out = section[0] == 'l' ? table->layers : table->shapes;
    for (const auto& item : entries.items()) {
      out[item.key()] = read_pair_costs(item.value(), "/" + std::string(section) + "/" + item.key(), path);
    }
  }
  root.reject_unknown_keys({"description", "model", "template"});
  if (table->layers.empty() && table->shapes.empty()) {
    throw ConfigError(path + ": expected \"layers\" or \"shapes\" with at least one entry");
  }
  return table;
}

int supported_width(int bits, const std::vector<int>& supported, const char* what) {
  if (supported.empty()) return bits;
  for (int s : supported) {  // sorted when parsed
    if (s >= bits) return s;
  }
  throw ConfigError(std::string("no supported ") + what + " width holds " + std::to_string(bits) +
                    " bits (the widest is " + std::to_string(supported.back()) + ")");
}

double CostModel::layer_cost(const LayerCostInput& layer, int weight_bits, int activation_bits) const {
  const int w = supported_width(weight_bits, supported.weights, "weight");
  const int a = supported_width(activation_bits, supported.activations, "activation");
  switch (measure) {
    case CostBasis::bitops:
      return double(layer.macs) * w * a;
    case CostBasis::weight_memory:
      return double(layer.weight_count) * w;
    case CostBasis::activation_memory:
      return double(layer.input_elements) * a;
    case CostBasis::table:
      break;
  }
  const PairCosts* entry = nullptr;
  std::string found_by;
  if (auto it = table->layers.find(layer.name); it != table->layers.end()) {
    entry = &it->second;
    found_by = "/layers/" + layer.name;
  } else if (auto s = table->shapes.find(layer.shape_key); s != table->shapes.end()) {
    entry = &s->second;
    found_by = "/shapes/" + layer.shape_key;
  }
  if (!entry) {
    throw ConfigError(table->path + ": no cost for layer \"" + layer.name + "\" (neither /layers/" +
                      layer.name + " nor /shapes/" + layer.shape_key +
                      "); `edmips cost-table` writes every layer's entry");
  }
  const auto cost = entry->find(pair_key(w, a));
  if (cost == entry->end()) {
    throw ConfigError(table->path + ": " + found_by + ": no cost for the pair " + pair_key(w, a) +
                      " of layer \"" + layer.name + "\"");
  }
  return cost->second;
}

std::vector<PricedLayer> quantized_layers_of(const nlohmann::json& layers, const std::string& where) {
  if (!layers.is_array()) throw DataError(where + ": expected the layers array, found " + describe_json(layers));
  std::vector<PricedLayer> out;
  for (const auto& l : layers) {
    if (!l.is_object() || !l.value("quantized", false)) continue;
    const auto name = l.value("name", std::string("?"));
    if (!l.contains("shape") || !l.contains("input_elements")) {
      throw DataError(where + ": layer \"" + name +
                      "\" has no shape or input_elements (a result written before cost models: run it again "
                      "to price it in a table)");
    }
    try {
      PricedLayer p;
      p.input.name = name;
      p.input.shape_key = l.at("shape").get<std::string>();
      p.input.macs = l.at("macs").get<int64_t>();
      p.input.weight_count = l.at("weight_count").get<int64_t>();
      p.input.input_elements = l.at("input_elements").get<int64_t>();
      p.weight_bits = l.at("weight_bits").get<int>();
      p.activation_bits = l.at("activation_bits").get<int>();
      out.push_back(std::move(p));
    } catch (const nlohmann::json::exception& e) {
      throw DataError(where + ": layer \"" + name + "\": " + e.what());
    }
  }
  return out;
}

double total_cost(const CostModel& model, const std::vector<PricedLayer>& layers) {
  double total = 0;
  for (const auto& l : layers) total += model.layer_cost(l.input, l.weight_bits, l.activation_bits);
  return total;
}

std::string short_name(const CostModel& model) {
  std::string name = to_string(model.measure);
  if (model.table) {
    const auto slash = model.table->path.find_last_of('/');
    name += " " + (slash == std::string::npos ? model.table->path : model.table->path.substr(slash + 1));
  }
  auto widths = [](const std::vector<int>& bits) {
    std::string text;
    for (int b : bits) text += (text.empty() ? "" : ",") + std::to_string(b);
    return text;
  };
  if (!model.supported.weights.empty() || !model.supported.activations.empty()) {
    name += " on";
    if (!model.supported.weights.empty()) name += " w" + widths(model.supported.weights);
    if (!model.supported.activations.empty()) name += " a" + widths(model.supported.activations);
  }
  return name;
}

nlohmann::json to_json(const CostModel& model) {
  nlohmann::json j = {{"measure", to_string(model.measure)}};
  if (!model.supported.weights.empty() || !model.supported.activations.empty()) {
    j["supported_bits"] = nlohmann::json::object();
    if (!model.supported.weights.empty()) j["supported_bits"]["weights"] = model.supported.weights;
    if (!model.supported.activations.empty())
      j["supported_bits"]["activations"] = model.supported.activations;
  }
  if (model.table) {
    j["table"] = model.table->path;
    j["table_content"] = model.table->content;
  }
  return j;
}

}  // namespace edmips
