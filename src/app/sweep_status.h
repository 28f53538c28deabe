// app: `edmips status DIR`, what a sweep directory says about the sweep that
// runs (or ran) in it: done / running / failed / pending, throughput, ETA and
// the best mixed configuration so far against each uniform baseline. It only
// reads what the sweep writes (journal, status.json, trial histories), never
// writes, and works on a cluster filesystem while the sweep runs.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <nlohmann/json.hpp>

namespace edmips {

/// Reads the sweep in `directory` (ConfigError when it is no sweep output).
nlohmann::json read_sweep_status(const std::filesystem::path& directory);

/// Prints a status read by read_sweep_status for a person.
void print_sweep_status(std::ostream& out, const nlohmann::json& status);

struct StatusCommand {
  std::string directory;
  bool json = false;
  double watch_s = 0;  ///< > 0: refresh every this many seconds until the sweep ends or is found dead
  double start_wait_s = 600;  ///< with watch_s: how long to wait for a sweep that has not written its journal
};
/// `edmips status`: returns the exit code.
int run_status_command(const StatusCommand& command);

}  // namespace edmips
