// app: the behaviour behind each `edmips` sub-command, so the executable's
// main only parses arguments. Depends on every layer below; no LibTorch here.
#pragma once

#include <string>

namespace edmips {

struct TrialCommand {
  std::string config_path;
  std::string out_dir;
  int threads = 0;  ///< 0: from the config, else all cores
  bool quiet = false;
};
/// `edmips trial`: runs or resumes one trial; returns the exit code.
int run_trial_command(const TrialCommand& command);

/// `edmips validate`: checks a sweep file; prints its trial count.
int run_validate_command(const std::string& sweep_path);
/// `edmips plan`: lists the trials of a sweep without running anything.
/// With `out` (a sweep directory), also the budgets' probes and decisions so far.
int run_plan_command(const std::string& sweep_path, const std::string& out = "");

struct SlurmOverrides;
struct SlurmCommand {
  std::string sweep_path;
  std::string out;  ///< default: results/<sweep name>
  bool dry_run = false;
};
/// `edmips slurm`: writes the sweep's sbatch script and submits it (or prints it).
int run_slurm_command(const SlurmCommand& command, const SlurmOverrides& overrides);

struct ParetoOptions;
/// `edmips pareto`: fronts, hypervolumes and dominance; writes the report files into `out`.
int run_pareto_command(const ParetoOptions& options, const std::string& out);

/// `edmips report`: the Pareto analysis (as `pareto`) and then the plots
/// (analysis/plots.py, through a Python with matplotlib and pandas).
int run_report_command(const ParetoOptions& options, const std::string& out);

/// `edmips --version`: version, LibTorch, CUDA, where the shared files are.
int run_version_command();

/// `edmips export TRIAL_DIR --format qdq|qonnx|float --out FILE.onnx`.
struct ExportCommand {
  std::string trial_dir, format = "qdq", out;
};
int run_export_command(const ExportCommand& command);

/// `edmips cost-table MODEL_OR_CONFIG --out table.json`: the template of a
/// cost table (docs/costs.md). MODEL_OR_CONFIG: a trial config (.json), an
/// ONNX model (.onnx) or a built-in model's name (the default trial config
/// around it). Refuses to replace an existing file unless `force`.
struct CostTableCommand {
  std::string source, out;
  bool force = false;
};
int run_cost_table_command(const CostTableCommand& command);

struct StepBenchmarkOptions;
/// `edmips bench`: step-time table of float / search / fixed / naive forms.
int run_bench_command(const StepBenchmarkOptions& options);

}  // namespace edmips
