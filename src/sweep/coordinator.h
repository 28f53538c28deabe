// sweep: the coordinator (hands trials to workers, longest expected first,
// retries failures, journals every event, keeps results.csv and status.json)
// and the worker loop. Both speak only through transport.h, so the logic
// is the same with one process or many MPI ranks. No LibTorch here.
#pragma once

#include <atomic>
#include <filesystem>
#include <iosfwd>
#include <string>

#include "core/error.h"
#include "core/live_line.h"
#include "sweep/executor.h"
#include "sweep/sweep_definition.h"
#include "sweep/transport.h"

namespace edmips {

struct CoordinatorOptions {
  std::filesystem::path out;
  const std::atomic<bool>* stop_requested = nullptr;
  std::ostream* log = nullptr;  ///< progress lines; none = silent
};

/// Runs the whole sweep from the coordinator's side; returns the exit code:
/// ok (every trial finished), failure (some failed after their retries),
/// interrupted (stopped by a signal; run again to resume).
ExitCode run_coordinator(const SweepDefinition& sweep, CoordinatorEndpoint& endpoint,
                         const CoordinatorOptions& options);

struct WorkerOptions {
  std::filesystem::path out;
  int rank = 0;
  int threads = 0;
  std::atomic<bool>* stop_requested = nullptr;  ///< signals and coordinator aborts set it
  int node_local_rank = 0;  ///< with CUDA, the rank's trials use GPU node_local_rank % GPUs
  LiveLine* live = nullptr;  ///< batch progress in place on a terminal (single-rank sweeps); none = off
  /// The group this worker leads (ranks_per_trial > 1): every trial is
  /// shared with the group's other ranks and run by all of them.
  TrialGroupChannel* group = nullptr;
};

/// Asks for trials and runs them until told to stop (or interrupted). A
/// group's leader tells its group to stop when this returns.
void run_worker(const SweepDefinition& sweep, WorkerEndpoint& endpoint, TrialExecutor& executor,
                const WorkerOptions& options);

/// A group's other ranks: runs each trial the leader shares, on this rank's
/// shards, until the leader says stop. A failure here reaches the group
/// (GroupFailure on the others) and is printed on stderr; the leader reports
/// the trial's outcome to the coordinator.
void run_follower(TrialGroupChannel& group, TrialExecutor& executor, const WorkerOptions& options);

}  // namespace edmips
