// The parts of onnx/ that need no protobuf: attribute access and format
// names, built with or without ONNX support.
#include "core/error.h"
#include "onnx/onnx_export.h"
#include "onnx/onnx_graph.h"

namespace edmips::onnx {

int64_t TensorData::element_count() const {
  return type == Type::float32 ? int64_t(floats.size()) : int64_t(ints.size());
}

int64_t Node::int_attribute(const std::string& attribute, int64_t fallback) const {
  auto it = attributes.find(attribute);
  if (it == attributes.end()) return fallback;
  if (it->second.kind != Attribute::Kind::int_value) throw ConfigError(label() + ": attribute " + attribute + " is not an integer");
  return it->second.i;
}
double Node::float_attribute(const std::string& attribute, double fallback) const {
  auto it = attributes.find(attribute);
  if (it == attributes.end()) return fallback;
  if (it->second.kind != Attribute::Kind::float_value) throw ConfigError(label() + ": attribute " + attribute + " is not a float");
  return it->second.f;
}
std::string Node::string_attribute(const std::string& attribute, const std::string& fallback) const {
  auto it = attributes.find(attribute);
  if (it == attributes.end()) return fallback;
  if (it->second.kind != Attribute::Kind::string_value) throw ConfigError(label() + ": attribute " + attribute + " is not a string");
  return it->second.s;
}
std::vector<int64_t> Node::ints_attribute(const std::string& attribute, std::vector<int64_t> fallback) const {
  auto it = attributes.find(attribute);
  if (it == attributes.end()) return fallback;
  if (it->second.kind != Attribute::Kind::ints) throw ConfigError(label() + ": attribute " + attribute + " is not a list of integers");
  return it->second.ints;
}

ExportFormat export_format_from_string(const std::string& text) {
  if (text == "qdq") return ExportFormat::qdq;
  if (text == "qonnx") return ExportFormat::qonnx;
  if (text == "float") return ExportFormat::float_model;
  throw ConfigError("invalid export format \"" + text + "\": expected qdq, qonnx or float");
}

}  // namespace edmips::onnx
