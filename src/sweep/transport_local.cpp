#include "sweep/transport_local.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>

#include "core/error.h"

namespace edmips {

struct InProcessTransport::Impl {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::pair<int, nlohmann::json>> to_coordinator;
  std::vector<std::deque<nlohmann::json>> to_worker;
  std::vector<std::atomic<bool>*> abort_flags;  ///< set while a worker watches for an abort
  std::set<int> dead;

  class Coordinator : public CoordinatorEndpoint {
   public:
    explicit Coordinator(Impl& t) : t_(t) {}
    std::optional<std::pair<int, nlohmann::json>> receive(std::chrono::milliseconds timeout) override {
      std::unique_lock<std::mutex> lock(t_.mutex);
      t_.changed.wait_for(lock, timeout, [&] { return !t_.to_coordinator.empty() || !t_.dead.empty(); });
      if (!t_.dead.empty()) {
        throw IoError("in-process transport: worker " + std::to_string(*t_.dead.begin()) + " is gone");
      }
      if (t_.to_coordinator.empty()) return std::nullopt;
      auto m = std::move(t_.to_coordinator.front());
      t_.to_coordinator.pop_front();
      return m;
    }
    void send(int worker, const nlohmann::json& message) override {
      {
        std::lock_guard<std::mutex> lock(t_.mutex);
        t_.to_worker.at(size_t(worker)).push_back(message);
      }
      t_.changed.notify_all();
    }
    void abort(int worker) override {
      std::lock_guard<std::mutex> lock(t_.mutex);
      if (auto* flag = t_.abort_flags.at(size_t(worker))) *flag = true;
    }
    int worker_count() const override { return int(t_.to_worker.size()); }

   private:
    Impl& t_;
  };

  class Worker : public WorkerEndpoint {
   public:
    Worker(Impl& t, int w) : t_(t), w_(w) {}
    void send(const nlohmann::json& message) override {
      {
        std::lock_guard<std::mutex> lock(t_.mutex);
        if (t_.dead.count(w_)) return;
        t_.to_coordinator.emplace_back(w_, message);
      }
      t_.changed.notify_all();
    }
    nlohmann::json receive() override {
      std::unique_lock<std::mutex> lock(t_.mutex);
      t_.changed.wait(lock, [&] { return !t_.to_worker[size_t(w_)].empty(); });
      auto m = std::move(t_.to_worker[size_t(w_)].front());
      t_.to_worker[size_t(w_)].pop_front();
      return m;
    }
    std::shared_ptr<void> watch_for_abort(std::atomic<bool>& flag) override {
      {
        std::lock_guard<std::mutex> lock(t_.mutex);
        t_.abort_flags[size_t(w_)] = &flag;
      }
      Impl* t = &t_;
      const int w = w_;
      return std::shared_ptr<void>(nullptr, [t, w](void*) {
        std::lock_guard<std::mutex> lock(t->mutex);
        t->abort_flags[size_t(w)] = nullptr;
      });
    }

   private:
    Impl& t_;
    int w_;
  };

  std::unique_ptr<Coordinator> coordinator;
  std::vector<std::unique_ptr<Worker>> workers;
};

InProcessTransport::InProcessTransport(int workers) : impl_(std::make_unique<Impl>()) {
  if (workers < 1) throw Error("in-process transport: at least one worker");
  impl_->to_worker.resize(size_t(workers));
  impl_->abort_flags.assign(size_t(workers), nullptr);
  impl_->coordinator = std::make_unique<Impl::Coordinator>(*impl_);
  for (int w = 0; w < workers; ++w) impl_->workers.push_back(std::make_unique<Impl::Worker>(*impl_, w));
}

InProcessTransport::~InProcessTransport() = default;
CoordinatorEndpoint& InProcessTransport::coordinator() { return *impl_->coordinator; }
WorkerEndpoint& InProcessTransport::worker(int w) { return *impl_->workers.at(size_t(w)); }

void InProcessTransport::kill_worker(int w) {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->dead.insert(w);
  }
  impl_->changed.notify_all();
}

}  // namespace edmips
