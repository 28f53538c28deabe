#include "onnx/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <climits>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "core/stable_id.h"

namespace edmips::onnx {
namespace {

namespace pb = ::onnx;
constexpr const char* kQonnxDomain = "qonnx.custom_op.general";

/// Builds the rewritten graph: the source's nodes with quantizers inserted
/// before and into each layer, new initializers for every value written.
class GraphWriter {
 public:
  GraphWriter(pb::ModelProto& model, ExportFormat format) : model_(model), format_(format) {
    for (const auto& init : model_.graph().initializer()) names_.insert(init.name());
    for (const auto& node : model_.graph().node()) {
      for (const auto& o : node.output()) names_.insert(o);
    }
  }

  /// A name not used in the graph yet, from `base`.
  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int i = 1; names_.count(name); ++i) name = base + "_" + std::to_string(i);
    names_.insert(name);
    return name;
  }

  std::string floats(const std::string& base, const std::vector<float>& values, const std::vector<int64_t>& dims) {
    auto* t = model_.mutable_graph()->add_initializer();
    t->set_name(fresh(base));
    t->set_data_type(pb::TensorProto::FLOAT);
    for (auto d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
    return t->name();
  }
  std::string scalar(const std::string& base, float value) { return floats(base, {value}, {}); }

  template <typename T>
  std::string integers(const std::string& base, int type, const std::vector<T>& values,
                       const std::vector<int64_t>& dims) {
    auto* t = model_.mutable_graph()->add_initializer();
    t->set_name(fresh(base));
    t->set_data_type(type);
    for (auto d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
    return t->name();
  }

  pb::NodeProto node(const std::string& op, const std::vector<std::string>& inputs, const std::string& output_base,
                     const std::string& domain = "") {
    pb::NodeProto n;
    n.set_op_type(op);
    n.set_name(fresh(output_base + "/" + op));
    if (!domain.empty()) n.set_domain(domain);
    for (const auto& i : inputs) n.add_input(i);
    n.add_output(fresh(output_base));
    return n;
  }

  static void set_int(pb::NodeProto& n, const std::string& name, int64_t value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(pb::AttributeProto::INT);
    a->set_i(value);
  }
  static void set_string(pb::NodeProto& n, const std::string& name, const std::string& value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(pb::AttributeProto::STRING);
    a->set_s(value);
  }

  /// QONNX Quant: y = (clip(round(x / scale + zeropt)) - zeropt) * scale.
  pb::NodeProto quant(const std::string& x, double scale, double zero_point, int bits, bool is_signed,
                      const std::string& base) {
    if (is_signed && bits == 1) {
      // QONNX's 1-bit signed Quant is bipolar, +-1 by the sign of x / scale + zeropt, times scale:
      // the mid-rise levels +-step/2 are scale step/2 with no zero point.
      scale = scale / 2;
      zero_point = 0;
    }
    auto n = node("Quant", {x, scalar(base + "_scale", float(scale)), scalar(base + "_zeropt", float(zero_point)),
                            scalar(base + "_bitwidth", float(bits))},
                  base, kQonnxDomain);
    set_int(n, "signed", is_signed ? 1 : 0);
    set_int(n, "narrow", 0);
    set_string(n, "rounding_mode", "ROUND");
    return n;
  }

  /// The nodes that quantize `value` as the layer's activation quantizer; returns the quantized value.
  std::string quantize_activation(const ExportedLayer& l, const std::string& value, std::vector<pb::NodeProto>& out) {
    const std::string base = l.layer + "_input_quantized";
    const double step = l.activation_step;
    const int levels = (1 << l.activation_bits) - 1;
    if (format_ == ExportFormat::qonnx) {
      // HWGQ: levels 0..2^b-1 times the step; signed mid-rise: (j + 1/2) * step.
      out.push_back(l.signed_input ? quant(value, step, -0.5, l.activation_bits, true, base)
                                   : quant(value, step, 0.0, l.activation_bits, false, base));
      return out.back().output(0);
    }
    const auto scale = scalar(base + "_scale", float(step));
    if (!l.signed_input) {
      // HWGQ = clamp to [0, (2^b - 1) step], then round to the step: Clip + Q + DQ, round half to even in both.
      const auto zero = integers<uint8_t>(base + "_zero_point", pb::TensorProto::UINT8, {0}, {});
      out.push_back(node("Clip", {value, scalar(base + "_min", 0.0f), scalar(base + "_max", float(step * levels))},
                         base + "_clipped"));
      out.push_back(node("QuantizeLinear", {out.back().output(0), scale, zero}, base + "_q"));
      out.push_back(node("DequantizeLinear", {out.back().output(0), scale, zero}, base));
      return out.back().output(0);
    }
    // Mid-rise: level k - 1/2 for k = round(x / step + 1/2) in [-(2^(b-1) - 1), 2^(b-1)]; the shift by
    // half a step and a zero point of 2^(b-1) - 1 put k into uint8.
    const double limit = step * ((1 << (l.activation_bits - 1)) - 0.5);
    const auto half = scalar(base + "_half_step", float(step / 2));
    const auto zero = integers<uint8_t>(base + "_zero_point", pb::TensorProto::UINT8,
                                        {uint8_t((1 << (l.activation_bits - 1)) - 1)}, {});
    out.push_back(node("Clip", {value, scalar(base + "_min", float(-limit)), scalar(base + "_max", float(limit))},
                       base + "_clipped"));
    out.push_back(node("Add", {out.back().output(0), half}, base + "_shifted"));
    out.push_back(node("QuantizeLinear", {out.back().output(0), scale, zero}, base + "_q"));
    out.push_back(node("DequantizeLinear", {out.back().output(0), scale, zero}, base + "_dq"));
    out.push_back(node("Sub", {out.back().output(0), half}, base));
    return out.back().output(0);
  }

  /// The layer's weight as the file lays it out (transposed back where it was).
  static std::pair<std::vector<float>, std::vector<int64_t>> file_layout(const ExportedLayer& l) {
    if (!l.transposed) return {l.weight, l.weight_dims};
    const int64_t rows = l.weight_dims[0], cols = l.weight_dims[1];
    std::vector<float> t(l.weight.size());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) t[size_t(c * rows + r)] = l.weight[size_t(r * cols + c)];
    }
    return {t, {cols, rows}};
  }

  /// The value the layer's node reads as its weight.
  std::string weight(const ExportedLayer& l, std::vector<pb::NodeProto>& out) {
    const auto [values, dims] = file_layout(l);
    const std::string base = l.layer + "_weight";
    if (!l.quantized || format_ == ExportFormat::float_model) return floats(base, values, dims);
    if (format_ == ExportFormat::qonnx) {
      // Mid-rise levels (j + 1/2) * step, j in [-2^(b-1), 2^(b-1) - 1]: zero point -1/2.
      out.push_back(quant(floats(base + "_levels", values, dims), l.weight_step, -0.5, l.weight_bits, true, base));
      return out.back().output(0);
    }
    // Odd integers in [-(2^b - 1), 2^b - 1] times step / 2: int8 up to 7 bits, int32 at 8.
    const double half = l.weight_step / 2;
    const auto scale = scalar(base + "_scale", float(half));
    if (l.weight_bits <= 7) {
      std::vector<int8_t> q;
      for (float v : values) q.push_back(int8_t(std::lround(v / half)));
      const auto zero = integers<int8_t>(base + "_zero_point", pb::TensorProto::INT8, {0}, {});
      out.push_back(node("DequantizeLinear", {integers<int8_t>(base + "_int", pb::TensorProto::INT8, q, dims), scale, zero},
                         base));
    } else {
      std::vector<int32_t> q;
      for (float v : values) q.push_back(int32_t(std::lround(v / half)));
      out.push_back(node("DequantizeLinear", {integers<int32_t>(base + "_int", pb::TensorProto::INT32, q, dims), scale},
                         base));
    }
    return out.back().output(0);
  }

 private:
  pb::ModelProto& model_;
  ExportFormat format_;
  std::set<std::string> names_;
};

/// Inference form of nodes exported in training mode: BatchNormalization's
/// running-statistic outputs and training_mode go, Dropout becomes Identity.
void to_inference(pb::NodeProto& n) {
  if (n.op_type() == "BatchNormalization") {
    while (n.output_size() > 1) n.mutable_output()->RemoveLast();
    for (int i = 0; i < n.attribute_size(); ++i) {
      if (n.attribute(i).name() == "training_mode") n.mutable_attribute(i)->set_i(0);
    }
  } else if (n.op_type() == "Dropout") {
    n.set_op_type("Identity");
    n.clear_attribute();
    while (n.input_size() > 1) n.mutable_input()->RemoveLast();
    while (n.output_size() > 1) n.mutable_output()->RemoveLast();
  }
}

void set_float_attribute(pb::NodeProto& n, const std::string& name, float value) {
  for (int i = 0; i < n.attribute_size(); ++i) {
    if (n.attribute(i).name() == name) {
      n.mutable_attribute(i)->set_f(value);
      return;
    }
  }
}

void drop_unused_initializers(pb::GraphProto& g) {
  std::set<std::string> used;
  for (const auto& n : g.node()) {
    for (const auto& i : n.input()) used.insert(i);
  }
  for (const auto& o : g.output()) used.insert(o.name());
  auto* inits = g.mutable_initializer();
  std::set<std::string> dropped;
  for (int i = inits->size() - 1; i >= 0; --i) {
    if (!used.count(inits->Get(i).name())) {
      dropped.insert(inits->Get(i).name());
      inits->DeleteSubrange(i, 1);
    }
  }
  auto* inputs = g.mutable_input();  // old exporters list initializers as inputs
  for (int i = inputs->size() - 1; i >= 0; --i) {
    if (dropped.count(inputs->Get(i).name())) inputs->DeleteSubrange(i, 1);
  }
}

}  // namespace

void write_export(const std::string& source, const std::string& content_id, const std::vector<ExportedLayer>& layers,
                  const std::vector<ExportedBatchNorm>& batch_norms, ExportFormat format,
                  const nlohmann::json& metadata, const std::string& out) {
  const auto bytes = read_text_file(source, size_t(INT_MAX));
  if (stable_id(bytes) != content_id) {
    throw ConfigError(source + ": changed since the trial imported it (content " + stable_id(bytes) + ", trial " +
                      content_id + "): export needs the file the trial ran on");
  }
  write_export_bytes(bytes, source, layers, batch_norms, format, metadata, out);
}

std::string serialize_graph(const GraphSpec& spec) {
  pb::ModelProto model;
  model.set_ir_version(7);  // ONNX 1.8, the first with opset 13: the oldest runtimes that read this file
  auto* op = model.add_opset_import();
  op->set_domain("");
  op->set_version(13);
  model.set_producer_name("edmips-sweep");
  auto* graph = model.mutable_graph();
  graph->set_name("edmips");
  auto value = [](pb::ValueInfoProto* v, const std::string& name, const std::vector<int64_t>& dims) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(pb::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_param("batch");
    for (auto d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
  };
  value(graph->add_input(), spec.input, {spec.channels, spec.height, spec.width});
  value(graph->add_output(), spec.output, {spec.classes});
  for (const auto& t : spec.initializers) {
    auto* init = graph->add_initializer();
    init->set_name(t.name);
    init->set_data_type(pb::TensorProto::FLOAT);
    for (auto d : t.dims) init->add_dims(d);
    init->set_raw_data(std::string(reinterpret_cast<const char*>(t.values.data()), t.values.size() * sizeof(float)));
  }
  for (const auto& n : spec.nodes) {
    auto* node = graph->add_node();
    node->set_op_type(n.op);
    node->set_name(n.name);
    for (const auto& i : n.inputs) node->add_input(i);
    for (const auto& o : n.outputs) node->add_output(o);
    for (const auto& [name, values] : n.ints) {
      auto* a = node->add_attribute();
      a->set_name(name);
      a->set_type(pb::AttributeProto::INTS);
      for (auto v : values) a->add_ints(v);
    }
    for (const auto& [name, v] : n.int_scalars) {
      auto* a = node->add_attribute();
      a->set_name(name);
      a->set_type(pb::AttributeProto::INT);
      a->set_i(v);
    }
    for (const auto& [name, v] : n.floats) {
      auto* a = node->add_attribute();
      a->set_name(name);
      a->set_type(pb::AttributeProto::FLOAT);
      a->set_f(v);
    }
  }
  return model.SerializeAsString();
}

void write_export_bytes(const std::string& bytes, const std::string& source, const std::vector<ExportedLayer>& layers,
                        const std::vector<ExportedBatchNorm>& batch_norms, ExportFormat format,
                        const nlohmann::json& metadata, const std::string& out) {
  pb::ModelProto model;
  if (!model.ParseFromString(bytes)) throw ConfigError(source + ": not an ONNX model");
  for (const auto& op : model.opset_import()) {
    if ((op.domain().empty() || op.domain() == "ai.onnx") && op.version() < 11) {
      throw ConfigError(source + ": opset " + std::to_string(op.version()) +
                        ": export needs opset 11 or later (Clip with bounds as inputs); re-export the model");
    }
  }
  std::map<std::string, const ExportedLayer*> by_node;
  for (const auto& l : layers) by_node[l.node] = &l;
  std::map<std::string, const ExportedBatchNorm*> bn_by_node;
  for (const auto& b : batch_norms) bn_by_node[b.node] = &b;

  GraphWriter writer(model, format);
  std::vector<pb::NodeProto> nodes;
  for (auto n : model.graph().node()) {
    to_inference(n);
    if (auto it = by_node.find(n.name()); it != by_node.end()) {
      const auto& l = *it->second;
      if (l.quantized && l.quantize_input && format != ExportFormat::float_model) {
        n.set_input(0, writer.quantize_activation(l, n.input(0), nodes));
      }
      n.set_input(1, writer.weight(l, nodes));
      if (!l.bias.empty()) {
        const auto bias = writer.floats(l.layer + "_bias", l.bias, {int64_t(l.bias.size())});
        if (n.input_size() > 2) n.set_input(2, bias);
        else n.add_input(bias);
      }
      // The layer's weights already hold Gemm's alpha and its bias beta.
      if (n.op_type() == "Gemm") {
        set_float_attribute(n, "alpha", 1.0f);
        set_float_attribute(n, "beta", 1.0f);
      }
    } else if (auto b = bn_by_node.find(n.name()); b != bn_by_node.end()) {
      const auto& bn = *b->second;
      const int64_t c = int64_t(bn.scale.size());
      n.set_input(1, writer.floats(bn.node + "_scale", bn.scale, {c}));
      n.set_input(2, writer.floats(bn.node + "_bias", bn.bias, {c}));
      n.set_input(3, writer.floats(bn.node + "_mean", bn.mean, {c}));
      n.set_input(4, writer.floats(bn.node + "_var", bn.variance, {c}));
    }
    nodes.push_back(std::move(n));
  }
  auto* graph = model.mutable_graph();
  graph->clear_node();
  for (auto& n : nodes) *graph->add_node() = std::move(n);
  drop_unused_initializers(*graph);
  if (format == ExportFormat::qonnx) {
    auto* op = model.add_opset_import();
    op->set_domain(kQonnxDomain);
    op->set_version(1);
  }
  auto* meta = model.add_metadata_props();
  meta->set_key("edmips");
  meta->set_value(metadata.dump());
  model.set_producer_name("edmips-sweep");
  try {
    pb::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(std::string("the exported model fails the ONNX checker (a bug in the exporter): ") + e.what());
  }
  write_file_atomically(out, model.SerializeAsString());
}

}  // namespace edmips::onnx
