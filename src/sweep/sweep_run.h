// sweep: `edmips sweep` on one rank: starts MPI, checks the job's shape,
// and runs the coordinator (rank 0, with a local worker thread) or a worker.
#pragma once

#include <string>

#include "sweep/executor.h"

namespace edmips {

struct SweepRunOptions {
  std::string sweep_path;
  std::string out;
  int threads = 0;     ///< per rank; 0: SLURM_CPUS_PER_TASK, OMP_NUM_THREADS, or cores / ranks per node
  bool quiet = false;
  bool fake = false;   ///< run the fake executor (tests of the sweep machinery)
  FakeExecutorOptions fake_options;
};

/// Runs this rank's part of the sweep; returns the exit code every rank shares.
int run_sweep(const SweepRunOptions& options);

/// Torch threads for a rank, by the documented rule.
int threads_per_rank(int requested, int ranks_on_node);

}  // namespace edmips
