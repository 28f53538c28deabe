#include "app/commands.h"

#include "benchmarks/step_benchmark.h"
#include "pareto/analysis.h"
#include "slurm_jobs/batch_script.h"
#include "core/files.h"
#include <filesystem>
#include "sweep/coordinator.h"
#include "sweep/journal.h"
#include "sweep/sweep_definition.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/json_reader.h"
#include "core/process.h"
#include "core/live_line.h"
#include "core/number_text.h"
#include "core/stop_signal.h"
#include "trial/trial.h"

namespace edmips {
namespace fs = std::filesystem;

int run_trial_command(const TrialCommand& command) {
  const auto config = parse_trial_config(load_json_file(command.config_path), command.config_path, "",
                                         fs::path(command.config_path).parent_path());
  const auto& stop = install_stop_signal_handlers();
  TrialRunOptions options;
  options.threads = command.threads;
  options.stop_requested = &stop;
  // Progress to stderr (in place within the epoch where a person watches),
  // the result to stdout.
  LiveLine live;
  if (!command.quiet) {
    options.progress = [&live](const std::string& line) { live.print(line); };
    if (LiveLine::wanted()) options.batch_progress = [&live](const BatchProgress& p) { live.show(to_string(p)); };
  }
  TrialRunner runner;
  nlohmann::json result;
  try {
    result = runner.run(config, command.out_dir, options);
  } catch (...) {
    live.clear();
    throw;
  }
  live.clear();
  char figures[96];
  if (result.at("top1").is_null()) {
    std::snprintf(figures, sizeof figures, "search only, derived allocation %.3f normalised bits",
                  result.value("normalised_bits", 0.0));
  } else {
    std::snprintf(figures, sizeof figures, "top-1 %.2f%%, %.3f normalised bits", result.value("top1", 0.0),
                  result.value("normalised_bits", 0.0));
  }
  std::cout << "trial " << result.at("trial_id").get<std::string>() << " finished: " << figures << "; "
            << command.out_dir << "/" << trial_files::result << std::endl;
  return 0;
}

namespace {

/// Dataset directories the sweep's trials read that do not exist on this
/// machine, each with how many trials read it.
std::map<std::string, size_t> missing_dataset_paths(const SweepDefinition& sweep) {
  std::map<std::string, size_t> missing;
  for (const auto& t : sweep.trials) {
    std::error_code ec;
    if (!fs::is_directory(t.config.dataset.path, ec)) ++missing[t.config.dataset.path];
  }
  return missing;
}

}  // namespace

int run_validate_command(const std::string& sweep_path) {
  const auto sweep = load_sweep_file(sweep_path);
  // A sweep may be written here and run on a cluster whose nodes hold the
  // data, so a missing path is a warning, not an error.
  for (const auto& [path, trials] : missing_dataset_paths(sweep)) {
    std::cerr << sweep_path << ": warning: base.dataset.path (or an axis' dataset) \"" << path
              << "\" is not a directory on this machine (" << trials
              << " trials read it); fine if the sweep runs where it exists (a cluster's nodes), else every trial "
                 "reading it fails with exit 2" << std::endl;
  }
  size_t search = 0;
  for (const auto& t : sweep.trials) search += t.kind == TrialKind::search;
  std::cout << sweep_path << ": ok: sweep \"" << sweep.name << "\", " << sweep.trials.size() << " trials (" << search
            << " search, " << sweep.trials.size() - search << " uniform baselines)";
  if (!sweep.budgets.empty()) std::cout << " and " << sweep.budgets.size() << " budgets";
  std::cout << std::endl;
  return 0;
}

namespace {

/// The budget groups of a sweep, with the probes and decisions the journal
/// in `out` knows of (when given).
void print_budget_groups(const SweepDefinition& sweep, const std::string& out) {
  JournalState journal;
  if (!out.empty()) journal = read_journal(fs::path(out) / sweep_files::journal);
  const auto& settings = sweep.budget_settings;
  std::printf("\n%zu budgets: the sweep chooses each one's lambdas while it runs (from %.4g, at most %d probes of "
              "its own, %d at once), then retrains the allocation found (docs/budgets.md)\n",
              sweep.budgets.size(), settings.initial_lambda, settings.max_probes, settings.max_parallel);
  std::printf("%-12s  %-10s  %-13s  %-9s  %-18s  %-5s  %-7s  %-5s  %s\n", "budget_group", "model", "dataset", "budget",
              "cost", "tol", "bits w", "a", "seed");
  for (const auto& g : sweep.budgets) {
    std::printf("%-12s  %-10s  %-13s  %-9.4g  %-18s  %-5.3g  %-7s  %-5s  %llu\n", g.id.c_str(), g.retrain.model.c_str(),
                g.retrain.dataset.name.c_str(), g.target.value, to_string(g.cost).c_str(), g.target.tolerance,
                g.summary["weight_bits"].get<std::string>().c_str(),
                g.summary["activation_bits"].get<std::string>().c_str(),
                static_cast<unsigned long long>(g.retrain.seed));
    if (out.empty()) continue;
    std::vector<std::pair<double, std::string>> probes;
    for (const auto& [id, event] : journal.finished) {
      const auto& s = event.at("summary");
      if (trial_kind_of(s) != TrialKind::probe || s.value("family", "") != g.family) continue;
      const double lambda = s.value("complexity_penalty", 0.0);
      probes.emplace_back(lambda, short_number(lambda) + " -> " +
                                      short_number(event.at("result").value(cost_result_key(g.cost), 0.0)));
    }
    std::sort(probes.begin(), probes.end());
    std::string known;
    for (const auto& p : probes) known += (known.empty() ? "" : ", ") + p.second;
    std::printf("    probes known (lambda -> %s): %s\n", to_string(g.cost).c_str(), known.empty() ? "none yet" : known.c_str());
    const auto decided = journal.budgets.find(g.id);
    if (decided != journal.budgets.end()) {
      const auto& e = decided->second;
      std::printf("    decided: %s%s%s\n", e.value("state", std::string("?")).c_str(),
                  decided_complexity_penalty(e) ? (" at lambda " + std::to_string(*decided_complexity_penalty(e))).c_str() : "",
                  e.contains("retrain") ? (", retraining " + e["retrain"].get<std::string>()).c_str() : "");
    }
  }
}

}  // namespace

int run_plan_command(const std::string& sweep_path, const std::string& out) {
  const auto sweep = load_sweep_file(sweep_path);
  // With --out, the journal is read (and checked) as every reader does.
  JournalState journal;
  if (!out.empty()) journal = read_journal(fs::path(out) / sweep_files::journal);
  int model_width = 10, dataset_width = 13;  // the columns widen for long names (imported models)
  for (const auto& t : sweep.trials) {
    model_width = std::max(model_width, int(t.config.model.size()));
    dataset_width = std::max(dataset_width, int(t.config.dataset.name.size()));
  }
  std::printf("%-12s  %-7s  %-*s  %-*s  %-9s  %-7s  %4s\n", "trial_id", "kind", model_width, "model", dataset_width,
              "dataset", "lambda", "bits w", "a");
  for (const auto& t : sweep.trials) {
    const auto& s = t.summary;
    char lambda[32] = "-";
    if (!s["complexity_penalty"].is_null()) {
      std::snprintf(lambda, sizeof lambda, "%g", s["complexity_penalty"].get<double>());
    }
    std::printf("%-12s  %-7s  %-*s  %-*s  %-9s  %-7s  %4s  seed %llu\n", t.id.c_str(), to_string(t.kind).c_str(), model_width,
                t.config.model.c_str(), dataset_width, t.config.dataset.name.c_str(), lambda,
                s["weight_bits"].get<std::string>().c_str(), s["activation_bits"].get<std::string>().c_str(),
                static_cast<unsigned long long>(t.config.seed));
  }
  std::printf("%zu trials\n", sweep.trials.size());
  if (sweep.ranks_per_trial > 1) {
    std::printf("ranks per trial: %d (each trial runs on a group of %d ranks, a node's ranks together; start a "
                "multiple of %d ranks)\n",
                sweep.ranks_per_trial, sweep.ranks_per_trial, sweep.ranks_per_trial);
  }
  if (!out.empty()) {
    size_t finished = 0;
    for (const auto& t : sweep.trials) finished += journal.finished.count(t.id);
    std::printf("%s: %zu of them finished\n", out.c_str(), finished);
  }
  if (!sweep.budgets.empty()) print_budget_groups(sweep, out);
  return 0;
}

int run_slurm_command(const SlurmCommand& command, const SlurmOverrides& overrides) {
  namespace fs = std::filesystem;
  const auto sweep = load_sweep_file(command.sweep_path);
  auto options = resolve_slurm_options(sweep.slurm, command.sweep_path, overrides);
  const int group = sweep.ranks_per_trial;
  if (group > 1) {
    // A group's ranks belong on one node (its all-reduces then stay in shared
    // memory or NVLink): unless given, a node runs one group's tasks.
    const bool tasks_given =
        overrides.ntasks_per_node || (sweep.slurm.is_object() && sweep.slurm.contains("ntasks_per_node"));
    if (!tasks_given) options.ntasks_per_node = group;
    const int tasks = options.nodes * options.ntasks_per_node;
    if (tasks < group) {
      throw ConfigError(command.sweep_path + ": /ranks_per_trial: " + std::to_string(group) +
                        " ranks per trial, but the job has " + std::to_string(tasks) +
                        " tasks (nodes x ntasks_per_node); ask for more");
    }
    if (options.ntasks_per_node % group != 0 && options.ntasks_per_node > group) {
      std::cerr << "edmips slurm: warning: " << options.ntasks_per_node << " tasks per node do not divide into "
                << "groups of " << group << " (ranks_per_trial): some groups span two nodes" << std::endl;
    }
    if (tasks % group != 0) {
      std::cerr << "edmips slurm: warning: " << tasks << " tasks do not divide into groups of " << group
                << " (ranks_per_trial): " << tasks % group << " rank(s) will sit idle" << std::endl;
    }
  }
  BatchJob job;
  job.ranks_per_trial = group;
  job.sweep_name = sweep.name;
  job.edmips_binary = fs::canonical("/proc/self/exe").string();
  job.sweep_file = fs::absolute(command.sweep_path).lexically_normal().string();
  job.out_dir = fs::absolute(command.out.empty() ? fs::path("results") / sweep.name : fs::path(command.out))
                    .lexically_normal()
                    .string();
  if (job.out_dir.size() > 1 && job.out_dir.back() == '/') job.out_dir.pop_back();
  const auto script = render_batch_script(job, options);
  // GPUs asked of Slurm that no trial would use.
  if (options.gpus_per_task > 0) {
    size_t on_cpu = 0;
    for (const auto& t : sweep.trials) on_cpu += t.config.device == "cpu";
    if (on_cpu > 0) {
      std::cerr << "edmips slurm: warning: the job requests " << options.gpus_per_task << " GPU(s) per task, but "
                << on_cpu << " of " << sweep.trials.size()
                << " trials run on device \"cpu\" (set \"device\": \"cuda\" or \"auto\" in the sweep's base)"
                << std::endl;
    }
#ifndef EDMIPS_WITH_CUDA
    std::cerr << "edmips slurm: warning: the job requests GPUs, but this edmips is a CPU-only build (LibTorch "
                 "without CUDA): the GPUs would sit idle; build with scripts/build-cuda.sh" << std::endl;
#endif
  }
  if (command.dry_run) {
    std::cout << script;
    return 0;
  }
  fs::create_directories(job.out_dir);
  const auto path = fs::path(job.out_dir) / "edmips-sweep.sbatch";
  write_file_atomically(path, script);
  const auto id = submit_batch_script(path.string());
  std::cout << "submitted job " << id << " for sweep " << sweep.name << " (" << sweep.trials.size() << " trials, "
            << options.nodes * options.ntasks_per_node << " ranks)\n"
            << "script: " << path.string() << "\n"
            << "follow: squeue -j " << id << "; tail -f " << job.out_dir << "/slurm-" << id << ".out" << std::endl;
  std::cout << id << std::endl;
  return 0;
}

int run_pareto_command(const ParetoOptions& options, const std::string& out) {
  const auto report = analyse_sweeps(options);
  print_report(std::cout, report);
  const std::string directory = out.empty() ? options.directories.front().string() : out;
  write_report_files(report, directory);
  std::cout << "wrote " << directory << "/pareto.csv, pareto.json, report.md" << std::endl;
  return 0;
}

namespace {

/// A Python that can draw the plots: $EDMIPS_PYTHON, Debian's, or the one on PATH.
std::optional<std::string> plotting_python() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("EDMIPS_PYTHON"); env && *env) candidates.emplace_back(env);
  candidates.insert(candidates.end(), {"/usr/bin/python3", "python3"});
  for (const auto& python : candidates) {
    if (run_program({python, "-c", "import matplotlib, pandas"}, /*quiet=*/true) == 0) return python;
  }
  return std::nullopt;
}

}  // namespace

int run_report_command(const ParetoOptions& options, const std::string& out) {
  run_pareto_command(options, out);
  const std::string directory = out.empty() ? options.directories.front().string() : out;
  const auto script = find_share_file("analysis/plots.py");
  if (!script) {
    std::cerr << "edmips report: analysis/plots.py not found (looked in";
    for (const auto& d : share_directories()) std::cerr << " " << d.string();
    std::cerr << "; set EDMIPS_SHARE_DIR); the tables are written, the plots are not" << std::endl;
    return int(ExitCode::failure);
  }
  const auto python = plotting_python();
  if (!python) {
    std::cerr << "edmips report: no Python with matplotlib and pandas (tried $EDMIPS_PYTHON, /usr/bin/python3, "
                 "python3; Debian: apt-get install python3-matplotlib python3-pandas); the tables are written, "
                 "the plots are not" << std::endl;
    return int(ExitCode::failure);
  }
  // A reader that stopped reading (`edmips report DIR | head`) does not stop
  // the plots: their lines go nowhere, the files are still written.
  std::cout.flush();
  const int status = run_program({*python, script->string(), directory}, /*quiet=*/!std::cout.good());
  if (status != 0) {
    std::cerr << "edmips report: " << script->string() << " exited with " << status << std::endl;
    return int(ExitCode::failure);
  }
  std::cout << "report: " << directory << "/report.md (plots in " << directory << "/plots/)" << std::endl;
  return 0;
}

int run_cost_table_command(const CostTableCommand& command) {
  const fs::path source(command.source);
  TrialConfig config;
  if (source.extension() == ".json") {
    config = parse_trial_config(load_json_file(command.source), command.source, "", source.parent_path());
  } else {
    const nlohmann::json model = source.extension() == ".onnx" ? nlohmann::json{{"onnx", command.source}}
                                                                : nlohmann::json{{"name", command.source}};
    config = parse_trial_config({{"model", model}, {"search", nlohmann::json::object()}},
                                "edmips cost-table " + command.source);
  }
  std::error_code ec;
  if (fs::exists(command.out, ec) && !command.force) {
    throw ConfigError(command.out + ": exists (a table being filled in?); choose another --out, or --force to "
                      "replace it");
  }
  const auto table = cost_table_template(config);
  write_file_atomically(command.out, table.dump(2) + "\n");
  size_t pairs = 0;
  for (const auto& layer : table.at("layers")) pairs += layer.size();
  std::cout << "wrote " << command.out << ": " << table.at("layers").size() << " layers of " << config.model << ", "
            << pairs << " costs to measure (each null; docs/costs.md)" << std::endl;
  return 0;
}

int run_version_command() {
  std::cout << "edmips " << EDMIPS_VERSION << " (EdMIPS-Sweep)\n" << torch_description() << "\nshared files (analysis, sweeps):";
  for (const auto& d : share_directories()) {
    std::error_code ec;
    std::cout << " " << d.string() << (fs::is_regular_file(d / "analysis" / "plots.py", ec) ? " (found)" : "");
  }
  std::cout << std::endl;
  return 0;
}

int run_bench_command(const StepBenchmarkOptions& options) {
  print_step_table(std::cout, options, run_step_benchmark(options));
  return 0;
}

}  // namespace edmips
