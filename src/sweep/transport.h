// sweep: how the coordinator and the workers exchange messages (JSON
// objects with a "type"). Worker 0 lives in the coordinator's process and
// talks through an in-process queue; workers 1..N-1 are MPI ranks. With one
// rank there is no MPI traffic at all. Waiting never spins: MPI is probed
// with a short sleep between probes and the local queue uses a condition
// variable. No LibTorch here.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace edmips {

/// The coordinator's side.
class CoordinatorEndpoint {
 public:
  virtual ~CoordinatorEndpoint() = default;
  /// The next message from any worker, waiting at most `timeout`.
  virtual std::optional<std::pair<int, nlohmann::json>> receive(std::chrono::milliseconds timeout) = 0;
  virtual void send(int worker, const nlohmann::json& message) = 0;
  /// Asks a worker that is running a trial to checkpoint and stop.
  virtual void abort(int worker) = 0;
  virtual int worker_count() const = 0;
};

/// A worker's side.
class WorkerEndpoint {
 public:
  virtual ~WorkerEndpoint() = default;
  virtual void send(const nlohmann::json& message) = 0;
  /// Blocks (without spinning) until the coordinator sends something.
  virtual nlohmann::json receive() = 0;
  /// Starts watching for an abort from the coordinator; sets `flag` when one
  /// arrives. Stops watching when the returned object is destroyed.
  virtual std::shared_ptr<void> watch_for_abort(std::atomic<bool>& flag) = 0;
};

/// The endpoints of one process: rank 0 gets a coordinator endpoint and the
/// local worker's endpoint; other ranks get only a worker endpoint.
struct Endpoints {
  std::unique_ptr<CoordinatorEndpoint> coordinator;  ///< rank 0 only
  std::unique_ptr<WorkerEndpoint> worker;
};

/// Process-wide MPI session (Boost.MPI environment) and the world's facts.
class MpiSession {
 public:
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const;
  int size() const;
  int local_rank() const;  ///< rank among the ranks on this node
  int local_size() const;  ///< ranks on this node
  /// Ends every rank of the job (after an unrecoverable error on one).
  [[noreturn]] void abort(int code) const;
  /// The largest of every rank's `value`: a collective that every rank must
  /// call, before endpoints() starts the message threads.
  int max_over_ranks(int value) const;
  /// Coordinator and worker endpoints over this session.
  Endpoints endpoints();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edmips
