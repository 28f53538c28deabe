// onnx: writes a trained network back into the ONNX file it was imported
// from: the same graph with the trained weights and BatchNorm statistics,
// and for a quantized network its quantizers as standard QDQ nodes or as
// QONNX `Quant` nodes. No LibTorch: the caller (app/export_command) hands
// over plain arrays. docs/onnx.md says what each format holds.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace edmips::onnx {

enum class ExportFormat {
  qdq,          ///< standard ONNX: int weights + DequantizeLinear, Clip + QuantizeLinear + DequantizeLinear
  qonnx,        ///< the QONNX dialect: Quant nodes with a bitwidth (FINN, the qonnx package)
  float_model,  ///< the float network with its current weights
};
/// "qdq", "qonnx", "float" -> the format; ConfigError otherwise.
ExportFormat export_format_from_string(const std::string& text);

/// One Conv / Gemm / MatMul layer as the exporter writes it.
struct ExportedLayer {
  std::string layer;       ///< the network's layer name (metadata)
  std::string node;        ///< the node in the source file
  std::string data_input;  ///< the value the node reads
  bool transposed = false; ///< the file holds weight^T (MatMul, Gemm with transB = 0)
  std::vector<int64_t> weight_dims;  ///< the layer's layout: [out, in/groups, kh, kw] or [out, in]
  /// Float: the trained weights. Quantized: the quantizer's output, every
  /// value an odd multiple of weight_step / 2.
  std::vector<float> weight;
  std::vector<float> bias;  ///< empty when the layer has none
  bool quantized = false;
  int weight_bits = 32, activation_bits = 32;
  double weight_step = 0;      ///< the weight quantizer's step (std(w) * c_b)
  bool quantize_input = false; ///< false for the data layer: its input is the image
  bool signed_input = false;   ///< mid-rise signed quantizer; else HWGQ (unsigned)
  double activation_step = 0;  ///< input scale * the unit quantizer's step
};

struct ExportedBatchNorm {
  std::string node;
  std::vector<float> scale, bias, mean, variance;
};

/// A float graph described without protobuf: how a built-in network is
/// written out (models/builtin_graph), so it exports like an imported one.
struct GraphSpec {
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;
    std::vector<float> values;
  };
  struct Node {
    std::string op, name;
    std::vector<std::string> inputs, outputs;
    std::vector<std::pair<std::string, std::vector<int64_t>>> ints;  ///< INTS attributes
    std::vector<std::pair<std::string, int64_t>> int_scalars;        ///< INT attributes
    std::vector<std::pair<std::string, float>> floats;               ///< FLOAT attributes
  };
  std::string input, output;  ///< the graph's input (N x channels x height x width) and logits (N x classes)
  int64_t channels = 0, height = 0, width = 0, classes = 0;
  std::vector<Node> nodes;
  std::vector<Tensor> initializers;
};

/// The ONNX model (opset 13, batch size free) of `spec`, serialized.
std::string serialize_graph(const GraphSpec& spec);

/// As write_export, from a model already in memory (`source` names it in errors).
void write_export_bytes(const std::string& bytes, const std::string& source, const std::vector<ExportedLayer>& layers,
                        const std::vector<ExportedBatchNorm>& batch_norms, ExportFormat format,
                        const nlohmann::json& metadata, const std::string& out);

/// Reads `source` (whose stable_id must be `content_id`: ConfigError if the
/// file changed), writes the export to `out` atomically, and checks it with
/// ONNX's checker. `metadata` goes into metadata_props ("edmips").
void write_export(const std::string& source, const std::string& content_id, const std::vector<ExportedLayer>& layers,
                  const std::vector<ExportedBatchNorm>& batch_norms, ExportFormat format,
                  const nlohmann::json& metadata, const std::string& out);

}  // namespace edmips::onnx
