// slurm: turns a sweep into an sbatch script (from the sweep's optional
// "slurm" section, command-line flags overriding) and submits it. Every value
// that reaches the script is validated or shell-quoted. No LibTorch, no MPI.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace edmips {

/// Resources and behaviour of a sweep's batch job.
struct SlurmJobOptions {
  int nodes = 1;
  int ntasks_per_node = 1;
  int cpus_per_task = 1;
  int gpus_per_task = 0;
  std::string time = "1:00:00";  ///< Slurm time limit: minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]
  std::string partition;         ///< empty: the cluster's default
  std::string account;
  int signal_seconds = 120;      ///< USR2 this long before the time limit: checkpoint and requeue
  int max_restarts = 10;         ///< requeues after an interruption before giving up
};

/// Flags given on the command line (each overrides the sweep file).
struct SlurmOverrides {
  std::optional<int> nodes, ntasks_per_node, cpus_per_task, gpus_per_task;
  std::optional<std::string> time, partition, account;
};

/// Reads the sweep file's "slurm" section (null: defaults) and applies the
/// overrides; ConfigError names the JSON path (or the flag) of a bad value.
SlurmJobOptions resolve_slurm_options(const nlohmann::json& section, const std::string& source,
                                      const SlurmOverrides& overrides);

/// What the script runs.
struct BatchJob {
  std::string sweep_name;
  std::string edmips_binary;  ///< absolute path
  std::string sweep_file;     ///< absolute path
  std::string out_dir;        ///< absolute path (shared by every node)
  int ranks_per_trial = 1;    ///< the sweep's: a comment in the script says how the tasks group
};

/// The sbatch script text.
std::string render_batch_script(const BatchJob& job, const SlurmJobOptions& options);

/// Single-quotes `text` for bash.
std::string shell_quote(const std::string& text);

/// Runs `sbatch --parsable SCRIPT` (no shell); returns the job ID.
std::string submit_batch_script(const std::string& script_path);

}  // namespace edmips
