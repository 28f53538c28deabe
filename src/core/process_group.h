// core: the ranks that run one trial together (data-parallel search and
// retraining, "ranks_per_trial" in a sweep). The engine calls this interface;
// the MPI transport implements it (sweep/transport_mpi.cpp). Every call is a
// collective that each rank of the group makes in the same order.
#pragma once

#include <cstddef>
#include <string>

#include "core/error.h"

namespace edmips {

/// Another rank of the group failed (its exception, or a stop it could not
/// share): thrown by the collective this rank was waiting in, so no rank
/// waits forever. code() is the failing rank's exit code.
class GroupFailure : public Error {
 public:
  GroupFailure(const std::string& message, ExitCode code) : Error(message, code) {}
};

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;  ///< 0 is the group's first rank: it writes the trial's files
  virtual int size() const = 0;
  /// Element-wise sums over the group, in place, the same result on every
  /// rank. Throws GroupFailure when another rank reported a failure.
  virtual void all_reduce_sum(float* values, size_t count) = 0;
  virtual void all_reduce_sum(double* values, size_t count) = 0;
  /// Tells the other ranks that this one failed with `message` (they throw
  /// GroupFailure from the collective they wait in, or their next one).
  virtual void report_failure(const std::string& message, ExitCode code) noexcept = 0;
  /// Seconds this rank spent in the group's collectives so far.
  virtual double communication_seconds() const = 0;
};

}  // namespace edmips
