// onnx: an ONNX model file read into plain typed structs (nodes, attributes,
// initializers, the graph's input and output), checked by ONNX's own checker.
// No LibTorch: the importer (models/onnx_network) builds networks from it and
// the fuzz harness reads files through it alone. Depends on core/ and
// Debian's libonnx (protobuf), which stay in the .cpp.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace edmips::onnx {

/// An initializer or a Constant's value, converted to float32 or int64.
struct TensorData {
  enum class Type { float32, int64 };
  std::string name;
  Type type = Type::float32;
  std::vector<int64_t> dims;
  std::vector<float> floats;  ///< type float32 (float64 and float16 files converted)
  std::vector<int64_t> ints;  ///< type int64 (int32, int8, uint8, bool converted)
  int64_t element_count() const;
};

/// One node attribute; `kind` says which field holds it.
struct Attribute {
  enum class Kind { float_value, int_value, string_value, floats, ints, tensor, other };
  Kind kind = Kind::other;
  double f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::optional<TensorData> tensor;
};

struct Node {
  std::string name;     ///< the node's name, or "#<index>" when the file gives none
  std::string op_type;
  std::string domain;   ///< "" (or "ai.onnx") for the standard operators
  std::vector<std::string> inputs;   ///< "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::map<std::string, Attribute> attributes;

  /// "node NAME (OP)", for messages.
  std::string label() const { return "node " + name + " (" + op_type + ")"; }
  bool has(const std::string& attribute) const { return attributes.count(attribute) != 0; }
  /// Attribute values with a default; ConfigError naming the node when the
  /// attribute has another type.
  int64_t int_attribute(const std::string& attribute, int64_t fallback) const;
  double float_attribute(const std::string& attribute, double fallback) const;
  std::string string_attribute(const std::string& attribute, const std::string& fallback) const;
  std::vector<int64_t> ints_attribute(const std::string& attribute, std::vector<int64_t> fallback) const;
};

/// A whole model: what the importer and the exporter need of the file.
struct Graph {
  std::string source;         ///< the file, for messages
  int64_t opset = 0;          ///< of the default domain
  std::string producer;       ///< producer_name + version, for humans
  std::string input_name;
  std::vector<int64_t> input_dims;  ///< -1 where the file gives a symbolic or no size
  std::string output_name;
  std::vector<Node> nodes;    ///< in the file's (topological) order
  std::map<std::string, TensorData> initializers;
};

/// The opsets of the default domain the importer handles.
constexpr int64_t kMinOpset = 7;
constexpr int64_t kMaxOpset = 18;

/// Reads and checks `path`: ConfigError (exit 2) naming the file for a file
/// that is not ONNX, fails ONNX's checker, has several inputs or outputs, or
/// uses what the importer cannot represent; IoError (exit 3) when it cannot be read.
Graph read_graph(const std::string& path);
/// The same from bytes in memory (`source` names them in messages).
Graph parse_graph(const std::string& bytes, const std::string& source);

}  // namespace edmips::onnx
