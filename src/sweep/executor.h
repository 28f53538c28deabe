// sweep: what runs one trial on a rank. The real executor runs EdMIPS
// trials (datasets cached across trials); the fake one sleeps and writes a
// synthetic result, so the coordinator's logic (scheduling, retries, resume,
// signals) can be tested quickly with real MPI ranks. No LibTorch here.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "trial/trial.h"

namespace edmips {

class TrialExecutor {
 public:
  virtual ~TrialExecutor() = default;
  /// Runs or resumes `config` in `directory`; returns the result JSON.
  /// Throws Interrupted when options.stop_requested becomes true.
  virtual nlohmann::json run(const TrialConfig& config, const std::filesystem::path& directory,
                             const TrialRunOptions& options) = 0;
};

/// The real thing: TrialRunner.
std::unique_ptr<TrialExecutor> make_trial_executor();

/// Behaviour of the fake executor (tests of the sweep machinery only).
struct FakeExecutorOptions {
  double duration_s = 0.2;    ///< per trial, split into 10 checkpointed steps (0: a no-op trial)
  bool busy = false;          ///< burn one core for the duration instead of sleeping (scaling benchmarks)
  int64_t fail_once_seed = -1;   ///< trials with this seed fail on their first attempt
  int64_t fail_always_seed = -1; ///< trials with this seed always fail
};
std::unique_ptr<TrialExecutor> make_fake_executor(const FakeExecutorOptions& options);

}  // namespace edmips
