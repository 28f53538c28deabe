// sweep: an in-process transport. The coordinator and any number of workers
// run as threads of one process and talk through blocking queues, with the
// same messages as over MPI (transport.h). For the coordinator's unit tests
// (tests/sweep/test_coordinator.cpp): scheduling, retries, stops and resumes
// without MPI ranks. No LibTorch, no MPI.
#pragma once

#include <memory>
#include <vector>

#include "sweep/transport.h"

namespace edmips {

class InProcessTransport {
 public:
  explicit InProcessTransport(int workers);
  ~InProcessTransport();
  InProcessTransport(const InProcessTransport&) = delete;
  InProcessTransport& operator=(const InProcessTransport&) = delete;

  /// The coordinator's side (one).
  CoordinatorEndpoint& coordinator();
  /// Worker `w`'s side, 0 <= w < workers.
  WorkerEndpoint& worker(int w);
  /// Worker `w` is gone (its rank died): the coordinator's next receive
  /// throws IoError, as an MPI job ends when one of its ranks dies, and what
  /// `w` sends from now on is dropped.
  void kill_worker(int w);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edmips
