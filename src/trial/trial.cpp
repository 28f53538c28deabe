#include "trial/trial.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <torch/torch.h>

#include "core/error.h"
#include "core/number_text.h"
#include "core/duration_text.h"
#include "core/files.h"
#include "core/json_reader.h"
#include "core/process.h"
#include "core/process_group.h"
#include "nn/batch_norm.h"
#include "data/dataset.h"
#include "models/network.h"
#include "quant/fused_cuda.h"

namespace edmips {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Where a phase stands; persisted in the checkpoint so a resume is exact.
struct PhaseProgress {
  int epoch = 0;          ///< epoch in progress (0-based)
  int64_t batch = 0;      ///< next batch of that epoch
  double loss_sum = 0;    ///< running sums of the epoch in progress
  double cross_entropy_sum = 0;
  int64_t correct = 0;
  int64_t seen = 0;
  double seconds = 0;     ///< time spent in this phase over all runs
};

nlohmann::json to_json(const PhaseProgress& p) {
  return {{"epoch", p.epoch},     {"batch", p.batch},     {"loss_sum", p.loss_sum},
          {"cross_entropy_sum", p.cross_entropy_sum},     {"correct", p.correct},
          {"seen", p.seen},       {"seconds", p.seconds}};
}
PhaseProgress progress_from_json(const nlohmann::json& j) {
  PhaseProgress p;
  p.epoch = j.at("epoch");
  p.batch = j.at("batch");
  p.loss_sum = j.at("loss_sum");
  p.cross_entropy_sum = j.at("cross_entropy_sum");
  p.correct = j.at("correct");
  p.seen = j.at("seen");
  p.seconds = j.at("seconds");
  return p;
}

/// Everything a trial directory's checkpoint holds besides tensors.
/// A search's choice tracker: two entries (weight, activation) per search
/// layer, the argmax candidate now, the arch step from which it held, and how
/// often it changed. Plain vectors, updated every arch step; JSON only in the
/// checkpoint.
struct ChoiceTracker {
  int64_t steps = 0;  ///< arch steps counted so far
  std::vector<int64_t> current, stable_since;
  std::vector<int> flips;
  bool started() const { return !current.empty(); }
};

nlohmann::json to_json(const ChoiceTracker& t) {
  if (!t.started()) return nlohmann::json::object();
  return {{"steps", t.steps}, {"current", t.current}, {"stable_since", t.stable_since}, {"flips", t.flips}};
}
ChoiceTracker tracker_from_json(const nlohmann::json& j) {
  ChoiceTracker t;
  if (!j.contains("current")) return t;  // not started, or a checkpoint of an engine without the tracker
  t.steps = j.at("steps");
  t.current = j.at("current").get<std::vector<int64_t>>();
  t.stable_since = j.at("stable_since").get<std::vector<int64_t>>();
  t.flips = j.at("flips").get<std::vector<int>>();
  return t;
}

struct TrialState {
  std::string trial_id;          ///< whose checkpoint this is: never resumed by another trial
  int engine = kEngineVersion;   ///< the engine that wrote it
  std::string phase = "search";  ///< "search" or "train"
  bool has_model = false;        ///< false right after the search finished
  PhaseProgress progress;
  nlohmann::json history = nlohmann::json::array();
  nlohmann::json allocation;     ///< set once derived
  nlohmann::json search_summary; ///< cost and expected bits at the end of the search
  double search_seconds = 0;
  ChoiceTracker choices;  ///< search only
};

nlohmann::json to_json(const TrialState& s) {
  return {{"trial_id", s.trial_id},      {"engine", s.engine},
          {"phase", s.phase},           {"has_model", s.has_model},
          {"progress", to_json(s.progress)}, {"history", s.history},
          {"allocation", s.allocation}, {"search_summary", s.search_summary},
          {"search_seconds", s.search_seconds}, {"choices", to_json(s.choices)}};
}
TrialState state_from_json(const nlohmann::json& j) {
  TrialState s;
  s.trial_id = j.value("trial_id", "");
  s.engine = j.value("engine", 0);
  s.phase = j.at("phase");
  s.has_model = j.at("has_model");
  s.progress = progress_from_json(j.at("progress"));
  s.history = j.at("history");
  s.allocation = j.at("allocation");
  s.search_summary = j.at("search_summary");
  s.search_seconds = j.at("search_seconds");
  s.choices = tracker_from_json(j.value("choices", nlohmann::json::object()));
  return s;
}

/// Writes model, optimisers and state to a temporary file, then renames it.
/// The archive is serialised in memory first: LibTorch's file writer throws
/// from its destructor when the disk fills (std::terminate); our own atomic
/// write reports it as an IoError, removes its temporary file and leaves the
/// last good checkpoint in place.
void save_checkpoint(const fs::path& path, const TrialState& state, const Network& net,
                     const std::vector<torch::optim::Optimizer*>& optimizers) {
  torch::serialize::OutputArchive archive;
  archive.write("state", c10::IValue(to_json(state).dump()));
  if (net) {
    torch::serialize::OutputArchive model;
    net->save(model);
    archive.write("model", model);
    for (size_t i = 0; i < optimizers.size(); ++i) {
      torch::serialize::OutputArchive optimizer;
      optimizers[i]->save(optimizer);
      archive.write("optimizer" + std::to_string(i), optimizer);
    }
  }
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_file_atomically(path, bytes.str());
}

/// LibTorch's message without its C++ backtrace (16 frames, kilobytes), cut
/// to one readable line.
std::string short_torch_message(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  std::string text = c10_error ? c10_error->what_without_backtrace() : e.what();
  const auto newline = text.find('\n');
  if (newline != std::string::npos) text.resize(newline);
  if (text.size() > 300) text = text.substr(0, 300) + "...";
  return text;
}

/// Loads the archive at `path` (a regular file only: a FIFO is refused, not
/// waited on); a damaged one is an IoError (exit 3) naming the file.
void load_archive(torch::serialize::InputArchive& archive, const fs::path& path) {
  const auto bytes = read_text_file(path);
  try {
    archive.load_from(bytes.data(), bytes.size());
  } catch (const std::exception& e) {
    throw IoError(path.string() + ": unreadable checkpoint (" + short_torch_message(e) +
                  "); delete it to restart the trial");
  }
}

/// Refuses a checkpoint or result at `path` that another trial or engine
/// wrote (copied or moved here), exit 2, naming both trials; `remedy` says
/// what deleting it does.
void require_own_file(const fs::path& path, const char* what, const std::string& owner, int engine,
                      const std::string& expected_id, const char* remedy) {
  if (owner == expected_id && engine == kEngineVersion) return;
  throw ConfigError(path.string() + ": the " + what + " of trial " + (owner.empty() ? std::string("(unrecorded)") : owner) +
                    " (engine " + std::to_string(engine) + "), not of this directory's trial " + expected_id +
                    " (engine " + std::to_string(kEngineVersion) + "); delete it to " + remedy);
}

/// The state saved in the checkpoint at `path`, if there is one. A checkpoint
/// of another trial (copied or moved here) is refused, exit 2, naming both
/// IDs: resuming from it would give that trial's network a different result.
std::optional<TrialState> read_checkpoint_state(const fs::path& path, const std::string& expected_id) {
  if (!fs::exists(path) && !fs::is_symlink(path)) return std::nullopt;
  torch::serialize::InputArchive archive;
  load_archive(archive, path);
  TrialState state;
  try {
    c10::IValue value;
    archive.read("state", value);
    state = state_from_json(nlohmann::json::parse(value.toStringRef()));
  } catch (const std::exception& e) {
    throw IoError(path.string() + ": unreadable checkpoint (" + short_torch_message(e) +
                  "); delete it to restart the trial");
  }
  require_own_file(path, "checkpoint", state.trial_id, state.engine, expected_id, "restart the trial");
  return state;
}

void load_checkpoint_tensors(const fs::path& path, const Network& net,
                             const std::vector<torch::optim::Optimizer*>& optimizers) {
  torch::serialize::InputArchive archive;
  load_archive(archive, path);
  try {
    torch::serialize::InputArchive model;
    archive.read("model", model);
    net->load(model);
    for (size_t i = 0; i < optimizers.size(); ++i) {
      torch::serialize::InputArchive optimizer;
      archive.read("optimizer" + std::to_string(i), optimizer);
      optimizers[i]->load(optimizer);
    }
  } catch (const std::exception& e) {
    throw IoError(path.string() + ": unreadable checkpoint (" + short_torch_message(e) +
                  "); delete it to restart the trial");
  }
}

torch::Device choose_device(const std::string& requested, int node_local_rank) {
  if (requested == "cpu") return torch::kCPU;
  if (torch::cuda::is_available()) {
    const auto count = int(torch::cuda::device_count());
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(node_local_rank % std::max(1, count)));
  }
  if (requested == "cuda") {
    throw ConfigError(std::string("device \"cuda\" requested but LibTorch ") + TORCH_VERSION + " on host " +
                      host_name() +
                      " sees no CUDA device (a CPU-only LibTorch build, or no GPU or driver visible: check "
                      "nvidia-smi and CUDA_VISIBLE_DEVICES); use \"device\": \"cpu\" or \"auto\"");
  }
  return torch::kCPU;
}

/// Seeds a phase's epoch order from the trial seed, the phase and the epoch.
uint64_t epoch_seed(uint64_t seed, const std::string& phase, int epoch) {
  std::seed_seq seq{uint32_t(seed), uint32_t(seed >> 32), uint32_t(phase == "search" ? 1 : 2), uint32_t(epoch)};
  uint32_t out[2];
  seq.generate(out, out + 2);
  return (uint64_t(out[0]) << 32) | out[1];
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

/// On hardware that runs only `supported` widths a 3-bit layer is a 4-bit one
/// at the same cost: the derived widths go up to the supported ones (the
/// image's 8-bit input stays as it is where no supported width holds it).
/// Returns the layers that changed.
std::vector<std::string> round_up_to_supported(BitAllocation& allocation, const SupportedBits& supported) {
  std::vector<std::string> changed;
  auto up = [](int bits, const std::vector<int>& widths) {
    return widths.empty() || bits > widths.back() ? bits : supported_width(bits, widths, "");
  };
  for (auto& l : allocation.layers) {
    const int w = up(l.weight_bits, supported.weights), a = up(l.activation_bits, supported.activations);
    if (w != l.weight_bits || a != l.activation_bits) changed.push_back(l.layer);
    l.weight_bits = w;
    l.activation_bits = a;
  }
  return changed;
}

/// What the searched layers cost under `model`, in its unit, at `allocation`
/// (one entry per quantized layer of `net`, in order: the derived one, after
/// rounding up to supported widths).
double allocation_cost(const NetworkImpl& net, const BitAllocation& allocation, const CostModel& model) {
  double total = 0;
  size_t i = 0;
  for (const auto& layer : net.layers()) {
    if (!layer->quantized()) continue;
    const auto& bits = allocation.layers.at(i++);
    if (!layer->searching()) continue;  // fixed layers are outside the searched cost, as in expected_cost
    total += model.layer_cost(layer->cost_input(), bits.weight_bits, bits.activation_bits);
  }
  return total;
}

nlohmann::json layer_probabilities(const std::vector<LayerReport>& layers, int64_t arch_steps) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& l : layers) {
    if (!l.searched()) continue;
    const auto weight = l.weight_choice(), activation = l.activation_choice();
    out.push_back({{"name", l.name},
                   {"weight_candidates", l.weight_candidates},
                   {"activation_candidates", l.activation_candidates},
                   {"weight_probabilities", l.weight_probabilities},
                   {"activation_probabilities", l.activation_probabilities},
                   {"expected_weight_bits", l.expected_weight_bits},
                   {"expected_activation_bits", l.expected_activation_bits},
                   {"weight_bits", l.weight_bits},
                   {"activation_bits", l.activation_bits},
                   {"weight_choice_probability", weight.probability},
                   {"weight_margin", weight.margin},
                   {"activation_choice_probability", activation.probability},
                   {"activation_margin", activation.margin},
                   {"weight_probabilities_at_temperature_1", l.weight_probabilities_t1},
                   {"activation_probabilities_at_temperature_1", l.activation_probabilities_t1},
                   {"margin_at_temperature_1", l.margin_at_temperature_1()},
                   {"stable_since_step", l.stable_since},
                   {"flips", l.flips},
                   {"stable", l.stable(arch_steps)},
                   {"decided", l.decided(arch_steps)}});
  }
  return out;
}

/// The softmax temperature the search layers use now.
double temperature_of(const NetworkImpl& net) {
  for (const auto& layer : net.layers()) {
    if (layer->searching()) return layer->temperature();
  }
  return 1.0;
}

/// Starts the choice tracker from the network's current choices (once per search).
void start_choice_tracking(ChoiceTracker& t, const NetworkImpl& net) {
  if (t.started()) return;
  const auto now = net.choice_indices().to(torch::kCPU).contiguous();
  t.current.assign(now.data_ptr<int64_t>(), now.data_ptr<int64_t>() + now.numel());
  t.stable_since.assign(t.current.size(), 0);
  t.flips.assign(t.current.size(), 0);
}

/// Counts one architecture step whose resulting choices are `now` (host values).
void track_choices(ChoiceTracker& t, const double* now, size_t count) {
  if (!t.started() || t.current.size() != count) return;
  ++t.steps;
  for (size_t i = 0; i < count; ++i) {
    const auto chosen = int64_t(std::llround(now[i]));
    if (chosen == t.current[i]) continue;
    t.current[i] = chosen;
    t.stable_since[i] = t.steps;
    ++t.flips[i];
  }
}

/// Layer reports with the tracker's stability folded in; `arch_steps` is set
/// to the steps tracked so far (0 when nothing was tracked).
std::vector<LayerReport> tracked_reports(const NetworkImpl& net, const ChoiceTracker& t, int64_t& arch_steps) {
  auto reports = net.layer_reports();
  arch_steps = t.started() ? t.steps : 0;
  size_t k = 0;
  for (auto& r : reports) {
    if (!r.searched() || k + 1 >= t.stable_since.size()) continue;
    r.stable_since = std::max(t.stable_since[k], t.stable_since[k + 1]);
    r.flips = t.flips[k] + t.flips[k + 1];
    k += 2;
  }
  return reports;
}

struct Evaluation {
  double top1 = 0;  ///< percent
  double loss = 0;
  double top5 = 0;  ///< percent: the label among the five largest logits (all of them below five classes)
};

/// Decode threads of a folder dataset: the config's, else the trial's.
int loader_threads(const TrialConfig& config) {
  return config.dataset.loader_threads > 0 ? config.dataset.loader_threads : torch::get_num_threads();
}

Evaluation evaluate(const Network& net, const Dataset& data, const TrialConfig& config, torch::Device device) {
  torch::NoGradGuard no_grad;
  net->eval();
  const int64_t n = data.test_size(), chunk = data.folder ? 100 : 500;
  int64_t correct = 0, correct5 = 0;
  double loss = 0;
  BatchStream batches(data, false, chunk, config.dataset, 0, false, false, 0, loader_threads(config), device.is_cuda());
  for (int64_t b = 0; b < batches.batch_count(); ++b) {
    auto [x, y] = batches.batch(b);
    x = x.to(device, /*non_blocking=*/true);
    y = y.to(device, /*non_blocking=*/true);
    const auto logits = net->forward(x);
    loss += torch::nn::functional::cross_entropy(
                logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                .item<double>();
    correct += logits.argmax(1).eq(y).sum().item<int64_t>();
    const auto top = std::get<1>(logits.topk(std::min<int64_t>(5, logits.size(1)), 1));
    correct5 += top.eq(y.unsqueeze(1)).any(1).sum().item<int64_t>();
  }
  net->train();
  return {100.0 * double(correct) / double(n), loss / double(n), 100.0 * double(correct5) / double(n)};
}

/// One training phase (search or retraining), resumable at any batch.
class PhaseRunner {
 public:
  struct Spec {
    std::string phase;
    const Schedule* schedule = nullptr;
    Network net;
    /// [0] the weights'; in a search [1] the architecture parameters'.
    std::vector<torch::optim::Optimizer*> optimizers;
    std::vector<double> base_lrs;
    std::vector<bool> lr_decays;   ///< whether each optimizer follows the schedule's step decay
    int arch_warmup_epochs = 0;    ///< search: epochs before optimizers[1] steps and the penalty applies
    double final_temperature = 1;  ///< search: softmax temperature at the last step (1 at the first moving step)
    double complexity_penalty = 0;
    ComplexityNormaliser normaliser = ComplexityNormaliser::first_layer;
    /// Empty: BitOps as MACs x E[w] x E[a]; else the cost model's matrices (network.h).
    std::vector<torch::Tensor> cost_matrices;
    int remaining_epochs_after = 0;  ///< epochs of later phases, for the ETA
  };

  PhaseRunner(Spec spec, const TrialConfig& config, const Dataset& data, torch::Device device,
              const fs::path& directory, const TrialRunOptions& options, TrialState& state)
      : spec_(std::move(spec)), config_(config), data_(data), device_(device), directory_(directory),
        options_(options), state_(state) {}

  void run() {
    const auto& schedule = *spec_.schedule;
    auto& progress = state_.progress;
    const bool searching = spec_.phase == "search";
    if (searching) start_choice_tracking(state_.choices, *spec_.net);
    while (progress.epoch < schedule.epochs) {
      const auto epoch_start = Clock::now();
      if (parallel()) communication_at_epoch_start_ = group()->communication_seconds();
      const double decay = std::pow(schedule.lr_gamma, progress.epoch / schedule.lr_step_epochs);
      for (size_t i = 0; i < spec_.optimizers.size(); ++i) {
        set_learning_rate(*spec_.optimizers[i], spec_.base_lrs[i] * (spec_.lr_decays[i] ? decay : 1.0));
      }
      // Before the warm-up ends only the weights train: the alphas keep their
      // initial (equal) values and the penalty, which only they feel, is off.
      const bool arch_moves = searching && progress.epoch >= spec_.arch_warmup_epochs;
      BatchStream batches(data_, true, schedule.batch_size, config_.dataset,
                          epoch_seed(config_.seed, spec_.phase, progress.epoch), true, true, progress.batch,
                          loader_threads(config_), device_.is_cuda());
      spec_.net->train();
      if (parallel()) check_shards(batches.batch_count());
      int64_t batches_this_run = 0;
      for (; progress.batch < batches.batch_count(); ++progress.batch) {
        auto [x, y] = batches.batch(progress.batch);
        const int64_t global_rows = y.size(0);
        if (parallel()) {
          // This rank's rows of the global batch: the data order and
          // augmentation are those of a one-rank run of the same seed.
          const int64_t rank = group()->rank(), ranks = group()->size();
          const int64_t begin = global_rows * rank / ranks, end = global_rows * (rank + 1) / ranks;
          x = x.narrow(0, begin, end - begin);
          y = y.narrow(0, begin, end - begin);
        }
        inject_fault();
        if (device_.is_cuda()) {
          // Pinned host memory: the copies overlap with the GPU's work.
          x = x.pin_memory().to(device_, /*non_blocking=*/true);
          y = y.pin_memory().to(device_, /*non_blocking=*/true);
        }
        if (arch_moves && spec_.final_temperature != 1.0) {
          spec_.net->set_temperature(temperature_at(progress.epoch, progress.batch, batches.batch_count()));
        }
        torch::Tensor figures;
        bool stop_now = false;
        {
          const SyncBatchNormScope sync(parallel() && config_.sync_batch_norm ? group() : nullptr);
          const auto logits = spec_.net->forward(x);
          // A rank of a group contributes its shard's share of the global
          // mean (and 1/ranks of the penalty): the group's sums are one
          // rank's figures and gradients for the whole batch.
          const auto cross_entropy =
              parallel() ? torch::nn::functional::cross_entropy(
                               logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
                               double(global_rows)
                         : torch::nn::functional::cross_entropy(logits, y);
          auto loss = cross_entropy;
          if (arch_moves && spec_.complexity_penalty > 0) {
            const auto complexity = spec_.cost_matrices.empty() ? spec_.net->complexity_loss(spec_.normaliser)
                                                                : spec_.net->expected_cost(spec_.cost_matrices);
            loss = loss + (spec_.complexity_penalty / double(parallel() ? group()->size() : 1)) * complexity;
          }
          // The step's figures, read back once after the whole step is queued:
          // one host synchronisation per step on a GPU.
          figures = torch::stack({loss.detach(), cross_entropy.detach(),
                                  logits.detach().argmax(1).eq(y).sum().to(torch::kFloat)});
          for (auto* optimizer : spec_.optimizers) optimizer->zero_grad();
          loss.backward();
        }
        if (parallel()) {
          const bool stop_here = options_.stop_requested && options_.stop_requested->load();
          stop_now = all_reduce_step(figures, stop_here);
        }
        spec_.optimizers[0]->step();
        if (arch_moves) spec_.optimizers[1]->step();
        // The choices after the step travel with the step's figures: still one
        // host synchronisation.
        const auto host =
            (arch_moves ? torch::cat({figures, spec_.net->choice_indices().to(torch::kFloat)}) : figures)
                .to(torch::kCPU, torch::kDouble)
                .contiguous();
        if (arch_moves) track_choices(state_.choices, host.data_ptr<double>() + 3, size_t(host.numel() - 3));
        const double loss_value = host[0].item<double>();
        if (options_.progress && step_losses_wanted()) {
          char line[120];
          std::snprintf(line, sizeof line, "step %s epoch %d batch %lld loss %.9g", spec_.phase.c_str(),
                        progress.epoch + 1, static_cast<long long>(progress.batch + 1), loss_value);
          options_.progress(line);
        }
        if (!std::isfinite(loss_value)) {
          std::ostringstream message;
          message << "loss became " << loss_value << " in " << spec_.phase << " epoch " << progress.epoch + 1
                  << " batch " << progress.batch + 1 << "; lower the learning rate or complexity_penalty";
          throw DivergenceError(message.str());
        }
        const int64_t size = global_rows;
        progress.loss_sum += loss_value * double(size);
        progress.cross_entropy_sum += host[1].item<double>() * double(size);
        progress.correct += int64_t(host[2].item<double>());
        progress.seen += size;
        if (options_.batch_progress) report_batch(batches.batch_count(), epoch_start, batches_this_run++);
        // In a group every rank stops at the same step (the stop travels with
        // the gradients), and the first rank's checkpoint serves them all.
        if (parallel() ? stop_now : options_.stop_requested && options_.stop_requested->load()) {
          progress.batch += 1;
          progress.seconds += seconds_since(epoch_start);
          if (writes()) {
            save_checkpoint(directory_ / trial_files::checkpoint, state_with_model(), spec_.net, spec_.optimizers);
          }
          throw Interrupted("stop requested: checkpoint saved at " + spec_.phase + " epoch " +
                            std::to_string(progress.epoch + 1) + " batch " + std::to_string(progress.batch));
        }
      }
      finish_epoch(decay, arch_moves, seconds_since(epoch_start), batches.waited_s());
    }
  }

 private:
  ProcessGroup* group() const { return options_.group; }
  bool parallel() const { return options_.group && options_.group->size() > 1; }
  bool writes() const { return !options_.group || options_.group->rank() == 0; }

  /// Every rank of a group needs rows of every batch (a last, partial batch included).
  void check_shards(int64_t batches_per_epoch) const {
    const int64_t rows = data_.train_size(), batch = spec_.schedule->batch_size, ranks = group()->size();
    const int64_t last = rows - (batches_per_epoch - 1) * batch;
    if (std::min(batch, last) < ranks) {
      throw ConfigError(spec_.phase + ": a batch of " + std::to_string(std::min(batch, last)) +
                        " images cannot be shared by " + std::to_string(ranks) +
                        " ranks; choose batch_size and train_subset so that every batch (the last one too) "
                        "holds at least ranks_per_trial images");
    }
  }

  /// Sums the gradients of every optimised parameter (weights and alphas),
  /// the step's figures and the stop flags over the group in one collective;
  /// returns whether any rank asked to stop. The parameters are identical on
  /// every rank afterwards, as are the optimizers' steps.
  bool all_reduce_step(torch::Tensor& figures, bool stop_here) {
    std::vector<torch::Tensor> grads;
    for (auto* optimizer : spec_.optimizers) {
      for (const auto& group : optimizer->param_groups()) {
        for (const auto& p : group.params()) {
          if (p.grad().defined()) grads.push_back(p.grad());
        }
      }
    }
    std::vector<torch::Tensor> parts;
    parts.reserve(grads.size() + 2);
    for (const auto& g : grads) parts.push_back(g.reshape({-1}).to(torch::kCPU, torch::kFloat));
    parts.push_back(figures.to(torch::kCPU, torch::kFloat));
    parts.push_back(torch::full({1}, stop_here ? 1.0f : 0.0f));
    auto bucket = torch::cat(parts).contiguous();
    group()->all_reduce_sum(bucket.data_ptr<float>(), size_t(bucket.numel()));
    int64_t offset = 0;
    for (auto& g : grads) {
      const int64_t n = g.numel();
      g.copy_(bucket.narrow(0, offset, n).view(g.sizes()));
      offset += n;
    }
    figures = bucket.narrow(0, offset, figures.numel()).to(figures.device());
    return bucket[offset + figures.numel()].item<float>() > 0;
  }

  /// EDMIPS_STEP_LOSSES=1: every step's loss (a group's: the global batch's)
  /// goes to the progress lines (a sweep trial's log.txt), to compare runs step by step.
  static bool step_losses_wanted() {
    static const bool wanted = [] {
      const char* value = std::getenv("EDMIPS_STEP_LOSSES");
      return value && *value && std::string(value) != "0";
    }();
    return wanted;
  }

  /// Tests only: EDMIPS_TEST_FAIL_AT_STEP=N makes this process fail at its
  /// N-th training step (1-based, counted over its phases), as a bad shard or
  /// an out-of-memory error would, so group failures are tested on real ranks.
  void inject_fault() {
    static const long fail_at = [] {
      const char* value = std::getenv("EDMIPS_TEST_FAIL_AT_STEP");
      return value && *value ? std::strtol(value, nullptr, 10) : 0L;
    }();
    static long steps = 0;
    if (fail_at > 0 && ++steps == fail_at) {
      throw Error("injected fault at step " + std::to_string(fail_at) + " (EDMIPS_TEST_FAIL_AT_STEP)");
    }
  }

  void report_batch(int64_t batches_per_epoch, Clock::time_point epoch_start, int64_t batches_this_run) {
    const auto& progress = state_.progress;
    BatchProgress b;
    b.phase = spec_.phase;
    b.epoch = progress.epoch + 1;
    b.epochs = spec_.schedule->epochs;
    b.batch = progress.batch + 1;
    b.batches = batches_per_epoch;
    b.loss = progress.loss_sum / double(std::max<int64_t>(progress.seen, 1));
    const double seconds = std::max(1e-9, seconds_since(epoch_start));
    const double batches_per_second = double(batches_this_run + 1) / seconds;
    b.images_per_second = batches_per_second * double(spec_.schedule->batch_size);
    const double left = double(batches_per_epoch - b.batch) +
                        double(batches_per_epoch) * (b.epochs - b.epoch + spec_.remaining_epochs_after);
    b.eta_s = left / batches_per_second;
    options_.batch_progress(b);
  }

  /// Falls geometrically from 1 at the first step the alphas move to the
  /// final temperature at the search's last step.
  double temperature_at(int epoch, int64_t batch, int64_t batches_per_epoch) const {
    const int64_t steps = int64_t(spec_.schedule->epochs - spec_.arch_warmup_epochs) * batches_per_epoch;
    const int64_t step = int64_t(epoch - spec_.arch_warmup_epochs) * batches_per_epoch + batch;
    if (steps <= 1) return spec_.final_temperature;
    return std::pow(spec_.final_temperature, double(step) / double(steps - 1));
  }

  TrialState& state_with_model() {
    state_.phase = spec_.phase;
    state_.has_model = true;
    return state_;
  }

  void finish_epoch(double decay, bool arch_moved, double epoch_seconds, double data_wait_s) {
    auto& progress = state_.progress;
    // The released protocol validates every epoch and reports the best: with
    // eval_every, a retraining epoch's record carries its test figures.
    std::optional<Evaluation> tested;
    double test_seconds = 0;
    const int epoch_done = progress.epoch + 1;
    if (spec_.phase == "train" && config_.eval_every > 0 && writes() &&
        (epoch_done % config_.eval_every == 0 || epoch_done == spec_.schedule->epochs)) {
      const auto eval_start = Clock::now();
      tested = evaluate(spec_.net, data_, config_, device_);
      test_seconds = seconds_since(eval_start);
      epoch_seconds += test_seconds;
    }
    int64_t arch_steps = 0;
    const auto reports = tracked_reports(*spec_.net, state_.choices, arch_steps);
    const auto cost = network_cost(reports);
    nlohmann::json record = {
        {"phase", spec_.phase},
        {"epoch", progress.epoch + 1},
        {"epochs", spec_.schedule->epochs},
        {"loss", progress.loss_sum / double(std::max<int64_t>(progress.seen, 1))},
        {"cross_entropy", progress.cross_entropy_sum / double(std::max<int64_t>(progress.seen, 1))},
        {"train_accuracy", 100.0 * double(progress.correct) / double(std::max<int64_t>(progress.seen, 1))},
        {"lr", spec_.base_lrs[0] * decay},
        {"expected_normalised_bits", cost.expected_normalised_bits()},
        {"normalised_bits", cost.normalised_bits()},
        {"layers", layer_probabilities(reports, arch_steps)}};
    std::string decided;
    if (spec_.phase == "search") {
      const auto decision = search_decision(reports, arch_steps);
      record["arch_lr"] = arch_moved ? spec_.base_lrs[1] * (spec_.lr_decays[1] ? decay : 1.0) : 0.0;
      record["temperature"] = temperature_of(*spec_.net);
      record["decision"] = to_json(decision);
      decided = "  decided " + std::to_string(decision.decided_layers) + "/" + std::to_string(decision.searched_layers);
    }
    if (tested) {
      record["test_top1"] = tested->top1;
      record["test_top5"] = tested->top5;
      record["test_loss"] = tested->loss;
      record["test_s"] = test_seconds;
    }
    progress.seconds += epoch_seconds;
    record["seconds"] = progress.seconds;
    // Time the step waited for decoded batches (streamed datasets), this run of the epoch.
    if (data_.folder) record["data_wait_s"] = data_wait_s;
    if (parallel()) {
      // This run of the epoch's time in the group's collectives (gradients, synchronised BatchNorm).
      record["ranks"] = group()->size();
      record["communication_s"] = group()->communication_seconds() - communication_at_epoch_start_;
    }
    state_.history.push_back(record);
    const int done = progress.epoch + 1;
    progress = PhaseProgress{done, 0, 0, 0, 0, 0, progress.seconds};
    if (writes()) {
      save_checkpoint(directory_ / trial_files::checkpoint, state_with_model(), spec_.net, spec_.optimizers);
      write_file_atomically(directory_ / trial_files::history, state_.history.dump(1) + "\n");
    }
    if (options_.progress) {
      const double per_epoch = progress.seconds / done;
      const double eta = per_epoch * (spec_.schedule->epochs - done + spec_.remaining_epochs_after);
      char line[300];
      if (tested) decided += "  test top1 " + format_number("%.2f", tested->top1) + "%";
      std::snprintf(line, sizeof line, "%-6s epoch %d/%d  loss %.4f  acc %.2f%%  bits %.3f%s  elapsed %s  eta %s",
                    spec_.phase.c_str(), done, spec_.schedule->epochs, record["loss"].get<double>(),
                    record["train_accuracy"].get<double>(),
                    spec_.phase == "search" ? cost.expected_normalised_bits() : cost.normalised_bits(),
                    decided.c_str(), format_duration(state_.search_seconds + progress.seconds).c_str(),
                    format_duration(eta).c_str());
      options_.progress(line);
    }
  }

  Spec spec_;
  double communication_at_epoch_start_ = 0;
  const TrialConfig& config_;
  const Dataset& data_;
  torch::Device device_;
  fs::path directory_;
  const TrialRunOptions& options_;
  TrialState& state_;
};

/// The alphas' learning rate: scaled to the number of steps they move in
/// (search epochs after the warm-up), when the settings ask for it.
double effective_arch_lr(const SearchConfig& search, int64_t train_images) {
  const auto& a = search.arch;
  if (a.reference_steps <= 0) return a.lr;
  const int64_t per_epoch = (train_images + search.schedule.batch_size - 1) / search.schedule.batch_size;
  const int64_t steps = std::max<int64_t>(1, per_epoch * (search.schedule.epochs - a.warmup_epochs));
  return a.lr * double(a.reference_steps) / double(steps);
}

std::unique_ptr<torch::optim::Optimizer> make_arch_optimizer(const SearchConfig& search, const Schedule& schedule,
                                                             const std::vector<torch::Tensor>& alphas, double lr) {
  if (search.arch.optimizer == "adam") {
    // DARTS' settings for architecture parameters: betas (0.5, 0.999).
    return std::make_unique<torch::optim::Adam>(
        alphas, torch::optim::AdamOptions(lr).betas({0.5, 0.999}).weight_decay(search.arch.weight_decay));
  }
  // The released code: SGD with the weights' momentum.
  return std::make_unique<torch::optim::SGD>(
      alphas, torch::optim::SGDOptions(lr).momentum(schedule.momentum).weight_decay(search.arch.weight_decay));
}

std::string undecided_warning(const SearchDecision& d) {
  char head[400];
  std::snprintf(head, sizeof head,
                "warning: the search ended undecided: %d of %d layers decided (chosen candidate ahead of the "
                "runner-up by >= %.2f and unchanged over the last %.0f%% of the %lld arch steps); smallest margin "
                "%.3f at %s (%.3f at temperature 1); ",
                d.decided_layers, d.searched_layers, kDecidedMargin, 100 * kStableFraction,
                static_cast<long long>(d.arch_steps), d.smallest_margin, d.smallest_margin_layer.c_str(),
                d.smallest_margin_t1);
  // The late-changing layers after the fixed part: a deep network's list
  // must not be cut off by a buffer.
  std::string unstable;
  for (const auto& name : d.unstable_layers) unstable += (unstable.empty() ? "" : ", ") + name;
  return head + (unstable.empty() ? std::string("every choice stable") : "changed late: " + unstable) +
         ". The allocation is partly an argmax of near-equal or still-moving probabilities: search longer or raise "
         "arch_lr (docs/search-settings.md)";
}

ModelSpec model_spec(const TrialConfig& config) {
  return {config.model, config.model_onnx, config.init == "imported"};
}

/// Batches of training images that set an imported network's input scales
/// (QuantLayerImpl::set_calibrating) before it trains or is evaluated.
constexpr int64_t kCalibrationBatches = 16;
constexpr int64_t kCalibrationBatchSize = 128;

/// Measures the input scales of a quantized imported network on training
/// images in evaluation mode (BatchNorm statistics untouched). Deterministic:
/// the first batches of a fixed, unshuffled order.
void calibrate(const Network& net, const Dataset& data, const TrialConfig& config, torch::Device device) {
  if (!net->needs_calibration()) return;
  torch::NoGradGuard no_grad;
  net->eval();
  net->set_calibrating(true);
  BatchStream batches(data, true, kCalibrationBatchSize, config.dataset, 0, false, false, 0, loader_threads(config),
                      device.is_cuda());
  for (int64_t b = 0; b < std::min(kCalibrationBatches, batches.batch_count()); ++b) {
    net->forward(batches.batch(b).first.to(device));
  }
  net->set_calibrating(false);
  net->train();
}

/// The network a trial retrains (or, with no epochs, evaluates as built):
/// its starting weights drawn from seed + 1, so that export rebuilds the same
/// network when there is no trained checkpoint to read.
Network make_final_network(const TrialConfig& config, const ModelInput& input, const NetworkPrecision& precision) {
  torch::manual_seed(config.seed + 1);
  return make_network(model_spec(config), input, precision);
}

NetworkPrecision base_precision(const TrialConfig& config) {
  NetworkPrecision p;
  p.full_precision_first = config.full_precision_first;
  p.full_precision_last = config.full_precision_last;
  p.mac_convention = *mac_convention_from_string(config.cost_convention);
  p.step_table = *step_table_from_string(config.quantizer_steps);
  return p;
}

/// A folder dataset's corrupt images that were skipped (skip_corrupt), in
/// result.json and the trial's log.
void add_data_report(nlohmann::json& result, const Dataset& data, const TrialRunOptions& options) {
  if (!data.folder) return;
  const auto skipped = data.folder->skipped();
  result["data"] = {{"skipped_corrupt_images", skipped.size()}, {"skipped_files", skipped}};
  if (!skipped.empty() && options.progress) {
    options.progress("skipped " + std::to_string(skipped.size()) + " corrupt image(s), each replaced by the next image "
                     "of its split, first " + skipped.front());
  }
}

/// What result.json records, whatever the trial's mode: `top1` and `test_loss`
/// null when nothing was evaluated (a search-only trial).
struct Outcome {
  std::string mode;
  nlohmann::json top1, test_loss, top5;
  nlohmann::json best_epoch;  ///< best of the per-epoch test evaluations (eval_every); null without them
  double train_s = 0, eval_s = 0;
  std::optional<Evaluation> validation;  ///< on the held-back training images, when the dataset has them
};

/// The released protocol's figure: the retraining epoch with the best test
/// top-1 among those evaluated (eval_every; the earliest on a tie), with its
/// top-5 and loss; null when no epoch was evaluated on its own.
nlohmann::json best_epoch(const nlohmann::json& history) {
  nlohmann::json best;
  int evaluated = 0;
  for (const auto& record : history) {
    if (record.value("phase", "") != "train" || !record.contains("test_top1")) continue;
    ++evaluated;
    if (best.is_null() || record.at("test_top1").get<double>() > best.at("top1").get<double>()) {
      best = {{"epoch", record.at("epoch")},
              {"top1", record.at("test_top1")},
              {"top5", record.at("test_top5")},
              {"test_loss", record.at("test_loss")}};
    }
  }
  if (!best.is_null()) best["evaluated_epochs"] = evaluated;
  return best;
}

nlohmann::json trial_result(const TrialConfig& config, const std::string& id, const Outcome& outcome,
                            const std::vector<LayerReport>& reports, const BitAllocation& allocation,
                            const TrialState& state, const Dataset& data, int threads, const torch::Device& device,
                            Clock::time_point total_start, const TrialRunOptions& options) {
  const auto cost = network_cost(reports);
  TrialRecord record;
  record.id = id;
  record.mode = outcome.mode;
  record.top1 = outcome.top1;
  record.top5 = outcome.top5;
  record.best_epoch = outcome.best_epoch;
  record.test_loss = outcome.test_loss;
  // The images behind top1: its binomial uncertainty (edmips pareto).
  record.test_images = outcome.top1.is_null() ? nlohmann::json() : nlohmann::json(data.test_size());
  if (outcome.validation) {
    record.validation_top1 = outcome.validation->top1;
    record.validation_loss = outcome.validation->loss;
    record.validation_images = data.validation_size();
  }
  record.bitops = cost.bitops;
  record.normalised_bits = cost.normalised_bits();
  record.weight_memory_bits = cost.weight_memory_bits;
  record.activation_memory_bits = cost.activation_memory_bits;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : reports) layers.push_back(to_json(l));
  if (config.mode == TrialMode::search && config.search.cost.measure == CostBasis::table) {
    // Every quantized layer, as deployed (widths rounded up to the supported
    // ones); run_search checked the table holds each of them.
    record.table_cost = total_cost(config.search.cost, quantized_layers_of(layers, "trial " + id));
    record.table_unit = config.search.cost.unit();
  }
  record.total_macs = cost.total_macs;
  record.quantized_macs = cost.quantized_macs;
  record.allocation = to_json(allocation);
  record.search_s = state.search_seconds;
  record.train_s = outcome.train_s;
  record.eval_s = outcome.eval_s;
  record.this_run_s = seconds_since(total_start);
  record.threads = threads;
  record.device = device.str();
  record.search_summary = state.search_summary;
  auto result = result_json(config, record);
  result["layers"] = layers;
  add_data_report(result, data, options);
  return result;
}

/// The end of a search-only trial (a budget probe): the derived allocation's
/// cost, measured on the fixed network it describes, without retraining.
/// top1 and test_loss are null: nothing was evaluated.
nlohmann::json finish_search_only(const TrialConfig& config, const std::string& id, const fs::path& directory,
                                  const Dataset& data, const TrialState& state, int threads,
                                  const torch::Device& device, Clock::time_point total_start,
                                  const TrialRunOptions& options) {
  const auto allocation = bit_allocation_from_json(state.allocation, (directory / trial_files::checkpoint).string());
  auto precision = base_precision(config);
  precision.mode = PrecisionMode::fixed;
  precision.fixed_bits = allocation.layers;
  auto net = make_network(model_spec(config), data.input, precision);
  const auto reports = net->layer_reports();
  const auto cost = network_cost(reports);
  const auto result = trial_result(config, id, {"search-only", nullptr, nullptr, nullptr, nullptr, 0.0, 0.0, std::nullopt}, reports, allocation, state,
                                   data, threads, device, total_start, options);
  write_file_atomically(directory / trial_files::result, result.dump(2) + "\n");
  if (options.progress) {
    char line[200];
    std::snprintf(line, sizeof line, "result (search only) normalised bits %.3f  BitOps %.4g  weights %.1f KiB",
                  cost.normalised_bits(), cost.bitops, cost.weight_memory_bits / 8192.0);
    options.progress(line);
  }
  return result;
}

}  // namespace

nlohmann::json cost_table_template(const TrialConfig& config) {
  const auto data = load_dataset(config.dataset);
  auto precision = base_precision(config);
  precision.mode = PrecisionMode::search;
  precision.weight_candidates = config.search.weight_bits;
  precision.activation_candidates = config.search.activation_bits;
  torch::manual_seed(config.seed);
  const auto net = make_network(model_spec(config), data.input, precision);
  const auto& supported = config.search.cost.supported;
  nlohmann::json layers = nlohmann::json::object(), described = nlohmann::json::object();
  for (const auto& layer : net->layers()) {
    if (!layer->quantized()) continue;
    const auto input = layer->cost_input();
    nlohmann::json pairs = nlohmann::json::object();
    for (int w : layer->precision().weight_bits) {
      for (int a : layer->precision().activation_bits) {  // {8} for a layer fed the image
        const int sw = supported_width(w, supported.weights, "weight");
        const int sa = supported_width(a, supported.activations, "activation");
        pairs[pair_key(sw, sa)] = nullptr;
      }
    }
    layers[input.name] = pairs;
    described[input.name] = {{"shape", input.shape_key},
                             {"macs", input.macs},
                             {"weight_count", input.weight_count},
                             {"input_elements", input.input_elements},
                             {"searched", layer->searching()}};
  }
  return {{"unit", "FILL IN: the unit of every cost below (microseconds, microjoules, ...)"},
          {"description", "FILL IN: the device, runtime, batch size and how each cost was measured"},
          {"model", config.model},
          {"template",
           {{"note", "replace every null in /layers with the measured cost of that layer at that pair "
                     "(w<W>a<A>); a layer may instead be priced once per shape in /shapes, keyed by its shape "
                     "below; docs/costs.md"},
            {"layers", described}}},
          {"layers", layers}};
}

struct TrialRunner::Impl {
  std::map<std::string, std::shared_ptr<Dataset>> datasets;

  std::shared_ptr<Dataset> dataset(const DatasetConfig& config) {
    nlohmann::json key = {config.name,       config.path,    config.train_subset, config.test_subset,
                          config.subset_seed, config.image_size, config.classes,    config.skip_corrupt};
    auto& slot = datasets[key.dump()];
    if (!slot) slot = std::make_shared<Dataset>(load_dataset(config));
    return slot;
  }
};

TrialRunner::TrialRunner() : impl_(std::make_unique<Impl>()) {}
TrialRunner::~TrialRunner() = default;

void check_device_available(const TrialConfig& config) { choose_device(config.device, 0); }

std::string torch_description() {
  std::string text = std::string("LibTorch ") + TORCH_VERSION + ", fused CUDA kernels: " +
                     (cuda_fused::built() ? "built" : "not built (CPU LibTorch)") + "\nCUDA: ";
  if (!torch::cuda::is_available()) return text + "not available (no GPU or driver visible)";
  return text + "available, " + std::to_string(torch::cuda::device_count()) + " device(s)";
}

std::string to_string(const BatchProgress& p) {
  char line[200];
  std::snprintf(line, sizeof line, "%-6s epoch %d/%d  batch %lld/%lld  loss %.4f  %.0f img/s  eta %s", p.phase.c_str(),
                p.epoch, p.epochs, static_cast<long long>(p.batch), static_cast<long long>(p.batches), p.loss,
                p.images_per_second, format_duration(p.eta_s).c_str());
  return line;
}

nlohmann::json result_json(const TrialConfig& config, const TrialRecord& r) {
  nlohmann::json result = {
      {"trial_id", r.id},
      {"engine", kEngineVersion},
      {"status", "finished"},
      {"name", config.name},
      {"mode", r.mode},
      {"model", config.model},
      {"dataset", config.dataset.name},
      {"seed", config.seed},
      {"top1", r.top1},
      {"top5", r.top5},
      {"best_epoch", r.best_epoch},
      {"test_loss", r.test_loss},
      {"test_images", r.test_images},
      {"validation_top1", r.validation_top1},
      {"validation_loss", r.validation_loss},
      {"validation_images", r.validation_images},
      {"bitops", r.bitops},
      {"normalised_bits", r.normalised_bits},
      {"weight_memory_bits", r.weight_memory_bits},
      {"activation_memory_bits", r.activation_memory_bits},
      {"total_macs", r.total_macs},
      {"quantized_macs", r.quantized_macs},
      {"allocation", r.allocation},
      {"timings",
       {{"search_s", r.search_s}, {"train_s", r.train_s}, {"eval_s", r.eval_s}, {"this_run_s", r.this_run_s}}},
      {"threads", r.threads},
      {"device", r.device}};
  if (!r.table_cost.is_null()) {
    result["table_cost"] = r.table_cost;
    result["table_unit"] = r.table_unit;
  }
  if (config.mode == TrialMode::search) {
    result["complexity_penalty"] = config.search.complexity_penalty;
    result["weight_candidates"] = config.search.weight_bits;
    result["activation_candidates"] = config.search.activation_bits;
    result["search"] = r.search_summary;
  } else if (config.mode == TrialMode::uniform) {
    result["uniform_weight_bits"] = config.uniform_weight_bits;
    result["uniform_activation_bits"] = config.uniform_activation_bits;
  }
  return result;
}

TrainedNetwork load_trained_network(const fs::path& directory) {
  const auto config_path = directory / trial_files::config;
  const std::string not_finished = directory.string() + ": no finished trial here (no " + trial_files::result +
                                   " and " + trial_files::config + ")";
  if (!fs::exists(config_path) || !fs::exists(directory / trial_files::result)) throw ConfigError(not_finished);
  const auto recorded = load_state_file(config_path.string());
  TrainedNetwork out;
  out.config = parse_trial_config(recorded.at("config"), config_path.string(), "/config");
  out.trial_id = recorded.value("trial_id", "");
  const auto result = read_trial_result(directory, out.trial_id);  // checked as its trial's before it is used
  if (!result) throw ConfigError(not_finished);  // removed since the check above
  if (result->value("top1", nlohmann::json()).is_null()) {
    throw ConfigError(directory.string() + ": a search-only trial (a budget probe): it trained no final network");
  }
  out.result = *result;
  // An allocation trial's bits are its config's; search and uniform trials wrote allocation.json.
  const auto allocation_path = directory / trial_files::allocation;
  const auto allocation = out.config.mode == TrialMode::allocation
                              ? out.config.allocation
                              : bit_allocation_from_json(parse_json_text(read_text_file(allocation_path),
                                                                         allocation_path.string()),
                                                         allocation_path.string());
  auto precision = base_precision(out.config);
  precision.mode = PrecisionMode::fixed;
  precision.fixed_bits = allocation.layers;
  torch::set_num_threads(int(std::max(1u, std::thread::hardware_concurrency())));
  const auto loaded = std::make_shared<const Dataset>(load_dataset(out.config.dataset));
  const auto& data = *loaded;
  auto net = make_final_network(out.config, data.input, precision);
  const auto checkpoint_path = directory / trial_files::checkpoint;
  const auto state = read_checkpoint_state(checkpoint_path, out.trial_id);
  if (state && state->phase == "train" && state->has_model) {
    load_checkpoint_tensors(checkpoint_path, net, {});
  } else if (out.config.train.epochs > 0) {
    // Rebuilding the starting weights would export a network nobody trained.
    throw IoError(checkpoint_path.string() + ": missing or without the trained weights of this trial's " +
                  std::to_string(out.config.train.epochs) + " retraining epoch(s): run the trial again");
  } else {
    calibrate(net, data, out.config, torch::kCPU);  // no epochs: the trial evaluated these starting weights
  }
  net->eval();
  out.network = net;
  out.data = loaded;
  out.input_normalisation = {{"pixels", "x / 255"}, {"mean", data.channel_mean}, {"std", data.channel_std}};
  return out;
}

std::optional<nlohmann::json> read_trial_result(const fs::path& directory, const std::string& expected_id) {
  const auto path = directory / trial_files::result;
  if (!fs::exists(path) && !fs::is_symlink(path)) return std::nullopt;
  auto result = load_state_file(path.string());
  // A result without "engine" predates it; its ID, which hashes the engine's version, still tells.
  const auto field = [&](const char* key, const nlohmann::json& absent) {
    return result.is_object() ? result.value(key, absent) : nlohmann::json();
  };
  const auto owner_field = field("trial_id", ""), engine_field = field("engine", kEngineVersion);
  const std::string owner = owner_field.is_string() ? owner_field.get<std::string>() : "";
  const int engine = engine_field.is_number_integer() ? engine_field.get<int>() : -1;
  require_own_file(path, "result", owner, engine, expected_id, "run the trial again");
  return result;
}

namespace {

/// Whether this process writes the trial's files: alone, or the group's first rank.
bool writes(const TrialRunOptions& options) { return !options.group || options.group->rank() == 0; }

/// Makes `directory` the trial's own: created, stale temporary files of a
/// crash removed, config.json written, or, when there is one, checked to be
/// this trial's (ConfigError naming both trials otherwise).
void claim_trial_directory(const TrialConfig& config, const std::string& id, const fs::path& directory) {
  fs::create_directories(directory);
  {
    std::error_code ignored;  // a leftover that cannot go does no harm
    remove_stale_temporaries(directory, ignored);
  }
  const auto config_path = directory / trial_files::config;
  if (fs::exists(config_path)) {
    const auto existing = load_state_file(config_path.string());
    if (existing.value("trial_id", "") != id) {
      throw ConfigError(directory.string() + " holds trial " + existing.value("trial_id", "?") + ", not " + id +
                        "; choose another output directory");
    }
  } else {
    write_file_atomically(config_path, nlohmann::json{{"trial_id", id}, {"config", to_json(config)}}.dump(2) + "\n");
  }
}

/// What TrialRunner::run hands its phases: the trial, where it runs, and
/// its state (the checkpoint's, as far as it got).
struct TrialContext {
  const TrialConfig& config;
  const std::string& id;
  const fs::path& directory;
  const TrialRunOptions& options;
  const Dataset& data;
  torch::Device device;
  int threads;
  Clock::time_point total_start;
  TrialState& state;
  bool resuming;  ///< a checkpoint of this trial was found
  fs::path checkpoint_path;
};

/// The search phase, from its start or its checkpoint, to the derived
/// allocation (allocation.json) and a checkpoint that starts retraining.
void run_search(const TrialContext& c) {
  const auto& config = c.config;
  const auto& directory = c.directory;
  const auto& options = c.options;
  const auto& device = c.device;
  auto& state = c.state;
  const auto& checkpoint_path = c.checkpoint_path;
  const auto& search = config.search;
  auto precision = base_precision(config);
  precision.mode = PrecisionMode::search;
  precision.weight_candidates = search.weight_bits;
  precision.activation_candidates = search.activation_bits;
  precision.arch_init = search.arch.init;
  torch::manual_seed(config.seed);
  auto net = make_network(model_spec(config), c.data.input, precision);
  net->to(device);
  const auto& s = search.schedule;
  torch::optim::SGD weights(net->weight_parameters(),
                            torch::optim::SGDOptions(s.lr).momentum(s.momentum).weight_decay(s.weight_decay));
  const double arch_lr = effective_arch_lr(search, c.data.train_size());
  const auto arch = make_arch_optimizer(search, s, net->arch_parameters(), arch_lr);
  std::vector<torch::optim::Optimizer*> optimizers = {&weights, arch.get()};
  if (c.resuming && state.has_model) load_checkpoint_tensors(checkpoint_path, net, optimizers);
  else calibrate(net, c.data, config, device);
  PhaseRunner::Spec spec;
  spec.phase = "search";
  spec.schedule = &s;
  spec.net = net;
  spec.optimizers = optimizers;
  spec.base_lrs = {s.lr, arch_lr};
  spec.lr_decays = {true, search.arch.lr_decay};
  spec.arch_warmup_epochs = search.arch.warmup_epochs;
  spec.final_temperature = search.arch.final_temperature;
  spec.complexity_penalty = search.complexity_penalty;
  spec.normaliser = search.normaliser == "total" ? ComplexityNormaliser::total : ComplexityNormaliser::first_layer;
  double cost_normal = 1;
  if (!search.cost.plain_bitops()) spec.cost_matrices = net->cost_matrices(search.cost, spec.normaliser, &cost_normal);
  if (search.cost.measure == CostBasis::table) {
    // The deployed network is priced in the table too (result.json's
    // table_cost): a quantized layer the search does not choose for must be
    // there now, not after the retraining.
    for (const auto& layer : net->layers()) {
      if (layer->quantized() && !layer->searching()) {
        search.cost.layer_cost(layer->cost_input(), layer->precision().weight_bits.front(),
                               layer->precision().activation_bits.front());
      }
    }
  }
  spec.remaining_epochs_after = search.retrain ? config.train.epochs : 0;
  PhaseRunner(spec, config, c.data, device, directory, options, state).run();

  int64_t arch_steps = 0;
  const auto reports = tracked_reports(*net, state.choices, arch_steps);
  const auto cost = network_cost(reports);
  const auto decision = search_decision(reports, arch_steps);
  auto allocation = derive_allocation(config.model, reports);
  const auto rounded_up = round_up_to_supported(allocation, search.cost.supported);
  state.allocation = to_json(allocation);
  state.search_summary = {{"expected_normalised_bits", cost.expected_normalised_bits()},
                          {"expected_bitops", cost.expected_bitops},
                          {"arch_lr", arch_lr},
                          {"decision", to_json(decision)},
                          {"layers", layer_probabilities(reports, arch_steps)}};
  if (!spec.cost_matrices.empty()) {
    torch::NoGradGuard no_grad;
    state.search_summary["cost"] = to_json(search.cost);
    state.search_summary["cost"]["unit"] = search.cost.unit();
    state.search_summary["cost"]["expected"] = net->expected_cost(spec.cost_matrices).item<double>() * cost_normal;
    state.search_summary["cost"]["derived"] = allocation_cost(*net, allocation, search.cost);
    state.search_summary["cost"]["rounded_up_layers"] = rounded_up;
  }
  if (!decision.decided() && options.progress) options.progress(undecided_warning(decision));
  state.search_seconds = state.progress.seconds;
  state.phase = "train";
  state.has_model = false;
  state.progress = PhaseProgress{};
  if (writes(options)) {
    write_file_atomically(directory / trial_files::allocation, state.allocation.dump(2) + "\n");
    save_checkpoint(checkpoint_path, state, nullptr, {});
  }
}

/// Retrains the derived (or given, or uniform) network, from scratch or, for
/// an imported model with init "imported", from the file's weights; then
/// evaluates it and writes result.json.
nlohmann::json retrain_and_evaluate(const TrialContext& c) {
  const auto& config = c.config;
  const auto& id = c.id;
  const auto& directory = c.directory;
  const auto& options = c.options;
  const auto& device = c.device;
  auto& state = c.state;
  const auto& checkpoint_path = c.checkpoint_path;
  const auto& input = c.data.input;
  auto precision = base_precision(config);
  precision.mode = PrecisionMode::fixed;
  BitAllocation allocation;
  if (config.mode == TrialMode::search) {
    allocation = bit_allocation_from_json(state.allocation, checkpoint_path.string());
    precision.fixed_bits = allocation.layers;
  } else if (config.mode == TrialMode::allocation) {
    allocation = config.allocation;
    precision.fixed_bits = allocation.layers;
  } else {
    precision.fixed_bits = {LayerBits{"", config.uniform_weight_bits, config.uniform_activation_bits}};
  }
  Network net;
  try {
    net = make_final_network(config, input, precision);
  } catch (const ConfigError& e) {
    // A given allocation that does not fit the model: name where it was given.
    if (config.mode != TrialMode::allocation) throw;
    throw ConfigError(config.allocation_source + e.what());  // "FILE: /allocation" + "/layers/3: ..."
  }
  net->to(device);
  if (config.mode == TrialMode::uniform) {
    allocation = derive_allocation(config.model, net->layer_reports());
    if (writes(options)) write_file_atomically(directory / trial_files::allocation, to_json(allocation).dump(2) + "\n");
  }
  const auto& t = config.train;
  torch::optim::SGD weights(net->parameters(),
                            torch::optim::SGDOptions(t.lr).momentum(t.momentum).weight_decay(t.weight_decay));
  std::vector<torch::optim::Optimizer*> optimizers = {&weights};
  if (state.has_model) load_checkpoint_tensors(checkpoint_path, net, optimizers);
  else calibrate(net, c.data, config, device);
  PhaseRunner::Spec spec;  // no architecture, no penalty, nothing after it
  spec.phase = "train";
  spec.schedule = &t;
  spec.net = net;
  spec.optimizers = optimizers;
  spec.base_lrs = {t.lr};
  spec.lr_decays = {true};
  PhaseRunner(spec, config, c.data, device, directory, options, state).run();
  // The group's other ranks are done: the first one evaluates and writes.
  if (!writes(options)) return nlohmann::json{{"trial_id", id}, {"group_rank", options.group->rank()}};

  const auto eval_start = Clock::now();
  const auto evaluation = evaluate(net, c.data, config, device);
  std::optional<Evaluation> validation;
  if (c.data.validation_size() > 0) validation = evaluate(net, c.data.validation_view(), config, device);
  const double eval_seconds = seconds_since(eval_start);
  const auto reports = net->layer_reports();
  const auto cost = network_cost(reports);

  const auto result = trial_result(config, id,
                                   {to_string(config.mode), evaluation.top1, evaluation.loss, evaluation.top5,
                                    best_epoch(state.history), state.progress.seconds, eval_seconds, validation},
                                   reports, allocation, state, c.data, c.threads, device, c.total_start, options);
  write_file_atomically(directory / trial_files::result, result.dump(2) + "\n");
  if (options.progress) {
    char line[200];
    std::snprintf(line, sizeof line, "result top1 %.2f%%  normalised bits %.3f  BitOps %.4g  weights %.1f KiB",
                  evaluation.top1, cost.normalised_bits(), cost.bitops, cost.weight_memory_bits / 8192.0);
    options.progress(line);
  }
  return result;
}

}  // namespace

nlohmann::json TrialRunner::run(const TrialConfig& config, const fs::path& directory,
                                const TrialRunOptions& options) {
  const auto total_start = Clock::now();
  const std::string id = trial_id(config);
  const int ranks = options.group ? options.group->size() : 1;
  if (config.data_parallel_ranks != ranks) {
    throw ConfigError("trial " + id + " is set for " + std::to_string(config.data_parallel_ranks) +
                      " rank(s) (data_parallel.ranks) but runs on " + std::to_string(ranks) +
                      "; a sweep's ranks_per_trial sets it");
  }
  if (writes(options)) claim_trial_directory(config, id, directory);
  if (auto done = read_trial_result(directory, id)) return *done;

  const int threads = options.threads > 0 ? options.threads
                      : config.threads > 0 ? config.threads
                                           : int(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
  const auto device = choose_device(config.device, options.node_local_rank);
  const auto data = impl_->dataset(config.dataset);

  const auto checkpoint_path = directory / trial_files::checkpoint;
  TrialState state;
  const auto saved = read_checkpoint_state(checkpoint_path, id);
  if (saved) state = *saved;
  else state.phase = config.mode == TrialMode::search ? "search" : "train";
  state.trial_id = id;
  const bool resuming = saved.has_value();
  if (resuming && options.progress) {
    options.progress("resuming " + state.phase + " at epoch " + std::to_string(state.progress.epoch + 1) +
                     " batch " + std::to_string(state.progress.batch + 1));
  }

  const TrialContext context{config, id, directory, options, *data, device, threads, total_start, state, resuming,
                             checkpoint_path};
  if (config.mode == TrialMode::search && state.phase == "search") run_search(context);

  if (config.mode == TrialMode::search && !config.search.retrain) {
    if (!writes(options)) return nlohmann::json{{"trial_id", id}, {"group_rank", options.group->rank()}};
    return finish_search_only(config, id, directory, *data, state, threads, device, total_start, options);
  }

  return retrain_and_evaluate(context);
}

}  // namespace edmips
