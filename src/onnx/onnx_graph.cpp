#include "onnx/onnx_graph.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/files.h"

namespace edmips::onnx {
namespace {

namespace pb = ::onnx;

// protobuf refuses messages of 2 GiB and more; ONNX keeps larger weights in
// external files, which this importer does not read.
constexpr size_t kMaxFileBytes = size_t(INT_MAX);

template <typename T>
std::vector<T> raw_values(const std::string& raw, const std::string& what) {
  if (raw.size() % sizeof(T) != 0) throw ConfigError(what + ": raw_data is not a whole number of elements");
  std::vector<T> out(raw.size() / sizeof(T));
  if (!raw.empty()) std::memcpy(out.data(), raw.data(), raw.size());  // ONNX stores little-endian, as x86 does
  return out;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent == 0) {
    float value = std::ldexp(float(mantissa), -24);
    return sign ? -value : value;
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

TensorData convert_tensor(const pb::TensorProto& t, const std::string& what) {
  TensorData out;
  out.name = t.name();
  out.dims.assign(t.dims().begin(), t.dims().end());
  int64_t count = 1;
  for (auto d : out.dims) {
    if (d < 0 || (d > 0 && count > INT64_MAX / d)) throw ConfigError(what + ": invalid dimension " + std::to_string(d));
    count *= d;
  }
  if (t.data_location() == pb::TensorProto::EXTERNAL) {
    throw ConfigError(what + ": weights in an external data file are not supported; save the model with "
                             "its weights inside (onnx.save(model, path, save_as_external_data=False))");
  }
  const bool raw = t.has_raw_data();
  switch (t.data_type()) {
    case pb::TensorProto::FLOAT:
      out.floats = raw ? raw_values<float>(t.raw_data(), what)
                       : std::vector<float>(t.float_data().begin(), t.float_data().end());
      break;
    case pb::TensorProto::DOUBLE: {
      const auto values = raw ? raw_values<double>(t.raw_data(), what)
                              : std::vector<double>(t.double_data().begin(), t.double_data().end());
      out.floats.assign(values.begin(), values.end());
      break;
    }
    case pb::TensorProto::FLOAT16: {
      const auto values = raw ? raw_values<uint16_t>(t.raw_data(), what)
                              : std::vector<uint16_t>(t.int32_data().begin(), t.int32_data().end());
      for (auto v : values) out.floats.push_back(half_to_float(v));
      break;
    }
    case pb::TensorProto::INT64:
      out.type = TensorData::Type::int64;
      out.ints = raw ? raw_values<int64_t>(t.raw_data(), what)
                     : std::vector<int64_t>(t.int64_data().begin(), t.int64_data().end());
      break;
    case pb::TensorProto::INT32: case pb::TensorProto::INT8: case pb::TensorProto::UINT8:
    case pb::TensorProto::BOOL: {
      out.type = TensorData::Type::int64;
      if (!raw) {
        out.ints.assign(t.int32_data().begin(), t.int32_data().end());
      } else if (t.data_type() == pb::TensorProto::INT32) {
        const auto values = raw_values<int32_t>(t.raw_data(), what);
        out.ints.assign(values.begin(), values.end());
      } else if (t.data_type() == pb::TensorProto::INT8) {
        const auto values = raw_values<int8_t>(t.raw_data(), what);
        out.ints.assign(values.begin(), values.end());
      } else {
        const auto values = raw_values<uint8_t>(t.raw_data(), what);
        out.ints.assign(values.begin(), values.end());
      }
      break;
    }
    default:
      throw ConfigError(what + ": element type " + std::to_string(t.data_type()) +
                        " is not supported (float32/64/16 and integer tensors are)");
  }
  if (out.element_count() != count) {
    throw ConfigError(what + ": holds " + std::to_string(out.element_count()) + " values but its dimensions make " +
                      std::to_string(count));
  }
  return out;
}

Attribute convert_attribute(const pb::AttributeProto& a, const std::string& what) {
  Attribute out;
  switch (a.type()) {
    case pb::AttributeProto::FLOAT: out.kind = Attribute::Kind::float_value; out.f = a.f(); break;
    case pb::AttributeProto::INT: out.kind = Attribute::Kind::int_value; out.i = a.i(); break;
    case pb::AttributeProto::STRING: out.kind = Attribute::Kind::string_value; out.s = a.s(); break;
    case pb::AttributeProto::FLOATS:
      out.kind = Attribute::Kind::floats;
      out.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case pb::AttributeProto::INTS:
      out.kind = Attribute::Kind::ints;
      out.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case pb::AttributeProto::TENSOR:
      out.kind = Attribute::Kind::tensor;
      out.tensor = convert_tensor(a.t(), what + " attribute " + a.name());
      break;
    default: out.kind = Attribute::Kind::other; break;
  }
  return out;
}

std::vector<int64_t> value_dims(const pb::ValueInfoProto& value) {
  std::vector<int64_t> dims;
  if (!value.type().has_tensor_type() || !value.type().tensor_type().has_shape()) return dims;
  for (const auto& d : value.type().tensor_type().shape().dim()) {
    dims.push_back(d.has_dim_value() && d.dim_value() > 0 ? d.dim_value() : -1);
  }
  return dims;
}

void check_model(const pb::ModelProto& model, const std::string& source) {
  try {
    pb::checker::check_model(model);
  } catch (const std::exception& e) {
    std::string message = e.what();
    if (message.size() > 1000) message = message.substr(0, 1000) + "...";
    throw ConfigError(source + ": fails the ONNX checker: " + message);
  }
}

}  // namespace

Graph parse_graph(const std::string& bytes, const std::string& source) {
  if (bytes.size() >= kMaxFileBytes) throw ConfigError(source + ": ONNX files of 2 GiB or more are not supported");
  pb::ModelProto model;
  if (bytes.empty() || !model.ParseFromArray(bytes.data(), int(bytes.size()))) {
    throw ConfigError(source + ": not an ONNX model (the protobuf message does not parse; truncated or another format?)");
  }
  if (!model.has_graph()) throw ConfigError(source + ": not an ONNX model (no graph)");
  check_model(model, source);

  Graph g;
  g.source = source;
  g.producer = model.producer_name() + " " + model.producer_version();
  for (const auto& op : model.opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") g.opset = op.version();
  }
  if (g.opset < kMinOpset || g.opset > kMaxOpset) {
    throw ConfigError(source + ": opset " + std::to_string(g.opset) + " of the default domain; the importer reads " +
                      std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset));
  }
  const auto& graph = model.graph();
  for (int i = 0; i < graph.initializer_size(); ++i) {
    const auto& t = graph.initializer(i);
    g.initializers[t.name()] = convert_tensor(t, source + ": initializer " + t.name());
  }
  std::vector<const pb::ValueInfoProto*> inputs;
  for (const auto& input : graph.input()) {
    if (!g.initializers.count(input.name())) inputs.push_back(&input);  // old exporters list weights as inputs
  }
  if (inputs.size() != 1 || graph.output_size() != 1) {
    throw ConfigError(source + ": the graph has " + std::to_string(inputs.size()) + " input(s) and " +
                      std::to_string(graph.output_size()) + " output(s); an image classifier has one of each");
  }
  g.input_name = inputs[0]->name();
  g.input_dims = value_dims(*inputs[0]);
  g.output_name = graph.output(0).name();
  for (int i = 0; i < graph.node_size(); ++i) {
    const auto& n = graph.node(i);
    Node node;
    node.name = n.name().empty() ? "#" + std::to_string(i) : n.name();
    node.op_type = n.op_type();
    node.domain = n.domain() == "ai.onnx" ? "" : n.domain();
    node.inputs.assign(n.input().begin(), n.input().end());
    node.outputs.assign(n.output().begin(), n.output().end());
    for (const auto& a : n.attribute()) {
      node.attributes[a.name()] = convert_attribute(a, source + ": " + node.label());
    }
    g.nodes.push_back(std::move(node));
  }
  return g;
}

Graph read_graph(const std::string& path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (error || !std::filesystem::exists(status)) throw ConfigError(path + ": ONNX model file not found");
  if (!std::filesystem::is_regular_file(status)) throw ConfigError(path + ": the ONNX model is not a regular file");
  return parse_graph(read_text_file(path, kMaxFileBytes), path);
}

}  // namespace edmips::onnx
