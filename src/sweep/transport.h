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
#include <vector>

#include "core/process_group.h"

namespace edmips {

/// The coordinator's side.
class CoordinatorEndpoint {
 public:
  virtual ~CoordinatorEndpoint() = default;
  /// The next message from any worker, waiting at most `timeout`.
  virtual std::optional<std::pair<int, nlohmann::json>> receive(std::chrono::milliseconds timeout) = 0;
  virtual void send(int worker, const nlohmann::json& message) = 0;
  /// A message to one process of the job, by world rank (the exit code
  /// reaches every rank, a group's other ranks and idle ones too).
  virtual void send_to_rank(int rank, const nlohmann::json& message) { send(rank, message); }
  /// Asks a worker that is running a trial to checkpoint and stop.
  virtual void abort(int worker) = 0;
  virtual int worker_count() const = 0;
  /// The world rank of a worker (a group's leader), and every rank of its group.
  virtual int rank_of(int worker) const { return worker; }
  virtual std::vector<int> ranks_of(int worker) const { return {rank_of(worker)}; }
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

/// The ranks that run each trial together (a sweep's ranks_per_trial > 1).
/// The group's first rank (its leader) is the coordinator's worker; the
/// others follow it. Waiting never spins and never holds MPI for long, so
/// rank 0's coordinator keeps working while its group waits.
class TrialGroupChannel {
 public:
  virtual ~TrialGroupChannel() = default;
  virtual int rank() const = 0;  ///< 0: the leader
  virtual int size() const = 0;
  /// The leader passes the message for the others; they pass null and get it.
  virtual nlohmann::json share(const nlohmann::json& message) = 0;
  /// A fresh process group for the next trial (a collective of the group
  /// right after the leader shared the trial). Its failures stay its own.
  virtual std::unique_ptr<ProcessGroup> start_trial() = 0;
};

/// What a process does in a sweep.
enum class RankRole { worker, follower, idle };

/// The endpoints of one process: rank 0 gets a coordinator endpoint and the
/// local worker's endpoint; other ranks get only a worker endpoint (a
/// group's followers and idle ranks use it only to hear the exit code).
struct Endpoints {
  std::unique_ptr<CoordinatorEndpoint> coordinator;  ///< rank 0 only
  std::unique_ptr<WorkerEndpoint> worker;
  std::unique_ptr<TrialGroupChannel> group;  ///< with ranks_per_trial > 1, except idle ranks
  RankRole role = RankRole::worker;
  std::vector<std::vector<int>> groups;  ///< world ranks of every group, leaders first (ranks_per_trial > 1)
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
  /// Coordinator and worker endpoints over this session. With
  /// `ranks_per_trial` > 1 the ranks form groups of that many (a collective):
  /// ordered by node, so a node's ranks stay together where it holds enough;
  /// the coordinator's workers are the groups' leaders; ranks left over
  /// when the world size is not a multiple sit idle.
  Endpoints endpoints(int ranks_per_trial = 1);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edmips
