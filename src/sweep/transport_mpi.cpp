// The MPI transport (Boost.MPI over Open MPI). MPI calls are serialised by
// one mutex per process, so the abort watcher thread may probe while the
// worker thread sleeps; MPI_THREAD_SERIALIZED is all we ask of the library.
#include <mpi.h>

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <condition_variable>
#include <algorithm>
#include <deque>
#include <iostream>
#include <list>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "sweep/transport.h"

namespace edmips {
namespace mpi = boost::mpi;

namespace {

constexpr int kTagToCoordinator = 1;
constexpr int kTagToWorker = 2;
constexpr int kTagAbort = 3;
constexpr int kTagGroupFailure = 4;  ///< on a trial's own communicator

/// Sleep between MPI probes: short while messages flow, longer when idle.
class Backoff {
 public:
  void reset() { delay_ = std::chrono::microseconds(200); }
  void wait() {
    std::this_thread::sleep_for(delay_);
    delay_ = std::min(delay_ * 2, std::chrono::microseconds(20000));
  }
  std::chrono::microseconds delay() const { return delay_; }
  void grow() { delay_ = std::min(delay_ * 2, std::chrono::microseconds(20000)); }

 private:
  std::chrono::microseconds delay_{200};
};

/// A blocking queue between the coordinator and the in-process worker.
class LocalQueue {
 public:
  void push(nlohmann::json m) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      items_.push_back(std::move(m));
    }
    ready_.notify_all();
  }
  std::optional<nlohmann::json> pop(std::chrono::microseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!ready_.wait_for(lock, timeout, [&] { return !items_.empty(); })) return std::nullopt;
    auto m = std::move(items_.front());
    items_.pop_front();
    return m;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<nlohmann::json> items_;
};

struct Shared {
  mpi::communicator world;
  std::mutex mpi_mutex;
  LocalQueue to_coordinator, to_local_worker;
  std::vector<int> workers = {};             ///< world rank of each coordinator worker (all ranks, or group leaders)
  std::vector<std::vector<int>> groups = {};  ///< each worker's group (ranks_per_trial > 1)
  std::list<std::string> failure_texts = {};  ///< buffers of failure reports in flight (kept: they are tiny)
};

/// Waits for a non-blocking MPI operation without holding MPI for long:
/// spins briefly (collectives of a training step finish in microseconds),
/// then sleeps between tests. `check` runs between tests (under the mutex).
template <typename Check>
void wait_for(Shared& s, MPI_Request& request, Check&& check) {
  auto delay = std::chrono::microseconds(20);
  for (int attempt = 0;; ++attempt) {
    {
      std::lock_guard<std::mutex> lock(s.mpi_mutex);
      int done = 0;
      MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      if (done) return;
      check();
    }
    if (attempt < 2000) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, std::chrono::microseconds(20000));
    }
  }
}

std::optional<std::string> try_receive(Shared& s, int source, int tag, int* from = nullptr) {
  std::lock_guard<std::mutex> lock(s.mpi_mutex);
  auto status = s.world.iprobe(source, tag);
  if (!status) return std::nullopt;
  std::string text;
  s.world.recv(status->source(), tag, text);
  if (from) *from = status->source();
  return text;
}

class MpiCoordinator : public CoordinatorEndpoint {
 public:
  explicit MpiCoordinator(std::shared_ptr<Shared> s) : s_(std::move(s)) {}

  std::optional<std::pair<int, nlohmann::json>> receive(std::chrono::milliseconds timeout) override {
    const auto end = std::chrono::steady_clock::now() + timeout;
    Backoff backoff;
    while (true) {
      int from = -1;
      if (s_->world.size() > 1) {
        if (auto text = try_receive(*s_, mpi::any_source, kTagToCoordinator, &from)) {
          const auto it = std::find(s_->workers.begin(), s_->workers.end(), from);
          return std::make_pair(int(it - s_->workers.begin()), nlohmann::json::parse(*text));
        }
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= end) return std::nullopt;
      // Wait on the local queue: a local message wakes us at once; MPI
      // messages are seen at the next probe.
      const auto left = std::chrono::duration_cast<std::chrono::microseconds>(end - now);
      const auto wait = s_->world.size() > 1 ? std::min(left, backoff.delay()) : left;
      if (auto m = s_->to_coordinator.pop(wait)) return std::make_pair(0, std::move(*m));
      backoff.grow();
    }
  }

  void send(int worker, const nlohmann::json& message) override {
    if (worker == 0) return s_->to_local_worker.push(message);
    send_to_rank(s_->workers.at(size_t(worker)), message);
  }

  void send_to_rank(int rank, const nlohmann::json& message) override {
    if (rank == 0) return s_->to_local_worker.push(message);
    std::lock_guard<std::mutex> lock(s_->mpi_mutex);
    s_->world.send(rank, kTagToWorker, message.dump());
  }

  void abort(int worker) override {
    if (worker == 0) return;  // the local worker shares this process's stop flag
    std::lock_guard<std::mutex> lock(s_->mpi_mutex);
    s_->world.send(s_->workers.at(size_t(worker)), kTagAbort, std::string("abort"));
  }

  int worker_count() const override { return int(s_->workers.size()); }
  int rank_of(int worker) const override { return s_->workers.at(size_t(worker)); }
  std::vector<int> ranks_of(int worker) const override {
    return s_->groups.empty() ? std::vector<int>{rank_of(worker)} : s_->groups.at(size_t(worker));
  }

 private:
  std::shared_ptr<Shared> s_;
};

class LocalWorker : public WorkerEndpoint {
 public:
  explicit LocalWorker(std::shared_ptr<Shared> s) : s_(std::move(s)) {}
  void send(const nlohmann::json& message) override { s_->to_coordinator.push(message); }
  nlohmann::json receive() override {
    while (true) {
      if (auto m = s_->to_local_worker.pop(std::chrono::seconds(3600))) return *m;
    }
  }
  std::shared_ptr<void> watch_for_abort(std::atomic<bool>&) override { return nullptr; }

 private:
  std::shared_ptr<Shared> s_;
};

/// Polls for an abort message on a thread of its own while a trial runs.
class AbortWatcher {
 public:
  AbortWatcher(std::shared_ptr<Shared> s, std::atomic<bool>& flag)
      : s_(std::move(s)), thread_([this, &flag] {
          std::unique_lock<std::mutex> lock(mutex_);
          while (!done_) {
            lock.unlock();
            if (try_receive(*s_, 0, kTagAbort)) flag = true;
            lock.lock();
            wake_.wait_for(lock, std::chrono::milliseconds(50), [&] { return done_; });
          }
        }) {}
  ~AbortWatcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  std::shared_ptr<Shared> s_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

class RemoteWorker : public WorkerEndpoint {
 public:
  explicit RemoteWorker(std::shared_ptr<Shared> s) : s_(std::move(s)) {}
  void send(const nlohmann::json& message) override {
    std::lock_guard<std::mutex> lock(s_->mpi_mutex);
    s_->world.send(0, kTagToCoordinator, message.dump());
  }
  nlohmann::json receive() override {
    Backoff backoff;
    while (true) {
      if (auto text = try_receive(*s_, 0, kTagToWorker)) return nlohmann::json::parse(*text);
      // An abort that arrives while idle needs no action: a stop follows.
      try_receive(*s_, 0, kTagAbort);
      backoff.wait();
    }
  }
  std::shared_ptr<void> watch_for_abort(std::atomic<bool>& flag) override {
    return std::make_shared<AbortWatcher>(s_, flag);
  }

 private:
  std::shared_ptr<Shared> s_;
};

/// One trial's collectives, on a communicator of its own: a failure report
/// or an abandoned collective of one trial never meets the next trial's.
class MpiProcessGroup : public ProcessGroup {
 public:
  MpiProcessGroup(std::shared_ptr<Shared> s, MPI_Comm comm) : s_(std::move(s)), comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiProcessGroup() override {
    // After a failure a collective may be left pending: the communicator
    // stays allocated (a few bytes) rather than freed under it.
    if (failed_) return;
    std::lock_guard<std::mutex> lock(s_->mpi_mutex);
    MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(float* values, size_t count) override { reduce(values, count, MPI_FLOAT); }
  void all_reduce_sum(double* values, size_t count) override { reduce(values, count, MPI_DOUBLE); }
  double communication_seconds() const override { return seconds_; }

  void report_failure(const std::string& message, ExitCode code) noexcept override {
    try {
      failed_ = true;
      std::lock_guard<std::mutex> lock(s_->mpi_mutex);
      auto& text = s_->failure_texts.emplace_back(std::to_string(int(code)) + "\n" +
                                                  "rank " + std::to_string(s_->world.rank()) + ": " +
                                                  shorten_message(message, 2000));
      for (int r = 0; r < size_; ++r) {
        if (r == rank_) continue;
        MPI_Request request;
        MPI_Isend(text.data(), int(text.size()), MPI_CHAR, r, kTagGroupFailure, comm_, &request);
        MPI_Request_free(&request);  // completes on its own; the text stays in failure_texts
      }
    } catch (...) {
      // Nothing better to do: the other ranks then wait for the job's end.
    }
  }

 private:
  void reduce(void* values, size_t count, MPI_Datatype type) {
    if (size_ == 1 || count == 0) return;
    const auto start = std::chrono::steady_clock::now();
    MPI_Request request;
    {
      std::lock_guard<std::mutex> lock(s_->mpi_mutex);
      MPI_Iallreduce(MPI_IN_PLACE, values, int(count), type, MPI_SUM, comm_, &request);
    }
    wait_for(*s_, request, [&] { check_failure(); });
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  /// Throws GroupFailure when another rank reported one (mutex held).
  void check_failure() {
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, kTagGroupFailure, comm_, &flag, &status);
    if (!flag) return;
    int length = 0;
    MPI_Get_count(&status, MPI_CHAR, &length);
    std::string text(size_t(std::max(0, length)), '\0');
    MPI_Recv(text.data(), length, MPI_CHAR, status.MPI_SOURCE, kTagGroupFailure, comm_, MPI_STATUS_IGNORE);
    failed_ = true;
    const auto newline = text.find('\n');
    const int code = newline == std::string::npos ? 1 : std::atoi(text.substr(0, newline).c_str());
    throw GroupFailure("another rank of this trial's group failed: " + text.substr(newline + 1),
                       code == 0 ? ExitCode::failure : ExitCode(code));
  }

  std::shared_ptr<Shared> s_;
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  bool failed_ = false;
  double seconds_ = 0;
};

class MpiTrialGroup : public TrialGroupChannel {
 public:
  MpiTrialGroup(std::shared_ptr<Shared> s, MPI_Comm control) : s_(std::move(s)), control_(control) {
    MPI_Comm_rank(control_, &rank_);
    MPI_Comm_size(control_, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  nlohmann::json share(const nlohmann::json& message) override {
    std::string text = rank_ == 0 ? message.dump() : std::string();
    long long length = (long long)text.size();
    broadcast(&length, 1, MPI_LONG_LONG);
    text.resize(size_t(length));
    broadcast(text.data(), int(length), MPI_CHAR);
    return nlohmann::json::parse(text);
  }

  std::unique_ptr<ProcessGroup> start_trial() override {
    MPI_Comm trial;
    MPI_Request request;
    {
      std::lock_guard<std::mutex> lock(s_->mpi_mutex);
      MPI_Comm_idup(control_, &trial, &request);
    }
    wait_for(*s_, request, [] {});
    return std::make_unique<MpiProcessGroup>(s_, trial);
  }

 private:
  void broadcast(void* data, int count, MPI_Datatype type) {
    MPI_Request request;
    {
      std::lock_guard<std::mutex> lock(s_->mpi_mutex);
      MPI_Ibcast(data, count, type, 0, control_, &request);
    }
    wait_for(*s_, request, [] {});
  }

  std::shared_ptr<Shared> s_;
  MPI_Comm control_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

struct MpiSession::Impl {
  mpi::environment environment{mpi::threading::serialized, /*abort_on_exception=*/false};
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  int local_rank = 0, local_size = 1;
};

MpiSession::MpiSession() : impl_(std::make_unique<Impl>()) {
  if (impl_->environment.thread_level() < mpi::threading::serialized) {
    throw Error("the MPI library does not offer MPI_THREAD_SERIALIZED, which the sweep runner needs");
  }
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, impl_->shared->world.rank(), MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &impl_->local_rank);
  MPI_Comm_size(local, &impl_->local_size);
  MPI_Comm_free(&local);
}

MpiSession::~MpiSession() = default;
int MpiSession::rank() const { return impl_->shared->world.rank(); }
int MpiSession::size() const { return impl_->shared->world.size(); }
int MpiSession::local_rank() const { return impl_->local_rank; }
int MpiSession::local_size() const { return impl_->local_size; }
void MpiSession::abort(int code) const {
  std::cout.flush();
  std::cerr.flush();
  impl_->environment.abort(code);
  std::abort();
}

int MpiSession::max_over_ranks(int value) const {
  return mpi::all_reduce(impl_->shared->world, value, mpi::maximum<int>());
}

Endpoints MpiSession::endpoints(int ranks_per_trial) {
  Endpoints e;
  auto& shared = *impl_->shared;
  shared.workers.clear();
  shared.groups.clear();
  if (ranks_per_trial <= 1) {
    for (int r = 0; r < size(); ++r) shared.workers.push_back(r);
  } else {
    // Order the ranks by node (a node is known by its lowest world rank), then
    // cut that order into groups: a node's ranks stay together where it can.
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank(), MPI_INFO_NULL, &local);
    int node = rank();
    MPI_Bcast(&node, 1, MPI_INT, 0, local);
    MPI_Comm_free(&local);
    const size_t world = size_t(size());
    std::vector<int> nodes(world);
    MPI_Allgather(&node, 1, MPI_INT, nodes.data(), 1, MPI_INT, MPI_COMM_WORLD);
    std::vector<int> order(world);
    for (int r = 0; r < size(); ++r) order[size_t(r)] = r;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return nodes[size_t(a)] < nodes[size_t(b)]; });
    const size_t group_count = size_t(size() / ranks_per_trial);
    int my_group = MPI_UNDEFINED, my_position = 0;
    for (size_t g = 0; g < group_count; ++g) {
      std::vector<int> members(order.begin() + long(g * size_t(ranks_per_trial)),
                               order.begin() + long((g + 1) * size_t(ranks_per_trial)));
      for (size_t i = 0; i < members.size(); ++i) {
        if (members[i] == rank()) my_group = int(g), my_position = int(i);
      }
      shared.workers.push_back(members.front());
      shared.groups.push_back(members);
      e.groups.push_back(std::move(members));
    }
    MPI_Comm control;
    MPI_Comm_split(MPI_COMM_WORLD, my_group, my_position, &control);
    if (my_group == MPI_UNDEFINED) {
      e.role = RankRole::idle;
    } else {
      e.group = std::make_unique<MpiTrialGroup>(impl_->shared, control);
      e.role = my_position == 0 ? RankRole::worker : RankRole::follower;
    }
  }
  if (rank() == 0) {
    e.coordinator = std::make_unique<MpiCoordinator>(impl_->shared);
    e.worker = std::make_unique<LocalWorker>(impl_->shared);
  } else {
    e.worker = std::make_unique<RemoteWorker>(impl_->shared);
  }
  return e;
}

}  // namespace edmips
