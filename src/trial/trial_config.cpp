#include "trial/trial_config.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "core/files.h"
#include "core/json_reader.h"
#include "core/stable_id.h"
#include "models/model_names.h"
#include "quant/step_sizes.h"

namespace edmips {
namespace {

// The largest setting accepted: training runs in float, so a larger one
// would pass as a double and overflow in LibTorch.
constexpr double kHuge = double(std::numeric_limits<float>::max());

/// `min_epochs` 0 (retraining only): evaluate the network as it starts, which
/// for an imported model is its file's weights, quantized and calibrated.
Schedule parse_schedule(JsonObjectReader& r, const Schedule& defaults, int min_epochs = 1) {
  Schedule s;
  s.epochs = int(r.int_value("epochs", min_epochs, 100000, defaults.epochs));
  s.batch_size = r.int_value("batch_size", 1, 1 << 20, defaults.batch_size);
  s.lr = r.number_value("lr", 0.0, kHuge, defaults.lr);
  s.momentum = r.number_value("momentum", 0.0, 1.0, defaults.momentum);
  s.weight_decay = r.number_value("weight_decay", 0.0, kHuge, defaults.weight_decay);
  s.lr_step_epochs = int(r.int_value("lr_step_epochs", 1, 100000, defaults.lr_step_epochs));
  s.lr_gamma = r.number_value("lr_gamma", 0.0, 1.0, defaults.lr_gamma);
  return s;
}

nlohmann::json schedule_json(const Schedule& s) {
  return {{"epochs", s.epochs},     {"batch_size", s.batch_size},     {"lr", s.lr},
          {"momentum", s.momentum}, {"weight_decay", s.weight_decay}, {"lr_step_epochs", s.lr_step_epochs},
          {"lr_gamma", s.lr_gamma}};
}

ArchSettings parse_arch_settings(JsonObjectReader& s) {
  ArchSettings a = arch_preset(s.choice("preset", {"scaled", "paper"}, std::string("scaled")));
  a.optimizer = s.choice("arch_optimizer", {"sgd", "adam"}, a.optimizer);
  a.lr = s.number_value("arch_lr", 0.0, kHuge, a.lr);
  a.reference_steps = s.int_value("arch_reference_steps", 0, int64_t(1) << 40, a.reference_steps);
  a.lr_decay = s.bool_value("arch_lr_decay", a.lr_decay);
  a.weight_decay = s.number_value("arch_weight_decay", 0.0, kHuge, a.weight_decay);
  if (s.has("arch_warmup_epochs")) a.warmup_epochs = int(s.int_value("arch_warmup_epochs", 0, 100000));
  a.init = s.number_value("arch_init", -kHuge, kHuge, a.init);
  a.final_temperature = s.number_value("arch_final_temperature", 1e-3, 1.0, a.final_temperature);
  return a;
}

/// "model": {"onnx": PATH, "name": ..., "init": ...}: the file must exist;
/// its content's ID is computed here, and checked against a recorded one
/// (a trial directory's config.json) so a changed file is never mistaken
/// for the one a trial ran on.
void parse_onnx_model(JsonObjectReader& m, const std::filesystem::path& relative_to, TrialConfig& c) {
  namespace fs = std::filesystem;
  const std::string given = m.string_value("onnx");
  if (given.empty()) m.fail("onnx", "the path of an ONNX file");
  fs::path path(given);
  if (path.is_relative() && !relative_to.empty()) path = relative_to / path;
  std::error_code error;
  const auto status = fs::status(path, error);
  if (error || !fs::exists(status))
    m.fail("onnx", "an existing ONNX file (" + path.string() + " does not exist)");
  if (!fs::is_regular_file(status)) m.fail("onnx", "a regular file (" + path.string() + " is not)");
  c.model_onnx = fs::absolute(path).lexically_normal().string();
  c.model_onnx_content = stable_id(read_text_file(c.model_onnx));
  if (m.has("onnx_content") && m.string_value("onnx_content") != c.model_onnx_content) {
    m.fail("onnx_content", "the ID of " + c.model_onnx + " as it is now (" + c.model_onnx_content +
                               "): the file changed since this config was written");
  }
  c.init = m.choice("init", {"imported", "scratch"}, std::string("imported"));
  // The default name tells the two inits apart, so a sweep over both keeps
  // two fronts in its report instead of mixing them into one.
  c.model = m.string_value("name", path.stem().string() + (c.init == "scratch" ? ".onnx-scratch" : ".onnx"));
  if (c.model.empty()) m.fail("name", "a non-empty model name");
}

/// "cost": "bitops" | "weight_memory" | "activation_memory", or
/// {"measure": ..., "supported_bits": {"weights": [...], "activations": [...]},
///  "table": PATH}; every candidate must fit a supported width.
CostModel parse_cost(JsonObjectReader& s, const std::filesystem::path& relative_to,
                     const SearchConfig& search) {
  CostModel model;
  if (!s.has("cost")) return model;
  const auto& raw = s.raw("cost");
  const std::string pointer = s.path_of("cost");
  if (raw.is_string()) {
    const auto measure = cost_basis_from_string(raw.get<std::string>());
    if (!measure || *measure == CostBasis::table) {
      s.fail_at(pointer,
                "\"bitops\", \"weight_memory\", \"activation_memory\", or an object "
                "({\"measure\": \"table\", \"table\": PATH} for a table)",
                raw);
    }
    model.measure = *measure;
    return model;
  }
  if (!raw.is_object()) s.fail_at(pointer, "a cost measure name or object", raw);
  JsonObjectReader c(raw, pointer, s.source());
  model.measure = *cost_basis_from_string(c.choice("measure", cost_basis_names(), std::string("bitops")));
  if (c.has("supported_bits")) {
    auto b = c.object("supported_bits");
    if (b.has("weights")) model.supported.weights = b.int_list("weights", kMinBits, kMaxBits);
    if (b.has("activations")) model.supported.activations = b.int_list("activations", kMinBits, 32);
    std::sort(model.supported.weights.begin(), model.supported.weights.end());
    std::sort(model.supported.activations.begin(), model.supported.activations.end());
    b.reject_unknown_keys();
    auto check = [&](const std::vector<int>& candidates, const std::vector<int>& supported, const char* key) {
      for (int bits : candidates) {
        if (!supported.empty() && bits > supported.back()) {
          b.fail(key,
                 "a width >= every candidate (" + std::to_string(bits) + " bits has none to round up to)");
        }
      }
    };
    check(search.weight_bits, model.supported.weights, "weights");
    check(search.activation_bits, model.supported.activations, "activations");
  }
  if (model.measure == CostBasis::table) {
    const std::string given = c.string_value("table");
    std::filesystem::path path(given);
    if (path.is_relative() && !relative_to.empty()) path = relative_to / path;
    if (given.empty() || !std::filesystem::is_regular_file(path)) {
      c.fail("table", "an existing cost table file (" + path.string() + " is not one)");
    }
    model.table = read_cost_table(std::filesystem::absolute(path).lexically_normal().string());
    if (c.has("table_content") && c.string_value("table_content") != model.table->content) {
      c.fail("table_content", "the ID of " + model.table->path + " as it is now (" + model.table->content +
                                  "): the file changed since this config was written");
    }
  } else if (c.has("table")) {
    c.fail("table", "no table unless \"measure\" is \"table\"");
  }
  c.reject_unknown_keys();
  return model;
}

}  // namespace

ArchSettings arch_preset(const std::string& name) {
  ArchSettings a;
  if (name == "paper") {
    // search.py of the released code: SGD(alphas, lra=0.01, momentum 0.9,
    // weight_decay 1e-4), both lrs x0.1 every step-epoch, from the first step.
    a.preset = "paper";
    a.optimizer = "sgd";
    a.lr = 0.01;
    a.reference_steps = 0;
    a.lr_decay = true;
    a.weight_decay = 1e-4;
    a.warmup_epochs = 0;
    a.final_temperature = 1.0;
    return a;
  }
  if (name == "scaled") return a;  // the struct's defaults
  throw ConfigError("unknown search preset \"" + name + "\"; expected \"scaled\" or \"paper\"");
}

std::string to_string(TrialMode mode) {
  switch (mode) {
    case TrialMode::search:
      return "search";
    case TrialMode::uniform:
      return "uniform";
    case TrialMode::allocation:
      return "allocation";
  }
  return "?";
}

TrialConfig parse_trial_config(const nlohmann::json& j, const std::string& source, const std::string& pointer,
                               const std::filesystem::path& relative_to) {
  JsonObjectReader root(j, pointer, source);
  // Unknown keys first: a misspelt "serch" should be named as such.
  root.reject_unknown_keys({"name", "seed", "threads", "device", "cost_convention", "quantizer_steps",
                            "dataset", "model", "search", "uniform", "allocation", "train", "data_parallel"});
  TrialConfig c;
  c.name = root.string_value("name", std::string{});
  c.seed = uint64_t(root.int_value("seed", 0, std::numeric_limits<int64_t>::max(), 0));
  c.threads = int(root.int_value("threads", 0, 4096, 0));
  c.device = root.choice("device", {"cpu", "cuda", "auto"}, std::string("cpu"));
  c.cost_convention = root.choice("cost_convention", {"output", "released"}, std::string("output"));
  if (root.has("data_parallel")) {
    auto p = root.object("data_parallel");
    c.data_parallel_ranks = int(p.int_value("ranks", 1, 4096, 1));
    c.sync_batch_norm = p.bool_value("sync_batch_norm", false);
    p.reject_unknown_keys();
  }

  bool image_size_given = false;
  if (root.has("dataset")) {
    auto d = root.object("dataset");
    c.dataset.name = d.choice("name", dataset_names(), c.dataset.name);
    c.dataset.path = d.string_value("path", c.dataset.path);
    c.dataset.train_subset = d.int_value("train_subset", 0, int64_t(1) << 40, 0);
    c.dataset.test_subset = d.int_value("test_subset", 0, int64_t(1) << 40, 0);
    c.dataset.subset_seed = uint64_t(d.int_value("subset_seed", 0, std::numeric_limits<int64_t>::max(), 0));
    c.dataset.validation_subset = d.int_value("validation_subset", 0, int64_t(1) << 40, 0);
    c.dataset.validation_fraction = d.number_value("validation_fraction", 0.0, 0.9, 0.0);
    if (c.dataset.validation_subset > 0 && c.dataset.validation_fraction > 0) {
      d.fail("validation_fraction", "give validation_subset (a count) or validation_fraction, not both");
    }
    c.dataset.crop_padding = int(d.int_value("crop_padding", 0, 64, 0));
    c.dataset.horizontal_flip = d.bool_value("horizontal_flip", false);
    if (c.dataset.name == "image-folder") {
      if (c.dataset.validation_subset > 0 || c.dataset.validation_fraction > 0) {
        d.fail(c.dataset.validation_subset > 0 ? "validation_subset" : "validation_fraction",
               "no validation split for an image folder yet (its images are streamed, not held in memory)");
      }
      image_size_given = d.has("image_size");
      c.dataset.image_size = int(d.int_value("image_size", 16, 1024, 224));
      c.dataset.classes = d.int_value("classes", 0, int64_t(1) << 30, 0);
      c.dataset.skip_corrupt = d.bool_value("skip_corrupt", false);
      c.dataset.loader_threads = int(d.int_value("loader_threads", 0, 1024, 0));
      if (c.dataset.crop_padding > 0 || c.dataset.horizontal_flip) {
        d.fail("crop_padding",
               "no crop_padding or horizontal_flip for an image folder (it trains with random "
               "resized crops and flips)");
      }
    }
    d.reject_unknown_keys();
  }
  if (root.has("model")) {
    auto m = root.object("model");
    if (m.has("onnx")) {
      parse_onnx_model(m, relative_to, c);
    } else {
      c.model = m.choice("name", model_names(), c.model);
      if (m.has("init") && m.string_value("init") != "scratch") {
        m.fail("init", "\"scratch\" for a built-in model (\"imported\" needs \"onnx\")");
      }
    }
    // Inception-V3's geometry (the released main.py: 299 crops, 342 resizes)
    // unless the dataset names its own.
    if (c.model == "inception_v3" && c.dataset.name == "image-folder" && !image_size_given)
      c.dataset.image_size = 299;
    c.full_precision_first = m.bool_value("full_precision_first", true);
    c.full_precision_last = m.bool_value("full_precision_last", true);
    m.reject_unknown_keys();
  }

  const int modes = int(root.has("search")) + int(root.has("uniform")) + int(root.has("allocation"));
  if (modes != 1) {
    throw ConfigError(source + ": " + (pointer.empty() ? "/" : pointer) +
                      ": expected exactly one of \"search\", \"uniform\" or \"allocation\", found " +
                      std::to_string(modes));
  }
  if (root.has("search")) {
    c.mode = TrialMode::search;
    auto s = root.object("search");
    // Candidates are a set: sorted, so [4, 2] and [2, 4] are the same trial
    // (int_list already refuses duplicates). Argmax ties go to the fewest bits.
    c.search.weight_bits = s.int_list("weight_bits", kMinBits, kMaxBits, c.search.weight_bits);
    c.search.activation_bits = s.int_list("activation_bits", kMinBits, kMaxBits, c.search.activation_bits);
    std::sort(c.search.weight_bits.begin(), c.search.weight_bits.end());
    std::sort(c.search.activation_bits.begin(), c.search.activation_bits.end());
    c.search.complexity_penalty = s.number_value("complexity_penalty", 0.0, kHuge, 0.0);
    c.search.normaliser = s.choice("normaliser", {"first-layer", "total"}, std::string("first-layer"));
    c.search.cost = parse_cost(s, relative_to, c.search);
    c.search.arch = parse_arch_settings(s);
    c.search.schedule = parse_schedule(s, Schedule{});
    c.search.retrain = s.bool_value("retrain", true);
    if (c.search.arch.warmup_epochs < 0) c.search.arch.warmup_epochs = c.search.schedule.epochs / 4;
    if (c.search.arch.warmup_epochs >= c.search.schedule.epochs) {
      s.fail("arch_warmup_epochs",
             "fewer warm-up epochs than search epochs (" + std::to_string(c.search.schedule.epochs) + ")");
    }
    s.reject_unknown_keys();
    // The paper preset is the released code, its step table included.
    if (c.search.arch.preset == "paper") c.quantizer_steps = "released";
  } else if (root.has("uniform")) {
    c.mode = TrialMode::uniform;
    auto u = root.object("uniform");
    c.uniform_weight_bits = int(u.int_value("weight_bits", kMinBits, kMaxBits));
    c.uniform_activation_bits = int(u.int_value("activation_bits", kMinBits, kMaxBits));
    u.reject_unknown_keys();
  } else {
    c.mode = TrialMode::allocation;
    c.allocation =
        bit_allocation_from_json(root.raw("allocation"), source + " (at " + pointer + "/allocation)");
    c.allocation_source = source + ": " + pointer + "/allocation";
    if (c.allocation.model != c.model) {
      throw ConfigError(source + ": " + pointer + "/allocation/model: expected \"" + c.model +
                        "\" (the trial's model), found \"" + c.allocation.model + "\"");
    }
  }
  c.quantizer_steps = root.choice("quantizer_steps", {"computed", "released"}, c.quantizer_steps);
  if (root.has("train")) {
    auto t = root.object("train");
    c.train = parse_schedule(t, Schedule{}, 0);
    c.eval_every = int(t.int_value("eval_every", 0, 1 << 20, 0));
    t.reject_unknown_keys();
  }
  return c;
}

nlohmann::json to_json(const TrialConfig& c) {
  nlohmann::json j;
  j["name"] = c.name;
  j["seed"] = c.seed;
  j["threads"] = c.threads;
  j["device"] = c.device;
  // Only when asked for, so one-rank trials keep their IDs.
  if (c.data_parallel_ranks > 1 || c.sync_batch_norm) {
    j["data_parallel"] = {{"ranks", c.data_parallel_ranks}, {"sync_batch_norm", c.sync_batch_norm}};
  }
  // Only when not the default, so trials counted by output size keep their IDs.
  if (c.cost_convention != "output") j["cost_convention"] = c.cost_convention;
  // Only when not computed, or where a paper search would default to released,
  // so the trials of the computed table keep their IDs.
  const bool paper_search = c.mode == TrialMode::search && c.search.arch.preset == "paper";
  if (c.quantizer_steps != "computed" || paper_search) j["quantizer_steps"] = c.quantizer_steps;
  j["dataset"] = {{"name", c.dataset.name},
                  {"path", c.dataset.path},
                  {"train_subset", c.dataset.train_subset},
                  {"test_subset", c.dataset.test_subset},
                  {"subset_seed", c.dataset.subset_seed},
                  {"crop_padding", c.dataset.crop_padding},
                  {"horizontal_flip", c.dataset.horizontal_flip}};
  // Only when asked for, so trials without validation keep their IDs.
  if (c.dataset.validation_subset > 0) j["dataset"]["validation_subset"] = c.dataset.validation_subset;
  if (c.dataset.validation_fraction > 0) j["dataset"]["validation_fraction"] = c.dataset.validation_fraction;
  if (c.dataset.name == "image-folder") {  // only there, so the other datasets' trial IDs stay as they were
    j["dataset"]["image_size"] = c.dataset.image_size;
    j["dataset"]["classes"] = c.dataset.classes;
    j["dataset"]["skip_corrupt"] = c.dataset.skip_corrupt;
    j["dataset"]["loader_threads"] = c.dataset.loader_threads;
  }
  j["model"] = {{"name", c.model},
                {"full_precision_first", c.full_precision_first},
                {"full_precision_last", c.full_precision_last}};
  if (!c.model_onnx.empty()) {  // only there, so built-in models' trial IDs stay as they were
    j["model"]["onnx"] = c.model_onnx;
    j["model"]["onnx_content"] = c.model_onnx_content;
    j["model"]["init"] = c.init;
  }
  switch (c.mode) {
    case TrialMode::search: {
      auto s = schedule_json(c.search.schedule);
      s["weight_bits"] = c.search.weight_bits;
      s["activation_bits"] = c.search.activation_bits;
      s["complexity_penalty"] = c.search.complexity_penalty;
      s["normaliser"] = c.search.normaliser;
      // Only when not today's BitOps, so the BitOps searches keep their IDs.
      if (!c.search.cost.plain_bitops()) s["cost"] = to_json(c.search.cost);
      const auto& a = c.search.arch;
      s["preset"] = a.preset;
      s["arch_optimizer"] = a.optimizer;
      s["arch_lr"] = a.lr;
      s["arch_reference_steps"] = a.reference_steps;
      s["arch_lr_decay"] = a.lr_decay;
      s["arch_weight_decay"] = a.weight_decay;
      s["arch_warmup_epochs"] = a.warmup_epochs;
      s["arch_init"] = a.init;
      s["arch_final_temperature"] = a.final_temperature;
      // Written only when off, so the IDs of ordinary search trials stay as they were.
      if (!c.search.retrain) s["retrain"] = false;
      j["search"] = s;
      break;
    }
    case TrialMode::uniform:
      j["uniform"] = {{"weight_bits", c.uniform_weight_bits}, {"activation_bits", c.uniform_activation_bits}};
      break;
    case TrialMode::allocation:
      j["allocation"] = to_json(c.allocation);
      break;
  }
  j["train"] = schedule_json(c.train);
  // Only when asked for, so trials evaluated once keep their IDs.
  if (c.eval_every > 0) j["train"]["eval_every"] = c.eval_every;
  return j;
}

std::string trial_id(const TrialConfig& config) {
  auto j = to_json(config);
  j.erase("name");
  j.erase("threads");
  j.erase("device");
  // Synchronised statistics compute what one rank computes (up to rounding):
  // those trials share the one-rank ID; per-rank statistics depend on the ranks.
  if (j.contains("data_parallel")) {
    if (config.data_parallel_ranks > 1 && !config.sync_batch_norm)
      j["data_parallel"] = {{"ranks", config.data_parallel_ranks}};
    else
      j.erase("data_parallel");
  }
  if (j["dataset"].contains("loader_threads")) j["dataset"].erase("loader_threads");  // how, not what
  if (j["model"].contains("onnx")) {
    // Where the file is and what it is called (by default its stem), not what it holds.
    j["model"].erase("onnx");
    j["model"].erase("name");
  }
  // A search-only trial computes the same whatever retraining would follow,
  // so probes are shared by budgets and sweeps that retrain differently.
  if (config.mode == TrialMode::search && !config.search.retrain) j.erase("train");
  // Results of an older engine (other model layouts, other search) must never
  // be taken for this one's: the ID hashes the engine's version too.
  j["engine"] = kEngineVersion;
  return stable_id(j.dump());
}

}  // namespace edmips
