// sweep: a sweep file parsed into the list of trials it stands for (the
// cartesian product of its axes plus uniform baselines), each with a stable
// ID. No LibTorch and no MPI here: validate and plan use it as is.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trial/trial_config.h"

namespace edmips {

/// One trial of a sweep.
struct PlannedTrial {
  std::string id;
  TrialConfig config;
  std::string kind;            ///< "search" or "uniform"
  double expected_cost = 0;    ///< relative; larger runs first
  nlohmann::json summary;      ///< flat description for plan tables and CSVs
};

struct SweepDefinition {
  std::string name;
  std::string source;          ///< file it came from
  int max_retries = 1;
  nlohmann::json slurm;        ///< optional "slurm" section, as given (null if absent)
  std::vector<PlannedTrial> trials;  ///< in plan order (search trials, then baselines)
};

/// The most trials one sweep file may stand for (axes multiplied out, plus
/// baselines). A larger product is refused before anything is expanded.
constexpr double kMaxSweepTrials = 100000;

/// Parses and validates a sweep; ConfigError names the file and JSON path.
SweepDefinition parse_sweep(const nlohmann::json& j, const std::string& source);
SweepDefinition load_sweep_file(const std::string& path);

/// Values of a {"from", "to", "num", "scale"} range (scale "log" or "linear").
std::vector<double> expand_range(double from, double to, int num, const std::string& scale);

}  // namespace edmips
