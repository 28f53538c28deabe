// A build without Debian's libonnx (EDMIPS_WITH_ONNX off, for example a GPU
// node without libonnx-dev): ONNX models are refused with one clear message.
#include "core/error.h"
#include "onnx/onnx_export.h"
#include "onnx/onnx_graph.h"

namespace edmips::onnx {
namespace {
[[noreturn]] void unavailable(const std::string& what) {
  throw ConfigError(what + ": this build of edmips has no ONNX support (configured without libonnx-dev and "
                           "libprotobuf-dev; install them and rebuild)");
}
}  // namespace

Graph read_graph(const std::string& path) { unavailable(path); }
Graph parse_graph(const std::string&, const std::string& source) { unavailable(source); }
void write_export(const std::string& source, const std::string&, const std::vector<ExportedLayer>&,
                  const std::vector<ExportedBatchNorm>&, ExportFormat, const nlohmann::json&, const std::string&) {
  unavailable(source);
}

std::string serialize_graph(const GraphSpec&) { unavailable("export"); }
void write_export_bytes(const std::string&, const std::string& source, const std::vector<ExportedLayer>&,
                        const std::vector<ExportedBatchNorm>&, ExportFormat, const nlohmann::json&,
                        const std::string&) {
  unavailable(source);
}

}  // namespace edmips::onnx
