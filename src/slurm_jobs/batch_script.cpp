#include "slurm_jobs/batch_script.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <regex>
#include <sstream>

#include "core/error.h"
#include "core/json_reader.h"

extern char** environ;

namespace edmips {
namespace {

// Values that end up in #SBATCH lines are parsed by sbatch, not bash, but we
// still allow only what Slurm itself accepts there.
const std::regex kTimePattern(R"(^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+(:\d{1,2}(:\d{1,2})?)?)$)");
const std::regex kNamePattern(R"(^[A-Za-z0-9_.,+-]+$)");
const std::regex kPathPattern(R"(^/[A-Za-z0-9_./+-]*$)");

std::string check(const std::string& value, const std::regex& pattern, const std::string& where,
                  const std::string& expected) {
  if (!std::regex_match(value, pattern)) {
    throw ConfigError(where + ": expected " + expected + ", found \"" + value + "\"");
  }
  return value;
}

/// Slurm's forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S; minutes and seconds
/// below 60 and, after a day count, hours below 24 (sbatch refuses 1:99:99).
bool time_in_range(const std::string& text) {
  std::vector<long> parts;
  const auto dash = text.find('-');
  const std::string clock = dash == std::string::npos ? text : text.substr(dash + 1);
  size_t start = 0;
  while (start <= clock.size()) {
    const auto colon = clock.find(':', start);
    const auto field = clock.substr(start, colon - start);
    if (field.size() > 9) return false;  // Slurm's limits are far below a billion
    parts.push_back(std::stol(field));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (dash != std::string::npos) {  // D-H[:M[:S]]
    if (parts[0] >= 24) return false;
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i] >= 60) return false;
    }
    return true;
  }
  // M, M:S, H:M:S: everything after the first field is below 60.
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i] >= 60) return false;
  }
  return true;
}

std::string check_time(const std::string& value, const std::string& where, const std::string& expected) {
  check(value, kTimePattern, where, expected);
  if (!time_in_range(value)) {
    throw ConfigError(where + ": expected " + expected + " with minutes and seconds below 60 (and hours below 24 "
                      "after a day count), found \"" + value + "\"");
  }
  return value;
}

std::string job_name(const std::string& sweep) {
  std::string name = "edmips-";
  for (char c : sweep) name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  return name;
}

}  // namespace

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

SlurmJobOptions resolve_slurm_options(const nlohmann::json& section, const std::string& source,
                                      const SlurmOverrides& overrides) {
  SlurmJobOptions o;
  const std::string time_expected = "a Slurm time limit such as 90, 1:30:00 or 2-00:00:00";
  const std::string name_expected = "letters, digits and _ . , + -";
  if (!section.is_null()) {
    JsonObjectReader r(section, "/slurm", source);
    o.nodes = int(r.int_value("nodes", 1, 100000, o.nodes));
    o.ntasks_per_node = int(r.int_value("ntasks_per_node", 1, 100000, o.ntasks_per_node));
    o.cpus_per_task = int(r.int_value("cpus_per_task", 1, 100000, o.cpus_per_task));
    o.gpus_per_task = int(r.int_value("gpus_per_task", 0, 1000, o.gpus_per_task));
    o.time = check_time(r.string_value("time", o.time), source + ": /slurm/time", time_expected);
    o.partition = r.string_value("partition", std::string{});
    if (!o.partition.empty()) check(o.partition, kNamePattern, source + ": /slurm/partition", name_expected);
    o.account = r.string_value("account", std::string{});
    if (!o.account.empty()) check(o.account, kNamePattern, source + ": /slurm/account", name_expected);
    o.signal_seconds = int(r.int_value("signal_seconds", 1, 86400, o.signal_seconds));
    o.max_restarts = int(r.int_value("max_restarts", 0, 100000, o.max_restarts));
    r.reject_unknown_keys();
  }
  auto positive = [](std::optional<int> v, int min, const char* flag, int& target) {
    if (!v) return;
    if (*v < min) throw ConfigError(std::string(flag) + ": expected an integer >= " + std::to_string(min) +
                                    ", found " + std::to_string(*v));
    target = *v;
  };
  positive(overrides.nodes, 1, "--nodes", o.nodes);
  positive(overrides.ntasks_per_node, 1, "--ntasks-per-node", o.ntasks_per_node);
  positive(overrides.cpus_per_task, 1, "--cpus-per-task", o.cpus_per_task);
  positive(overrides.gpus_per_task, 0, "--gpus-per-task", o.gpus_per_task);
  if (overrides.time) o.time = check_time(*overrides.time, "--time", time_expected);
  if (overrides.partition) o.partition = check(*overrides.partition, kNamePattern, "--partition", name_expected);
  if (overrides.account) o.account = check(*overrides.account, kNamePattern, "--account", name_expected);
  return o;
}

std::string render_batch_script(const BatchJob& job, const SlurmJobOptions& o) {
  check(job.out_dir, kPathPattern, "output directory",
        "an absolute path of letters, digits and _ . / + - (Slurm's --output cannot quote)");
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "#SBATCH --job-name=" << job_name(job.sweep_name) << "\n"
    << "#SBATCH --nodes=" << o.nodes << "\n"
    << "#SBATCH --ntasks-per-node=" << o.ntasks_per_node << "\n"
    << "#SBATCH --cpus-per-task=" << o.cpus_per_task << "\n";
  if (o.gpus_per_task > 0) s << "#SBATCH --gpus-per-task=" << o.gpus_per_task << "\n";
  s << "#SBATCH --time=" << o.time << "\n";
  if (!o.partition.empty()) s << "#SBATCH --partition=" << o.partition << "\n";
  if (!o.account.empty()) s << "#SBATCH --account=" << o.account << "\n";
  s << "#SBATCH --output=" << job.out_dir << "/slurm-%j.out\n"
    << "#SBATCH --open-mode=append\n"
    << "#SBATCH --requeue\n"
    << "#SBATCH --signal=B:USR2@" << o.signal_seconds << "\n"
    << "#\n"
    << "# Written by `edmips slurm` for sweep " << shell_quote(job.sweep_name) << ".\n"
    << "# Runs every rank with srun --mpi=pmix (Debian's Open MPI speaks PMIx only);\n"
    << "# the alternative is: mpirun -np $SLURM_NTASKS \"$edmips\" sweep \"$sweep\" --out \"$out\".\n"
    << "# USR2 (sent by --signal before the time limit) or TERM (preemption) is passed\n"
    << "# to the ranks, which checkpoint and exit 4; the job then requeues itself until\n"
    << "# the sweep is done or max_restarts is reached. Submitting it again resumes.\n";
  if (job.ranks_per_trial > 1) {
    s << "# Each trial runs on a group of " << job.ranks_per_trial << " consecutive tasks (ranks_per_trial),\n"
      << "# a node's tasks together; " << o.nodes * o.ntasks_per_node / job.ranks_per_trial
      << " group(s) run trials side by side";
    if (o.gpus_per_task > 0) s << ", " << o.gpus_per_task << " GPU(s) per task";
    s << ".\n";
  }
  s
    << "\n"
    << "step=\n"
    << "on_signal() {\n"
    << "  echo \"edmips-slurm: SIG$1 at $(date -u +%FT%TZ); asking the ranks to checkpoint\"\n"
    << "  if [[ -n \"$step\" ]]; then kill -USR2 \"$step\" 2>/dev/null; fi\n"
    << "}\n"
    << "trap 'on_signal USR2' USR2\n"
    << "trap 'on_signal TERM' TERM\n"
    << "set -u\n"
    << "\n"
    << "edmips=" << shell_quote(job.edmips_binary) << "\n"
    << "sweep=" << shell_quote(job.sweep_file) << "\n"
    << "out=" << shell_quote(job.out_dir) << "\n"
    << "max_restarts=" << o.max_restarts << "\n"
    << "restarts=\"${SLURM_RESTART_COUNT:-0}\"\n"
    << "export OMP_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n"
    << "echo \"edmips-slurm: job $SLURM_JOB_ID start (restart $restarts) at $(date -u +%FT%TZ) on $SLURM_JOB_NODELIST\"\n"
    << "\n"
    << "srun --mpi=pmix \"$edmips\" sweep \"$sweep\" --out \"$out\" &\n"
    << "step=$!\n"
    << "while true; do\n"
    << "  wait \"$step\"\n"
    << "  code=$?\n"
    << "  kill -0 \"$step\" 2>/dev/null || break  # a trapped signal ended wait early: wait again\n"
    << "done\n"
    << "\n"
    << "case \"$code\" in\n"
    << "  0) echo \"edmips-slurm: sweep finished\"; exit 0 ;;\n"
    << "  4)\n"
    << "    if (( restarts < max_restarts )); then\n"
    << "      echo \"edmips-slurm: sweep interrupted and checkpointed; requeueing (restart $((restarts + 1)) of $max_restarts)\"\n"
    << "      scontrol requeue \"$SLURM_JOB_ID\"\n"
    << "      exit 0\n"
    << "    fi\n"
    << "    echo \"edmips-slurm: sweep interrupted; $max_restarts restarts used up, submit again to resume\"\n"
    << "    exit 4 ;;\n"
    << "  *) echo \"edmips-slurm: sweep ended with exit code $code (see the journal)\"; exit \"$code\" ;;\n"
    << "esac\n";
  return s.str();
}

std::string submit_batch_script(const std::string& script_path) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) throw Error(std::string("sbatch: pipe failed: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<std::string> args = {"sbatch", "--parsable", script_path};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "sbatch", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    throw Error(std::string("cannot run sbatch (is Slurm installed?): ") + std::strerror(spawned));
  }
  std::string output;
  char buffer[256];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0) output.append(buffer, size_t(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw Error("sbatch failed (exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                "); its message is above");
  }
  const auto end = output.find_first_of(";\n");
  return output.substr(0, end);
}

}  // namespace edmips
