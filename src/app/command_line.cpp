// app: each sub-command's options (Boost.Program_options: defaults, ranges
// checked before anything runs, --help) and the hand-over to its work in
// commands.cpp, sweep_status.cpp, export_command.cpp, the benchmarks and the
// sweep session. cli/main.cpp only looks a command up here.
#include <boost/program_options.hpp>
#include <cmath>
#include <csignal>
#include <functional>
#include <thread>
#include <filesystem>
#include <iostream>
#include <cstdio>
#include <sstream>

#include "app/command_line.h"
#include "app/commands.h"
#include "app/sweep_status.h"
#include "benchmarks/data_benchmark.h"
#include "data/synthetic_folder.h"
#include "benchmarks/step_benchmark.h"
#include "pareto/analysis.h"
#include "quant/step_sizes.h"
#include "slurm_jobs/batch_script.h"
#include "sweep/sweep_run.h"
#include "core/error.h"

namespace po = boost::program_options;
using namespace edmips;

namespace {

const char* kUsage =
    "usage: edmips <command> [options]\n"
    "\n"
    "commands:\n"
    "  trial CONFIG.json --out DIR   run (or resume) one EdMIPS trial\n"
    "  validate SWEEP.json           check a sweep file (exit 2 when invalid)\n"
    "  plan SWEEP.json [--out DIR]   list a sweep's trials and budgets (with DIR: probes so far)\n"
    "  sweep SWEEP.json --out DIR    run (or resume) a sweep; under mpirun/srun on many ranks\n"
    "  slurm SWEEP.json [--dry-run]  write the sweep's sbatch script and submit it\n"
    "  status DIR [--watch] [--json] where a sweep stands: done, running, failed, pending, ETA, best so far\n"
    "  pareto DIR [DIR...]           fronts, hypervolume, dominance over uniform; writes the report tables\n"
    "  report DIR [DIR...]           pareto, then the plots (the whole report in DIR)\n"
    "  bench [--model M --batch B]   time float / search / fixed / naive training steps\n"
    "  bench --data DIR [--generate] image-folder loading: images/s against torchvision, data wait\n"
    "  generate-folder DIR           write a synthetic image folder (train/ and val/, one folder per class)\n"
    "  export TRIAL_DIR --out F.onnx a finished trial (built-in or imported model) as QDQ, QONNX or float ONNX\n"
    "  cost-table MODEL_OR_CONFIG --out T.json  the template of a cost table: every layer, shape, MACs, pair\n"
    "  --version                     version, LibTorch, CUDA, where the shared files are\n"
    "\n"
    "Run `edmips <command> --help` for a command's options and their defaults.\n"
    "Exit codes: 0 ok, 1 a trial failed, 2 invalid input, 3 data or I/O error,\n"
    "4 stopped by a signal after checkpointing, 70 internal error.\n";

constexpr int kMaxThreads = 4096;
constexpr int64_t kMaxCount = int64_t(1) << 30;

/// A notifier that refuses values outside [low, high] (NaN too): exit 2
/// naming the option, before anything runs.
template <typename T>
std::function<void(const T&)> within(const std::string& option, T low, T high) {
  return [option, low, high](const T& value) {
    if (!(value >= low && value <= high)) {
      std::ostringstream message;
      message << "--" << option << ": expected a value from " << low << " to " << high << ", found " << value;
      throw ConfigError(message.str());
    }
  };
}

po::variables_map parse(const std::vector<std::string>& args, po::options_description& options,
                        const po::positional_options_description& positional) {
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
  po::notify(vm);
  return vm;
}

/// Prints `options` and returns true when args ask for help.
bool wants_help(const std::vector<std::string>& args, const po::options_description& options) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << options;
      return true;
    }
  }
  return false;
}

int trial(const std::vector<std::string>& args) {
  TrialCommand command;
  po::options_description options("edmips trial CONFIG.json --out DIR");
  options.add_options()("help,h", "show this help")(
      "config", po::value(&command.config_path)->required(), "trial config (JSON)")(
      "out,o", po::value(&command.out_dir)->required(), "output directory (resumes if it holds the trial)")(
      "threads,t", po::value(&command.threads)->default_value(0)->notifier(within<int>("threads", 0, kMaxThreads)),
      "torch threads (0: the config's \"threads\", else all cores)")(
      "quiet,q", po::bool_switch(&command.quiet), "no progress lines (the result line still goes to stdout)");
  po::positional_options_description positional;
  positional.add("config", 1);
  if (wants_help(args, options)) return 0;
  parse(args, options, positional);
  return run_trial_command(command);
}

int export_trial(const std::vector<std::string>& args) {
  ExportCommand command;
  po::options_description options("edmips export TRIAL_DIR --format qdq|qonnx|float --out FILE.onnx");
  options.add_options()("help,h", "show this help")(
      "trial", po::value(&command.trial_dir)->required(), "a finished trial's directory")(
      "format,f", po::value(&command.format)->default_value(command.format),
      "qdq (ONNX Runtime, TensorRT), qonnx (FINN, the qonnx package: 1-4 bits) or float")(
      "out,o", po::value(&command.out)->required(), "the ONNX file to write (FILE.json beside it: layers and bits)");
  po::positional_options_description positional;
  positional.add("trial", 1);
  if (wants_help(args, options)) return 0;
  parse(args, options, positional);
  return run_export_command(command);
}

int cost_table(const std::vector<std::string>& args) {
  CostTableCommand command;
  po::options_description options("edmips cost-table MODEL_OR_CONFIG --out table.json");
  options.add_options()("help,h", "show this help")(
      "source", po::value(&command.source)->required(),
      "a trial config (.json), an ONNX model (.onnx) or a built-in model's name")(
      "out,o", po::value(&command.out)->required(), "the template to write (every layer, its shape, MACs, pairs)")(
      "force", po::bool_switch(&command.force), "replace --out if it exists");
  po::positional_options_description positional;
  positional.add("source", 1);
  if (wants_help(args, options)) return 0;
  parse(args, options, positional);
  return run_cost_table_command(command);
}

int sweep_file_command(const std::vector<std::string>& args, const std::string& name,
                       int (*command)(const std::string&)) {
  std::string path;
  po::options_description options("edmips " + name + " SWEEP.json");
  options.add_options()("help,h", "show this help")("sweep", po::value(&path)->required(), "sweep file (JSON)");
  po::positional_options_description positional;
  positional.add("sweep", 1);
  if (wants_help(args, options)) return 0;
  parse(args, options, positional);
  return command(path);
}

int plan(const std::vector<std::string>& args) {
  std::string path, out;
  po::options_description options("edmips plan SWEEP.json [--out DIR]");
  options.add_options()("help,h", "show this help")("sweep", po::value(&path)->required(), "sweep file (JSON)")(
      "out,o", po::value(&out), "the sweep's output directory: also count its finished trials and list its budgets' probes and decisions so far");
  po::positional_options_description positional;
  positional.add("sweep", 1);
  if (wants_help(args, options)) return 0;
  parse(args, options, positional);
  return run_plan_command(path, out);
}

int sweep(const std::vector<std::string>& args) {
  SweepRunOptions o;
  po::options_description options("edmips sweep SWEEP.json --out DIR  (under mpirun -np N or srun --mpi=pmix)");
  options.add_options()("help,h", "show this help")(
      "sweep", po::value(&o.sweep_path)->required(), "sweep file (JSON)")(
      "out,o", po::value(&o.out)->required(), "output directory (resumes if it holds the sweep)")(
      "threads,t", po::value(&o.threads)->default_value(0)->notifier(within<int>("threads", 0, kMaxThreads)), "torch threads per rank (0: SLURM_CPUS_PER_TASK, "
                                                             "OMP_NUM_THREADS, else cores / ranks per node)")(
      "quiet,q", po::bool_switch(&o.quiet), "no progress lines");
  // The tests' fake trials: parsed, never listed in --help.
  po::options_description testing("testing aids");
  testing.add_options()(
      "fake-trials", po::bool_switch(&o.fake), "testing aid: run fake trials that sleep instead of training")(
      "fake-duration", po::value(&o.fake_options.duration_s)->default_value(o.fake_options.duration_s)->notifier(within<double>("fake-duration", 0.0, 1e6)),
      "testing aid: seconds per fake trial")(
      "fake-busy", po::bool_switch(&o.fake_options.busy), "testing aid: fake trials burn a core instead of sleeping")(
      "fake-fail-once-seed", po::value(&o.fake_options.fail_once_seed)->default_value(-1),
      "testing aid: first attempt fails (-1: none)")(
      "fake-fail-always-seed", po::value(&o.fake_options.fail_always_seed)->default_value(-1),
      "testing aid: every attempt fails (-1: none)");
  po::positional_options_description positional;
  positional.add("sweep", 1);
  if (wants_help(args, options)) return 0;
  po::options_description all;
  all.add(options).add(testing);
  parse(args, all, positional);
  return run_sweep(o);
}

int slurm(const std::vector<std::string>& args) {
  SlurmCommand c;
  SlurmOverrides o;
  po::options_description options(
      "edmips slurm SWEEP.json [options]  (flags override the sweep file's \"slurm\" section)");
  options.add_options()("help,h", "show this help")("sweep", po::value(&c.sweep_path)->required(), "sweep file")(
      "out,o", po::value(&c.out), "sweep output directory on a shared filesystem (default: results/<sweep name>)")(
      "nodes,N", po::value<int>()->notifier(within<int>("nodes", 1, 1 << 20)), "nodes (default: the sweep's slurm.nodes, else 1)")(
      "ntasks-per-node", po::value<int>()->notifier(within<int>("ntasks-per-node", 1, 1 << 20)), "MPI ranks per node (default: slurm.ntasks_per_node, else 1)")(
      "cpus-per-task,c", po::value<int>()->notifier(within<int>("cpus-per-task", 1, kMaxThreads)), "cores (torch threads) per rank (default: slurm.cpus_per_task, else 1)")(
      "gpus-per-task", po::value<int>()->notifier(within<int>("gpus-per-task", 0, 1024)), "GPUs per rank (default: slurm.gpus_per_task, else 0)")(
      "time,t", po::value<std::string>(), "time limit (default: slurm.time, else 1:00:00)")(
      "partition,p", po::value<std::string>(), "partition (default: slurm.partition, else the cluster's)")(
      "account,A", po::value<std::string>(), "account (default: slurm.account, else none)")(
      "dry-run", po::bool_switch(&c.dry_run), "print the script instead of submitting it");
  po::positional_options_description positional;
  positional.add("sweep", 1);
  if (wants_help(args, options)) return 0;
  const auto vm = parse(args, options, positional);
  if (vm.count("nodes")) o.nodes = vm["nodes"].as<int>();
  if (vm.count("ntasks-per-node")) o.ntasks_per_node = vm["ntasks-per-node"].as<int>();
  if (vm.count("cpus-per-task")) o.cpus_per_task = vm["cpus-per-task"].as<int>();
  if (vm.count("gpus-per-task")) o.gpus_per_task = vm["gpus-per-task"].as<int>();
  if (vm.count("time")) o.time = vm["time"].as<std::string>();
  if (vm.count("partition")) o.partition = vm["partition"].as<std::string>();
  if (vm.count("account")) o.account = vm["account"].as<std::string>();
  return run_slurm_command(c, o);
}

int pareto(const std::vector<std::string>& args, bool with_plots) {
  ParetoOptions o;
  std::vector<std::string> directories;
  std::string cost = "bitops", reference, out;
  po::options_description options(with_plots ? "edmips report DIR [DIR...]  (pareto, then the plots)"
                                             : "edmips pareto DIR [DIR...]");
  options.add_options()("help,h", "show this help")(
      "dirs", po::value(&directories)->required(), "sweep output directories")(
      "cost", po::value(&cost)->default_value(cost),
      "cost axis: bitops, normalised_bits, weight_memory_bits, activation_memory_bits or table (docs/costs.md)")(
      "cost-table", po::value(&o.cost_table), "a cost table that prices every trial's layers (with --cost table: "
                                              "the axis; default: each search's own table_cost)")(
      "reference", po::value(&reference), "hypervolume reference point COST,TOP1 (default: 1.1 x the largest "
                                          "cost, the lowest top-1)")(
      "out,o", po::value(&out), "where to write pareto.csv, pareto.json, report.md (default: the first DIR)")(
      "best-epoch", po::bool_switch(&o.best_epoch), "top-1 of each trial's best epoch on the test set (train."
                                                    "eval_every; the released protocol), not its final epoch");
  po::positional_options_description positional;
  positional.add("dirs", -1);
  if (wants_help(args, options)) return 0;
  parse(args, options, positional);
  o.cost = parse_cost_measure(cost);
  for (const auto& d : directories) o.directories.emplace_back(d);
  if (!reference.empty()) {
    double c = 0, a = 0;
    char extra = 0;
    if (std::sscanf(reference.c_str(), "%lf,%lf%c", &c, &a, &extra) != 2 || !std::isfinite(c) || !std::isfinite(a) ||
        c <= 0) {
      throw ConfigError("--reference: expected COST,TOP1 such as 3e8,70 (a cost above 0, finite numbers), found \"" +
                        reference.substr(0, 200) + "\"");
    }
    o.reference = ParetoPoint{c, a};
  }
  return with_plots ? run_report_command(o, out) : run_pareto_command(o, out);
}

int status(const std::vector<std::string>& args) {
  StatusCommand c;
  po::options_description options("edmips status DIR  (reads what the sweep writes; never disturbs it)");
  options.add_options()("help,h", "show this help")("dir", po::value(&c.directory)->required(),
                                                     "sweep output directory")(
      "watch,w", po::value(&c.watch_s)->implicit_value(10.0)->default_value(0.0)->notifier(within<double>("watch", 0.0, 1e6)),
      "refresh every SECONDS (default 10 when given without a value) until the sweep ends; 0: once")(
      "wait", po::value(&c.start_wait_s)->default_value(c.start_wait_s)->notifier(within<double>("wait", 0.0, 1e6)),
      "with --watch: seconds to wait for a sweep that has not written its journal yet")(
      "json", po::bool_switch(&c.json), "print JSON for scripts instead of text");
  po::positional_options_description positional;
  positional.add("dir", 1);
  if (wants_help(args, options)) return 0;
  parse(args, options, positional);
  if (c.watch_s < 0) throw ConfigError("--watch: expected seconds >= 0");
  return run_status_command(c);
}

std::vector<int> parse_bits(const std::string& text, const std::string& option) {
  std::vector<int> bits;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      bits.push_back(std::stoi(item, &used));
      if (used != item.size() || bits.back() < kMinBits || bits.back() > kMaxBits) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw ConfigError("--" + option + ": \"" + text.substr(0, 200) +
                        "\": expected comma-separated integers from " + std::to_string(kMinBits) +
                        " to " + std::to_string(kMaxBits) + ", like 1,2,3,4");
    }
  }
  if (bits.empty()) throw ConfigError("--" + option + ": expected comma-separated integers, like 1,2,3,4, found none");
  return bits;
}

/// `edmips generate-folder DIR`: a synthetic image folder (tests, examples, the data benchmark).
int generate_folder(const std::vector<std::string>& args) {
  SyntheticFolderOptions o;
  std::string dir;
  po::options_description options("edmips generate-folder DIR [options]  (synthetic ImageFolder-layout JPEGs)");
  options.add_options()("help,h", "show this help")("dir", po::value(&dir)->required(), "folder to write")(
      "classes", po::value(&o.classes)->default_value(o.classes)->notifier(within<int>("classes", 1, 100000)), "class folders")(
      "train-per-class", po::value(&o.train_per_class)->default_value(o.train_per_class)->notifier(within<int>("train-per-class", 1, 1 << 24)), "training images per class")(
      "val-per-class", po::value(&o.val_per_class)->default_value(o.val_per_class)->notifier(within<int>("val-per-class", 1, 1 << 24)), "validation images per class")(
      "width", po::value(&o.width)->default_value(o.width)->notifier(within<int>("width", 8, 16384)), "image width (before --vary-sizes)")(
      "height", po::value(&o.height)->default_value(o.height)->notifier(within<int>("height", 8, 16384)), "image height")(
      "quality", po::value(&o.quality)->default_value(o.quality)->notifier(within<int>("quality", 1, 100)), "JPEG quality")(
      "vary-sizes", po::bool_switch(&o.vary_sizes), "sizes from 0.5x to 1.5x, some portrait")(
      "odd-formats", po::bool_switch(&o.odd_formats), "per class one greyscale JPEG, one CMYK JPEG and one PNG")(
      "seed", po::value(&o.seed)->default_value(o.seed), "seed of the pictures");
  po::positional_options_description positional;
  positional.add("dir", 1);
  if (wants_help(args, options)) return 0;
  parse(args, options, positional);
  if (std::filesystem::exists(std::filesystem::path(dir) / "train")) {
    throw ConfigError(dir + "/train exists already; generate-folder writes only into a new folder");
  }
  write_synthetic_folder(dir, o);
  std::cout << "wrote " << o.classes * (o.train_per_class + o.val_per_class) << " images to " << dir << "/train and "
            << dir << "/val" << std::endl;
  return 0;
}

/// `edmips bench --data DIR ...`: the image-folder data path's benchmark.
int data_bench(const std::vector<std::string>& args) {
  DataBenchmarkOptions o;
  po::options_description options("edmips bench --data DIR [options]");
  options.add_options()("help,h", "show this help")(
      "data", po::value(&o.folder)->required(), "an image folder (train/<class>/*.jpg ...)")(
      "generate", po::bool_switch(&o.generate), "first write a synthetic ImageNet-like folder there if it has no train/")(
      "generate-images", po::value(&o.generate_images)->default_value(o.generate_images)->notifier(within<int>("generate-images", 1, 1 << 24)), "training images to generate")(
      "images", po::value(&o.images)->default_value(o.images)->notifier(within<int>("images", 1, 1 << 24)), "images decoded per measurement")(
      "batch,b", po::value(&o.batch)->default_value(o.batch)->notifier(within<int>("batch", 1, 1 << 16)), "batch size of the loaders")(
      "size", po::value(&o.size)->default_value(o.size)->notifier(within<int>("size", 8, 4096)), "crop size")(
      "threads,t", po::value(&o.threads)->default_value(o.threads)->notifier(within<int>("threads", 0, kMaxThreads)), "the \"all cores\" row's threads (0: every core)")(
      "no-torchvision", "skip the torchvision anchor")(
      "step-model", po::value(&o.step_model)->default_value(o.step_model),
      "model of the data-wait measurement (\"\" to skip it)")(
      "step-batch", po::value(&o.step_batch)->default_value(o.step_batch)->notifier(within<int>("step-batch", 1, 1 << 16)), "its batch size")(
      "steps", po::value(&o.steps)->default_value(o.steps)->notifier(within<int>("steps", 1, 1 << 20)), "its measured steps");
  if (wants_help(args, options)) return 0;
  const auto vm = parse(args, options, {});
  o.torchvision = !vm.count("no-torchvision");
  return run_data_benchmark(std::cout, o);
}

int bench(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--data" || a.rfind("--data=", 0) == 0) return data_bench(args);
  }
  StepBenchmarkOptions o;
  std::string weight_bits = "1,2,3,4", activation_bits = "2,3,4";
  po::options_description options("edmips bench [options]");
  options.add_options()("help,h", "show this help")(
      "model,m", po::value(&o.model)->default_value(o.model), "model")(
      "batch,b", po::value(&o.batch)->default_value(o.batch)->notifier(within<int64_t>("batch", 1, 1 << 16)), "batch size")(
      "channels", po::value(&o.channels)->default_value(o.channels)->notifier(within<int64_t>("channels", 1, 4096)), "input channels")(
      "size", po::value(&o.height)->default_value(o.height)->notifier(within<int64_t>("size", 1, 4096)), "input height and width")(
      "classes", po::value(&o.classes)->default_value(o.classes)->notifier(within<int64_t>("classes", 2, 1 << 20)), "classes")(
      "weight-bits", po::value(&weight_bits)->default_value(weight_bits), "weight candidates")(
      "activation-bits", po::value(&activation_bits)->default_value(activation_bits), "activation candidates")(
      "steps", po::value(&o.steps)->default_value(o.steps)->notifier(within<int>("steps", 1, 1 << 20)), "measured steps per form")(
      "warmup", po::value(&o.warmup)->default_value(o.warmup)->notifier(within<int>("warmup", 0, 1 << 20)), "warm-up steps")(
      "threads,t", po::value(&o.threads)->default_value(o.threads)->notifier(within<int>("threads", 0, kMaxThreads)), "torch threads (0: every core)")(
      "device", po::value(&o.device)->default_value(o.device), "cpu or cuda (GPU 0 of CUDA_VISIBLE_DEVICES)")(
      "no-naive", "skip the naive |W|x|A| search form")(
      "onnx", po::value(&o.onnx)->value_name("FILE"),
      "also an imported ONNX network at the same shapes, its forms beside the model's")(
      "data", po::value<std::string>(), "an image folder: benchmark its loading instead (edmips bench --data DIR --help)");
  if (wants_help(args, options)) return 0;
  const auto vm = parse(args, options, {});
  o.width = o.height;
  o.naive = !vm.count("no-naive");
  if (o.threads == 0) o.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  if (o.batch * o.channels * o.height * o.width > kMaxCount) {
    throw ConfigError("--batch x --channels x --size^2: at most 2^30 input values per batch, found " +
                      std::to_string(o.batch * o.channels * o.height * o.width));
  }
  if (o.device != "cpu" && o.device != "cuda") {
    throw ConfigError("--device: expected cpu or cuda, found \"" + o.device + "\"");
  }
  o.weight_bits = parse_bits(weight_bits, "weight-bits");
  o.activation_bits = parse_bits(activation_bits, "activation-bits");
  return run_bench_command(o);
}

}  // namespace

namespace edmips {

const char* usage_text() { return kUsage; }

const std::vector<SubCommand>& sub_commands() {
  static const std::vector<SubCommand> table = {
      {"trial", trial},
      {"bench", bench},
      {"validate", [](const std::vector<std::string>& a) { return sweep_file_command(a, "validate", run_validate_command); }},
      {"plan", plan},
      {"generate-folder", generate_folder},
      {"sweep", sweep},
      {"pareto", [](const std::vector<std::string>& a) { return pareto(a, false); }},
      {"report", [](const std::vector<std::string>& a) { return pareto(a, true); }},
      {"status", status},
      {"--version", [](const std::vector<std::string>&) { return run_version_command(); }},
      {"version", [](const std::vector<std::string>&) { return run_version_command(); }},
      {"slurm", slurm},
      {"export", export_trial},
      {"cost-table", cost_table},
  };
  return table;
}

}  // namespace edmips
