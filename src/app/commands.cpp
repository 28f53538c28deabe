#include "app/commands.h"

#include "bench/step_benchmark.h"

#include <iostream>

#include "core/error.h"
#include "core/json_reader.h"
#include "core/stop_signal.h"
#include "trial/trial.h"

namespace edmips {

int run_trial_command(const TrialCommand& command) {
  const auto config = parse_trial_config(load_json_file(command.config_path), command.config_path);
  const auto& stop = install_stop_signal_handlers();
  TrialRunOptions options;
  options.threads = command.threads;
  options.stop_requested = &stop;
  if (!command.quiet) options.progress = [](const std::string& line) { std::cout << line << std::endl; };
  TrialRunner runner;
  const auto result = runner.run(config, command.out_dir, options);
  if (!command.quiet) {
    std::cout << "trial " << result.at("trial_id").get<std::string>() << " finished: " << command.out_dir << "/"
              << trial_files::result << std::endl;
  }
  return 0;
}

int run_bench_command(const StepBenchmarkOptions& options) {
  print_step_table(std::cout, options, run_step_benchmark(options));
  return 0;
}

}  // namespace edmips
