// The MPI transport (Boost.MPI over Open MPI). MPI calls are serialised by
// one mutex per process, so the abort watcher thread may probe while the
// worker thread sleeps; MPI_THREAD_SERIALIZED is all we ask of the library.
#include <mpi.h>

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <condition_variable>
#include <deque>
#include <iostream>
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
};

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
          return std::make_pair(from, nlohmann::json::parse(*text));
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
    std::lock_guard<std::mutex> lock(s_->mpi_mutex);
    s_->world.send(worker, kTagToWorker, message.dump());
  }

  void abort(int worker) override {
    if (worker == 0) return;  // the local worker shares this process's stop flag
    std::lock_guard<std::mutex> lock(s_->mpi_mutex);
    s_->world.send(worker, kTagAbort, std::string("abort"));
  }

  int worker_count() const override { return s_->world.size(); }

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

Endpoints MpiSession::endpoints() {
  Endpoints e;
  if (rank() == 0) {
    e.coordinator = std::make_unique<MpiCoordinator>(impl_->shared);
    e.worker = std::make_unique<LocalWorker>(impl_->shared);
  } else {
    e.worker = std::make_unique<RemoteWorker>(impl_->shared);
  }
  return e;
}

}  // namespace edmips
