// app: `edmips export`: a finished trial's network written as ONNX (QDQ,
// QONNX or float): into the graph it was imported from, or for a built-in
// model into the graph its modules describe (models/builtin_graph.h).
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "app/commands.h"
#include "core/error.h"
#include "core/files.h"
#include "data/dataset.h"
#include "models/builtin_graph.h"
#include "models/onnx_network.h"
#include "onnx/onnx_export.h"
#include "quant/quantizers.h"
#include "quant/step_sizes.h"
#include "trial/trial.h"

namespace edmips {
namespace {

const char* input_kind(const QuantLayerImpl& l) {
  if (!l.quantized()) return "float";
  switch (l.precision().input) {
    case LayerInput::data: return "data";
    case LayerInput::signed_values: return "signed";
    default: return "unsigned";
  }
}

onnx::ExportedLayer exported_layer(const QuantLayerImpl& l, const OnnxLayerOrigin& origin, onnx::ExportFormat format,
                                   nlohmann::json& metadata) {
  torch::NoGradGuard no_grad;
  onnx::ExportedLayer e;
  e.layer = l.layer_name();
  e.node = origin.node;
  e.data_input = origin.data_input;
  e.transposed = origin.transposed;
  for (auto d : l.weight.sizes()) e.weight_dims.push_back(d);
  if (l.bias.defined()) e.bias = float_values(l.bias);
  e.quantized = l.quantized();
  const bool write_quantizers = e.quantized && format != onnx::ExportFormat::float_model;
  // What the network computes: the same quantizer its forward pass calls.
  const StepTable table = l.precision().step_table;
  e.weight = float_values(write_quantizers ? quantize_weight(l.weight, l.precision().weight_bits[0], table)
                                           : l.weight);
  nlohmann::json entry = {{"layer", e.layer}, {"node", e.node}, {"input", input_kind(l)}};
  if (e.quantized) {
    e.weight_bits = l.precision().weight_bits[0];
    e.activation_bits = l.precision().activation_bits[0];
    e.weight_step = l.weight.std().item<double>() * weight_step(e.weight_bits, table);
    e.quantize_input = l.precision().input != LayerInput::data;
    e.signed_input = l.precision().input == LayerInput::signed_values;
    if (l.precision().input == LayerInput::pre_activation) {
      // The built-in rule: HWGQ at the released step, no input scale; the
      // described graph's ReLU before the quantizer is its clip at 0.
      e.activation_step = activation_step(e.activation_bits, table);
    } else if (e.quantize_input) {
      const double unit =
          e.signed_input ? weight_step(e.activation_bits, table) : activation_step(e.activation_bits, table);
      e.activation_step = l.input_scale.item<double>() * unit;
    }
    entry.update({{"weight_bits", e.weight_bits},
                  {"activation_bits", e.activation_bits},
                  {"weight_step", e.weight_step},
                  {"activation_step", e.activation_step}});
  }
  metadata["layers"].push_back(entry);
  return e;
}

/// The first `count` test images as the network sees them: an in-memory
/// test set's, or an image folder's first validation images, centre-cropped
/// and normalised by the folder's evaluation transform.
torch::Tensor first_test_images(const Dataset& data, int64_t count) {
  if (data.folder) {
    const auto& folder = *data.folder;
    count = std::min(count, folder.size(false));
    if (count == 0) return {};
    const int64_t side = folder.image_size();
    auto images = torch::empty({count, 3, side, side});
    for (int64_t i = 0; i < count; ++i) folder.load(false, i, 0, 0, false, images[i].data_ptr<float>());
    return images;
  }
  if (!data.test_images.defined() || data.test_images.size(0) == 0) return {};
  return data.test_images.narrow(0, 0, std::min(count, data.test_images.size(0)));
}

/// Our network's logits on the first test images, for a runtime to be
/// checked against (analysis/onnx_check.py compare). An image folder's
/// images are decoded here, so their input tensors go beside the sidecar
/// (`inputs_file`, float32, row-major) for the client to read.
nlohmann::json reference_logits(NetworkImpl& net, const Dataset& data, const std::string& out) {
  constexpr int64_t kImages = 8;
  const auto images = first_test_images(data, kImages).contiguous();
  if (!images.defined()) return nullptr;
  nlohmann::json inputs;
  if (data.folder) {
    const auto file = out + ".inputs.f32";
    write_file_atomically(file, std::string(static_cast<const char*>(images.data_ptr()),
                                            size_t(images.numel()) * sizeof(float)));
    inputs = {{"file", std::filesystem::path(file).filename().string()}, {"shape", images.sizes().vec()}};
  }
  torch::NoGradGuard no_grad;
  net.eval();
  const auto logits = net.forward(images).to(torch::kDouble).contiguous();
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t i = 0; i < logits.size(0); ++i) {
    const auto row = logits[i];
    rows.push_back(std::vector<double>(row.data_ptr<double>(), row.data_ptr<double>() + row.numel()));
  }
  nlohmann::json reference = {
      {"test_images", "the first " + std::to_string(logits.size(0)) + " of the test set, normalised as above"},
      {"logits", rows}};
  if (!inputs.is_null()) reference["inputs_file"] = inputs;
  return reference;
}

}  // namespace

int run_export_command(const ExportCommand& command) {
  const auto format = onnx::export_format_from_string(command.format);
  const auto trained = load_trained_network(command.trial_dir);
  const auto& config = trained.config;
  const auto& net = *trained.network;
  const bool builtin = config.model_onnx.empty();
  // A built-in model exports from the graph its modules describe, with their
  // trained values already in it; an imported one into its source file.
  const auto described = builtin ? describe_builtin(net, trained.data->input) : BuiltinGraph{};
  const auto origins = builtin ? described.origins : onnx_layer_origins(net);
  nlohmann::json metadata = {{"trial_id", trained.trial_id},
                             {"model", config.model},
                             {"source", builtin ? "built-in model " + config.model : config.model_onnx},
                             {"format", command.format},
                             {"batch_norm_folded", false},
                             {"input_normalisation", trained.input_normalisation},
                             {"top1", trained.result.value("top1", nlohmann::json())},
                             {"bitops", trained.result.value("bitops", nlohmann::json())},
                             {"normalised_bits", trained.result.value("normalised_bits", nlohmann::json())},
                             {"layers", nlohmann::json::array()}};
  // In the sidecar only (metadata_props stays small): what the file must compute.
  // A float export of a quantized trial computes what no network of ours does: no reference there.
  const bool quantized = std::any_of(net.layers().begin(), net.layers().end(),
                                     [](const QuantLayer& l) { return l->quantized(); });
  const auto reference = format == onnx::ExportFormat::float_model && quantized
                             ? nlohmann::json()
                             : reference_logits(*trained.network, *trained.data, command.out);
  std::vector<onnx::ExportedLayer> layers;
  for (size_t i = 0; i < net.layers().size(); ++i) {
    layers.push_back(exported_layer(*net.layers()[i], origins.at(i), format, metadata));
  }
  if (builtin) {
    onnx::write_export_bytes(described.model, "model " + config.model, layers, {}, format, metadata, command.out);
  } else {
    std::vector<onnx::ExportedBatchNorm> batch_norms;
    for (const auto& [node, bn] : onnx_batch_norms(net)) {
      batch_norms.push_back({node, float_values(bn->weight), float_values(bn->bias), float_values(bn->running_mean),
                             float_values(bn->running_var)});
    }
    onnx::write_export(config.model_onnx, config.model_onnx_content, layers, batch_norms, format, metadata,
                       command.out);
  }
  auto sidecar = metadata;
  if (!reference.is_null()) sidecar["reference"] = reference;
  write_file_atomically(command.out + ".json", sidecar.dump(2) + "\n");
  std::printf("exported trial %s (%s) as %s: %s (layers and bits in %s.json)\n", trained.trial_id.c_str(),
              config.model.c_str(), command.format.c_str(), command.out.c_str(), command.out.c_str());
  return 0;
}

}  // namespace edmips
