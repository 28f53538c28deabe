#include "sweep/sweep_run.h"

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <thread>

#include "core/directory_lock.h"
#include "core/error.h"
#include "core/files.h"
#include "core/json_reader.h"
#include "core/process.h"
#include "core/stop_signal.h"
#include "sweep/coordinator.h"
#include "sweep/journal.h"
#include "sweep/transport.h"
#include "trial/trial.h"

namespace edmips {
namespace fs = std::filesystem;

namespace {

int positive_env(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) return 0;
  char* end = nullptr;
  const long n = std::strtol(value, &end, 10);
  return (end && *end == '\0' && n > 0) ? int(n) : 0;
}

/// A file time as 20261130T051842Z (UTC), for file names.
std::string compact_utc(fs::file_time_type time) {
  const auto system = std::chrono::time_point_cast<std::chrono::system_clock::duration>(
      time - fs::file_time_type::clock::now() + std::chrono::system_clock::now());
  const std::time_t t = std::chrono::system_clock::to_time_t(system);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &tm);
  return buffer;
}

/// Rank 0 prepares the output directory: takes its lock (held until the
/// returned object goes), records the sweep definition and refuses a
/// directory that belongs to another sweep.
std::unique_ptr<DirectoryLock> prepare_output(const SweepDefinition& sweep, const SweepRunOptions& options) {
  const fs::path out = options.out;
  fs::create_directories(out / sweep_files::trials);
  auto lock = std::make_unique<DirectoryLock>(out);
  if (!lock->warning().empty()) write_stderr_line("edmips[rank 0]: warning: " + lock->warning());
  // Temporary files of an earlier run that crashed or met a full disk (ours
  // now: we hold the lock; trials clean their own directories).
  remove_stale_temporaries(out);
  const auto recorded = out / sweep_files::definition;
  const auto text = read_text_file(options.sweep_path);
  if (fs::exists(recorded)) {
    const auto previous_text = read_text_file(recorded);
    const auto previous = parse_json_text(previous_text, recorded.string());
    if (previous.value("name", "") != sweep.name) {
      throw ConfigError(out.string() + " holds sweep \"" + previous.value("name", "?") + "\", not \"" + sweep.name +
                        "\"; choose another --out");
    }
    if (previous_text != text) {
      // The sweep file changed since the last run: keep the version the
      // earlier trials ran under beside the new one.
      const auto kept = out / ("sweep." + compact_utc(fs::last_write_time(recorded)) + ".json");
      write_file_atomically(kept, previous_text);
      write_stderr_line("edmips[rank 0]: the sweep file changed since the last run in " + out.string() +
                        "; the previous one is kept as " + kept.filename().string());
    }
  }
  write_file_atomically(recorded, text);
  return lock;
}

}  // namespace

int threads_per_rank(int requested, int ranks_on_node) {
  if (requested > 0) return requested;
  if (int n = positive_env("SLURM_CPUS_PER_TASK")) return n;
  if (int n = positive_env("OMP_NUM_THREADS")) return n;
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, ranks_on_node));
}

namespace {

/// Reports an error of this rank on stderr and returns its exit code.
int report_error(int rank, const std::string& what, ExitCode code) {
  // One write per line: ranks failing together must not interleave mid-line.
  write_stderr_line("edmips[rank " + std::to_string(rank) + "]: error: " + shorten_message(what));
  return int(code);
}

/// Loads the sweep and (rank 0) prepares the output directory. Errors every
/// rank meets alike (bad sweep file, PMI mismatch): rank 0 reports, and this
/// rank's exit code comes back for the all-reduce (0: set up).
int set_up(const MpiSession& session, const SweepRunOptions& options, SweepDefinition& sweep,
           std::unique_ptr<DirectoryLock>& lock) {
  const int rank = session.rank();
  auto report = [&](const std::string& what, ExitCode code) { return report_error(rank, what, code); };
  int setup_code = 0;
  try {
    if (int tasks = positive_env("SLURM_NTASKS"); tasks > 0 && tasks != session.size()) {
      throw ConfigError("MPI world size is " + std::to_string(session.size()) + " but SLURM_NTASKS is " +
                        std::to_string(tasks) +
                        ": the ranks did not find each other (with Debian's Open MPI use `srun --mpi=pmix`)");
    }
    sweep = load_sweep_file(options.sweep_path);
    if (sweep.ranks_per_trial > session.size()) {
      throw ConfigError(options.sweep_path + ": /ranks_per_trial: " + std::to_string(sweep.ranks_per_trial) +
                        " ranks per trial, but the job has " + std::to_string(session.size()) +
                        " rank(s); start at least that many (mpirun -np, srun --ntasks)");
    }
    if (rank == 0) lock = prepare_output(sweep, options);
    // Ranks may sit on different nodes: each checks its own devices and says so.
    try {
      for (const auto& trial : sweep.trials) check_device_available(trial.config);
    } catch (const ConfigError& e) {
      report(e.what(), e.code());
      setup_code = int(e.code());
    }
  } catch (const Error& e) {
    if (rank == 0 || dynamic_cast<const ConfigError*>(&e) == nullptr) report(e.what(), e.code());
    setup_code = int(e.code());
  } catch (const std::filesystem::filesystem_error& e) {
    // The output directory cannot be prepared (a file in its place, a
    // read-only mount, no space): an I/O error every rank must learn of
    // below, or the others would wait in the all-reduce for ever.
    report("cannot prepare the output directory " + options.out + ": " + e.what(), ExitCode::data_error);
    setup_code = int(ExitCode::data_error);
  } catch (const std::exception& e) {
    report(e.what(), ExitCode::internal_error);
    setup_code = int(ExitCode::internal_error);
  }
  return setup_code;
}

/// What both roles of a rank need to run their part of a set-up sweep.
struct RankRun {
  const SweepDefinition& sweep;
  const SweepRunOptions& options;
  MpiSession& session;
  Endpoints& endpoints;
  const WorkerOptions& worker_options;

  std::unique_ptr<TrialExecutor> make_executor() const {
    return options.fake ? make_fake_executor(options.fake_options) : make_trial_executor();
  }
};

/// Rank 0: the coordinator, with a local worker thread; returns the sweep's code.
int run_coordinator_rank(const RankRun& r, int threads) {
  const int rank = r.session.rank();
  auto report = [&](const std::string& what, ExitCode code) { return report_error(rank, what, code); };
  const auto& options = r.options;
  auto& session = r.session;
  int code = 0;
  if (!options.quiet) {
    std::cout << "rank 0: " << session.size() << " ranks, " << threads << " threads per rank (" << session.local_size()
              << " ranks on this node)" << std::endl;
    for (size_t g = 0; g < r.endpoints.groups.size(); ++g) {
      std::cout << "rank 0: group " << g << ": ranks";
      for (int member : r.endpoints.groups[g]) std::cout << " " << member;
      std::cout << std::endl;
    }
  }
  std::exception_ptr worker_error;
  std::thread local_worker([&] {
    try {
      auto executor = r.make_executor();
      run_worker(r.sweep, *r.endpoints.worker, *executor, r.worker_options);
    } catch (...) {
      worker_error = std::current_exception();
    }
  });
  try {
    CoordinatorOptions coordinator_options{options.out, r.worker_options.stop_requested,
                                           options.quiet ? nullptr : &std::cout};
    code = int(run_coordinator(r.sweep, *r.endpoints.coordinator, coordinator_options));
  } catch (const Error& e) {
    report(e.what(), e.code());
    session.abort(int(e.code()));
  } catch (const std::exception& e) {
    report(e.what(), ExitCode::internal_error);
    session.abort(int(ExitCode::internal_error));
  }
  local_worker.join();
  if (worker_error) std::rethrow_exception(worker_error);
  return code;
}

/// Any other rank: a worker until the coordinator says stop, a follower of
/// its group's leader until the leader says stop, or idle.
void run_worker_rank(const RankRun& r) {
  try {
    if (r.endpoints.role == RankRole::idle) {
      write_stderr_line("edmips[rank " + std::to_string(r.session.rank()) + "]: idle: the " +
                        std::to_string(r.session.size()) + " ranks do not divide into groups of " +
                        std::to_string(r.sweep.ranks_per_trial) + " (ranks_per_trial)");
      return;
    }
    auto executor = r.make_executor();
    if (r.endpoints.role == RankRole::follower) return run_follower(*r.endpoints.group, *executor, r.worker_options);
    run_worker(r.sweep, *r.endpoints.worker, *executor, r.worker_options);
  } catch (const std::exception& e) {
    report_error(r.session.rank(), e.what(), ExitCode::internal_error);
    r.session.abort(int(ExitCode::internal_error));
  }
}

/// Every rank exits with rank 0's code. Workers wait for it with the
/// transport's sleeping receive: a blocking MPI collective here would spin
/// on a core while rank 0 still trains its last trial.
int share_exit_code(const MpiSession& session, Endpoints& endpoints, int code) {
  if (session.rank() == 0) {
    for (int rank = 1; rank < session.size(); ++rank) {
      endpoints.coordinator->send_to_rank(rank, {{"type", to_string(MessageType::exit)}, {"code", code}});
    }
    return code;
  }
  while (true) {
    const auto message = endpoints.worker->receive();
    if (message_type_of(message) == MessageType::exit) return message.value("code", code);
  }
}

}  // namespace

int run_sweep(const SweepRunOptions& options) {
  MpiSession session;
  SweepDefinition sweep;
  std::unique_ptr<DirectoryLock> lock;  // rank 0, for the coordinator's whole life
  // Every rank learns whether any rank failed to set up (this also orders the
  // output directory's creation before any worker writes into it).
  if (int worst = session.max_over_ranks(set_up(session, options, sweep, lock)); worst != 0) return worst;

  auto& stop = install_stop_signal_handlers();
  const int threads = threads_per_rank(options.threads, session.local_size());
  auto endpoints = session.endpoints(sweep.ranks_per_trial);
  // A single-rank sweep on a terminal shows its trial's batch progress in place.
  LiveLine live;
  WorkerOptions worker_options{options.out, session.rank(), threads, &stop, session.local_rank(),
                               session.size() == 1 && !options.quiet && LiveLine::wanted() ? &live : nullptr,
                               endpoints.role == RankRole::worker ? endpoints.group.get() : nullptr};
  const RankRun r{sweep, options, session, endpoints, worker_options};
  int code = 0;
  if (session.rank() == 0) {
    code = run_coordinator_rank(r, threads);
  } else {
    run_worker_rank(r);
  }
  return share_exit_code(session, endpoints, code);
}

}  // namespace edmips
