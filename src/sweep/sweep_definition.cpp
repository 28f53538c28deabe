#include "sweep/sweep_definition.h"

#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/json_reader.h"
#include "core/stable_id.h"
#include "models/model_names.h"
#include "quant/step_sizes.h"

namespace edmips {
namespace {

// The largest setting accepted: training runs in float, so a larger one
// would pass as a double and overflow in LibTorch.
constexpr double kHuge = double(std::numeric_limits<float>::max());

/// Relative MACs per sample of each model (float, at the dataset's own input
/// size) for longest-first scheduling; only the ordering matters.
double model_weight(const std::string& model) {
  static const std::map<std::string, double> weights = {
      {"simple-cnn", 1.0}, {"resnet20", 3.0},   {"vgg-small", 40.0},    {"resnet18", 40.0},
      {"resnet50", 90.0},  {"googlenet", 35.0}, {"inception_v3", 130.0}};
  auto it = weights.find(model);
  return it == weights.end() ? 1.0 : it->second;
}

double dataset_size(const DatasetConfig& d) {
  const double full = d.name == "cifar10" ? 50000 : 60000;
  return d.train_subset > 0 ? std::min<double>(double(d.train_subset), full) : full;
}

double expected_cost(const TrialConfig& c) {
  // A search step costs about twice a fixed step before the fused kernels.
  double epochs = c.train.epochs;
  if (c.mode == TrialMode::search) epochs += 2.0 * c.search.schedule.epochs;
  return epochs * dataset_size(c.dataset) * model_weight(c.model);
}

std::string join_bits(const std::vector<int>& bits) {
  std::string s;
  for (size_t i = 0; i < bits.size(); ++i) s += (i ? "|" : "") + std::to_string(bits[i]);
  return s;
}

/// The trial ID with the seed set to 0: trials that differ only in their
/// seed share it, so analysis can average seeds per configuration.
std::string configuration_id(const TrialConfig& config) {
  TrialConfig unseeded = config;
  unseeded.seed = 0;
  return trial_id(unseeded);
}

nlohmann::json summarise(const PlannedTrial& t) {
  const auto& c = t.config;
  nlohmann::json s = {{"trial_id", t.id},
                      {"kind", to_string(t.kind)},
                      {"configuration_id", configuration_id(c)},
                      {"model", c.model},
                      {"dataset", c.dataset.name},
                      {"seed", c.seed},
                      {"complexity_penalty", nullptr},
                      {"weight_bits", nullptr},
                      {"activation_bits", nullptr}};
  if (c.mode == TrialMode::search) {
    s["complexity_penalty"] = c.search.complexity_penalty;
    s["weight_bits"] = join_bits(c.search.weight_bits);
    s["activation_bits"] = join_bits(c.search.activation_bits);
    // Only for a cost other than plain BitOps, so other summaries stay as
    // they were: searches under different costs form different fronts.
    if (!c.search.cost.plain_bitops()) s["search_cost"] = short_name(c.search.cost);
  } else if (c.mode == TrialMode::uniform) {
    s["weight_bits"] = std::to_string(c.uniform_weight_bits);
    s["activation_bits"] = std::to_string(c.uniform_activation_bits);
  }
  return s;
}

/// The "budgets" axis as given.
struct BudgetAxis {
  CostMeasure cost = CostMeasure::normalised_bits;
  std::vector<double> values;
  double tolerance = 0.05;
  std::string path;
};

std::string budget_group_id(const std::string& family, CostMeasure cost, const BudgetTarget& target) {
  return stable_id(nlohmann::json{{"budget_family", family},
                                  {"cost", to_string(cost)},
                                  {"value", target.value},
                                  {"tolerance", target.tolerance}}
                       .dump());
}

BudgetGroup make_budget_group(const TrialConfig& search, const BudgetAxis& axis, double value) {
  BudgetGroup g;
  g.retrain = search;
  g.retrain.search.retrain = true;
  g.probe = search;
  g.probe.search.retrain = false;
  g.probe.search.complexity_penalty = 0;
  g.family = trial_id(g.probe);
  TrialConfig unseeded = g.probe;
  unseeded.seed = 0;
  g.siblings = trial_id(unseeded);
  g.cost = axis.cost;
  g.target = {value, axis.tolerance};
  g.id = budget_group_id(g.family, g.cost, g.target);
  PlannedTrial as_trial;
  as_trial.id = g.id;
  as_trial.config = g.retrain;
  as_trial.kind = TrialKind::budget;
  g.summary = summarise(as_trial);
  g.summary.erase("trial_id");
  // Seeds of one budget are one configuration: pareto averages them.
  g.summary["configuration_id"] = budget_group_id(g.siblings, g.cost, g.target);
  g.summary["complexity_penalty"] = nullptr;
  g.summary["budget_group"] = g.id;
  g.summary["budget"] = value;
  g.summary["budget_cost"] = to_string(g.cost);
  g.summary["budget_tolerance"] = axis.tolerance;
  return g;
}

/// One value of an axis, with the JSON path it came from (for errors).
struct AxisValue {
  nlohmann::json value;
  std::string path;
};

/// Sets the value a field axis' pointer names, creating objects on the way.
/// A pointer that passes through a number, a string or a list of the trial
/// config is refused naming the field (`where`) and what it met there.
void set_at(nlohmann::json& target, const std::string& pointer, const nlohmann::json& value,
            const std::string& where) {
  std::vector<std::string> tokens;
  for (size_t start = 1; start <= pointer.size();) {
    const size_t end = std::min(pointer.find('/', start), pointer.size());
    std::string token = pointer.substr(start, end - start);
    for (size_t at = 0; (at = token.find('~', at)) != std::string::npos; ++at) {
      token.replace(at, 2, token.compare(at, 2, "~1") == 0 ? "/" : "~");  // ~1 is '/', ~0 is '~'
    }
    tokens.push_back(token);
    start = end + 1;
  }
  nlohmann::json* node = &target;
  std::string walked;
  for (const auto& token : tokens) {
    if (node->is_null()) *node = nlohmann::json::object();
    if (!node->is_object()) {
      throw ConfigError(where + ": expected a pointer through objects of the trial config, but " +
                        (walked.empty() ? std::string("the config") : walked) + " is " +
                        describe_json(*node));
    }
    walked += "/" + token;
    node = &(*node)[token];
  }
  *node = value;
}

/// The axes of a sweep file as given, each value with its JSON path.
struct SweepAxes {
  std::vector<AxisValue> penalties, bit_sets, seeds, models;
  std::optional<BudgetAxis> budgets;
  std::vector<std::pair<std::string, std::vector<AxisValue>>> fields;  ///< pointer -> values
};

/// /axes/complexity_penalty: a list of numbers >= 0 or a {from, to, num, scale} range.
std::vector<AxisValue> parse_penalty_axis(JsonObjectReader& axes, const std::string& source) {
  std::vector<AxisValue> out;
  const auto& v = axes.raw("complexity_penalty");
  const std::string path = axes.path_of("complexity_penalty");
  if (v.is_array()) {
    if (v.empty()) axes.fail("complexity_penalty", "a non-empty list of numbers >= 0, or a range");
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_number() || v[i].get<double>() < 0 || !std::isfinite(v[i].get<double>())) {
        axes.fail_at(path + "/" + std::to_string(i), "a number >= 0", v[i]);
      }
      out.push_back({v[i], path + "/" + std::to_string(i)});
    }
  } else if (v.is_object()) {
    JsonObjectReader range(v, path, source);
    const double from = range.number_value("from", 0.0, kHuge);
    const double to = range.number_value("to", 0.0, kHuge);
    const int num = int(range.int_value("num", 1, 10000));
    const auto scale = range.choice("scale", {"log", "linear"}, std::string("log"));
    if (scale == "log" && (from <= 0 || to <= 0)) {
      range.fail("from", "numbers > 0 for a log range (use a list to include 0)");
    }
    range.reject_unknown_keys();
    for (double x : expand_range(from, to, num, scale)) out.push_back({x, path});
  } else {
    axes.fail("complexity_penalty", "a list of numbers or a range {\"from\", \"to\", \"num\", \"scale\"}");
  }
  return out;
}

/// /axes/bits: candidate bit sets, {"weights": [...], "activations": [...]} each.
std::vector<AxisValue> parse_bits_axis(JsonObjectReader& axes, const std::string& source) {
  std::vector<AxisValue> out;
  const auto& v = axes.raw("bits");
  const std::string path = axes.path_of("bits");
  if (!v.is_array() || v.empty())
    axes.fail("bits", "a non-empty list of {\"weights\": [...], \"activations\": [...]}");
  for (size_t i = 0; i < v.size(); ++i) {
    JsonObjectReader set(v[i], path + "/" + std::to_string(i), source);
    const auto w = set.int_list("weights", kMinBits, kMaxBits);
    const auto a = set.int_list("activations", kMinBits, kMaxBits);
    set.reject_unknown_keys();
    out.push_back({{{"weights", w}, {"activations", a}}, set.path_of("weights")});
  }
  return out;
}

/// /axes/seeds: integers from 0 to 2^63-1.
std::vector<AxisValue> parse_seeds_axis(JsonObjectReader& axes) {
  std::vector<AxisValue> out;
  const auto& v = axes.raw("seeds");
  const std::string path = axes.path_of("seeds");
  const std::string range = "an integer from 0 to " + std::to_string(std::numeric_limits<int64_t>::max());
  if (!v.is_array() || v.empty()) axes.fail("seeds", "a non-empty list of integers from 0 to 2^63-1");
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer() || v[i].get<long long>() < 0)
      axes.fail_at(path + "/" + std::to_string(i), range, v[i]);
    out.push_back({v[i], path + "/" + std::to_string(i)});
  }
  return out;
}

/// /axes/models: built-in names (with a spelling hint) or whole model objects.
std::vector<AxisValue> parse_models_axis(JsonObjectReader& axes) {
  std::vector<AxisValue> out;
  const auto& v = axes.raw("models");
  const std::string path = axes.path_of("models");
  if (!v.is_array() || v.empty()) axes.fail("models", "a non-empty list of model names or model objects");
  for (size_t i = 0; i < v.size(); ++i) {
    // An object is a whole "model" (an ONNX file, its init, its name); the
    // trial parser checks it, with this path in its message.
    if (v[i].is_object()) {
      out.push_back({v[i], path + "/" + std::to_string(i)});
      continue;
    }
    std::string expected = "one of";
    for (const auto& m : model_names()) expected += " \"" + m + "\"";
    expected += ", or a model object such as {\"onnx\": \"net.onnx\"}";
    if (!v[i].is_string()) axes.fail_at(path + "/" + std::to_string(i), expected, v[i]);
    const auto name = v[i].get<std::string>();
    if (std::find(model_names().begin(), model_names().end(), name) == model_names().end()) {
      if (auto near = closest_spelling(name, model_names())) expected += " (did you mean \"" + *near + "\"?)";
      axes.fail_at(path + "/" + std::to_string(i), expected, v[i]);
    }
    out.push_back({v[i], path + "/" + std::to_string(i)});
  }
  return out;
}

/// /axes/fields: JSON pointers into the trial config, each with its values;
/// a field another axis owns is refused.
std::vector<std::pair<std::string, std::vector<AxisValue>>> parse_fields_axis(JsonObjectReader& axes) {
  std::vector<std::pair<std::string, std::vector<AxisValue>>> out;
  auto f = axes.object("fields");
  const auto& object = axes.raw("fields");
  for (const auto& item : object.items()) {
    const std::string path = f.path_of(item.key());
    if (item.key().empty() || item.key()[0] != '/') {
      f.fail_at(path, "a JSON pointer into the trial config such as \"/train/epochs\"", item.key());
    }
    try {
      nlohmann::json::json_pointer pointer(item.key());
    } catch (const nlohmann::json::exception&) {
      f.fail_at(path, "a valid JSON pointer such as \"/train/epochs\"", item.key());
    }
    // Fields another axis owns would make two axes fight over one value.
    static const std::vector<std::pair<std::string, std::string>> owned = {
        {"/search/complexity_penalty", "complexity_penalty"},
        {"/search/weight_bits", "bits"},
        {"/search/activation_bits", "bits"},
        {"/seed", "seeds"},
        {"/model/name", "models"},
        {"/search", "complexity_penalty and bits"},
        {"/model", "models"}};
    for (const auto& [field, axis] : owned) {
      if (item.key() == field) {
        f.fail_at(path, "a field no other axis owns (" + field + " belongs to the \"" + axis + "\" axis)",
                  item.key());
      }
    }
    if (!item.value().is_array() || item.value().empty())
      f.fail_at(path, "a non-empty list of values", item.value());
    std::vector<AxisValue> values;
    for (size_t i = 0; i < item.value().size(); ++i)
      values.push_back({item.value()[i], path + "/" + std::to_string(i)});
    out.emplace_back(item.key(), values);
  }
  return out;
}

/// /axes/budgets: the cost, its targets and the budget search's settings
/// (into `settings_out`); refused beside a complexity_penalty axis.
BudgetAxis parse_budgets_axis(JsonObjectReader& axes, bool penalties_given,
                              BudgetSearchSettings& settings_out) {
  BudgetAxis out;
  auto b = axes.object("budgets");
  out.path = axes.path_of("budgets");
  out.cost =
      *cost_measure_from_string(b.choice("cost", cost_measure_names(), std::string("normalised_bits")));
  const auto& values = b.raw("values");
  const std::string values_path = b.path_of("values");
  if (!values.is_array() || values.empty()) b.fail("values", "a non-empty list of budgets (numbers > 0)");
  for (size_t i = 0; i < values.size(); ++i) {
    if (!values[i].is_number() || !(values[i].get<double>() > 0) || !std::isfinite(values[i].get<double>())) {
      b.fail_at(values_path + "/" + std::to_string(i), "a budget > 0", values[i]);
    }
    out.values.push_back(values[i].get<double>());
  }
  out.tolerance = b.number_value("tolerance", 1e-6, 0.99, 0.05);
  settings_out.initial_lambda = b.number_value("initial_lambda", 1e-9, 100.0, settings_out.initial_lambda);
  settings_out.max_probes = int(b.int_value("max_probes", 1, 100, settings_out.max_probes));
  settings_out.max_parallel = int(b.int_value("parallel", 1, 16, settings_out.max_parallel));
  b.reject_unknown_keys();
  if (penalties_given) {
    b.fail_at(out.path,
              "either a \"complexity_penalty\" axis or \"budgets\" (the budget search "
              "chooses lambda), not both",
              axes.raw("budgets"));
  }
  return out;
}

SweepAxes parse_axes(JsonObjectReader& root, const std::string& source,
                     BudgetSearchSettings& budget_settings) {
  SweepAxes a;
  if (!root.has("axes")) return a;
  auto axes = root.object("axes");
  if (axes.has("complexity_penalty")) a.penalties = parse_penalty_axis(axes, source);
  if (axes.has("bits")) a.bit_sets = parse_bits_axis(axes, source);
  if (axes.has("seeds")) a.seeds = parse_seeds_axis(axes);
  if (axes.has("models")) a.models = parse_models_axis(axes);
  if (axes.has("fields")) a.fields = parse_fields_axis(axes);
  if (axes.has("budgets")) a.budgets = parse_budgets_axis(axes, !a.penalties.empty(), budget_settings);
  axes.reject_unknown_keys({"complexity_penalty", "bits", "seeds", "models", "fields", "budgets"});
  return a;
}

/// /baselines: uniform [weight_bits, activation_bits] pairs.
std::vector<std::pair<int, int>> parse_baselines(JsonObjectReader& root) {
  std::vector<std::pair<int, int>> out;
  if (!root.has("baselines")) return out;
  const auto& v = root.raw("baselines");
  if (!v.is_array()) root.fail("baselines", "a list of [weight_bits, activation_bits] pairs");
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string path = "/baselines/" + std::to_string(i);
    const auto& pair = v[i];
    const bool ok = pair.is_array() && pair.size() == 2 && pair[0].is_number_integer() &&
                    pair[1].is_number_integer() && pair[0].get<int>() >= kMinBits &&
                    pair[0].get<int>() <= kMaxBits && pair[1].get<int>() >= kMinBits &&
                    pair[1].get<int>() <= kMaxBits;
    if (!ok) root.fail_at(path, "a pair [weight_bits, activation_bits] of integers in [1, 8]", pair);
    out.emplace_back(pair[0].get<int>(), pair[1].get<int>());
  }
  return out;
}

/// Refuses a sweep whose axes multiply past kMaxSweepTrials, before anything
/// is expanded, so a typo such as four axes of 1000 values is an error, not
/// an hour of hashing. A budget counts as its most probes plus its retraining.
void check_product(const SweepAxes& a, size_t baselines, const BudgetSearchSettings& settings,
                   const std::string& source) {
  const double per_bit_set =
      a.budgets ? double(a.budgets->values.size()) * (settings.max_probes + 1) : double(a.penalties.size());
  double product = double(a.models.size()) * double(a.seeds.size()) *
                   (double(a.bit_sets.size()) * per_bit_set + double(baselines));
  for (const auto& field : a.fields) product *= double(field.second.size());
  if (product > kMaxSweepTrials) {
    char count[40];  // a product past 2^63 has no integer to print
    std::snprintf(count, sizeof count, product < 1e15 ? "%.0f" : "about %.3g", product);
    throw ConfigError(
        source + ": /axes: the axes multiply to " + count + " trials; a sweep may hold at most " +
        std::to_string(static_cast<long long>(kMaxSweepTrials)) + " (split it into several sweep files)");
  }
}

/// Every combination of the field axes' values: {pointer: value} objects.
std::vector<nlohmann::json> field_combinations(
    const std::vector<std::pair<std::string, std::vector<AxisValue>>>& fields) {
  std::vector<nlohmann::json> combinations = {nlohmann::json::object()};
  for (const auto& [pointer, values] : fields) {
    std::vector<nlohmann::json> next;
    for (const auto& partial : combinations) {
      for (const auto& v : values) {
        auto c = partial;
        c[pointer] = v.value;
        next.push_back(c);
      }
    }
    combinations = next;
  }

  return combinations;
}

/// The sweep's trials and budget groups: models x fields x seeds x (bit sets
/// x penalties | budgets | baselines), each trial once.
void expand_trials(SweepDefinition& sweep, const nlohmann::json& base, const SweepAxes& axes,
                   const std::vector<std::pair<int, int>>& baselines, const std::string& source,
                   const std::filesystem::path& relative_to) {
  const auto combinations = field_combinations(axes.fields);
  const auto& [penalties, bit_sets, seeds, models, budgets, fields] = axes;
  std::set<std::string> ids, budget_ids;
  auto add_trial = [&](nlohmann::json trial, TrialKind kind, const std::string& origin) {
    const TrialConfig config =
        parse_trial_config(trial, source + " (trial from " + origin + ")", "", relative_to);
    PlannedTrial planned;
    planned.id = trial_id(config);
    if (!ids.insert(planned.id).second) return;  // the same trial twice (e.g. repeated values)
    planned.config = config;
    planned.kind = kind;
    planned.expected_cost = expected_cost(config);
    planned.summary = summarise(planned);
    sweep.trials.push_back(std::move(planned));
  };

  for (const auto& model : models) {
    for (const auto& combination : combinations) {
      for (const auto& seed : seeds) {
        nlohmann::json trial = base;
        if (model.value.is_object()) {
          trial["model"] = model.value;
        } else if (!model.value.is_null()) {
          // A built-in name replaces the base's model, an ONNX file included.
          trial["model"] = {{"name", model.value}};
        }
        trial["seed"] = seed.value;
        std::string origin = model.path + ", " + seed.path;
        for (const auto& item : combination.items()) {
          set_at(trial, item.key(), item.value(), source + ": /axes/fields/" + item.key());
          origin += ", /axes/fields" + item.key();
        }
        for (const auto& bits : bit_sets) {
          if (budgets) {
            nlohmann::json search_trial = trial;
            if (!bits.value.is_null()) {
              search_trial["search"]["weight_bits"] = bits.value["weights"];
              search_trial["search"]["activation_bits"] = bits.value["activations"];
            }
            const TrialConfig config = parse_trial_config(
                search_trial, source + " (budgets from " + origin + ", " + bits.path + ")", "", relative_to);
            if (budgets->cost == CostMeasure::table && config.search.cost.measure != CostBasis::table) {
              throw ConfigError(source + ": " + budgets->path +
                                "/cost: a budget in \"table\" cost needs the "
                                "searches priced in a table (\"search\": {\"cost\": {\"measure\": \"table\", "
                                "\"table\": PATH}}); " +
                                origin + " has none");
            }
            for (double value : budgets->values) {
              auto group = make_budget_group(config, *budgets, value);
              if (budget_ids.insert(group.id).second) sweep.budgets.push_back(std::move(group));
            }
            continue;
          }
          for (const auto& penalty : penalties) {
            nlohmann::json search_trial = trial;
            if (!bits.value.is_null()) {
              search_trial["search"]["weight_bits"] = bits.value["weights"];
              search_trial["search"]["activation_bits"] = bits.value["activations"];
            }
            if (!penalty.value.is_null()) search_trial["search"]["complexity_penalty"] = penalty.value;
            add_trial(search_trial, TrialKind::search, origin + ", " + bits.path + ", " + penalty.path);
          }
        }
        for (size_t i = 0; i < baselines.size(); ++i) {
          nlohmann::json uniform = trial;
          // A paper sweep's baselines quantize with the released step table,
          // as its searches do (the preset that implies it leaves with "search").
          const auto preset = nlohmann::json::json_pointer("/search/preset");
          if (!uniform.contains("quantizer_steps") && uniform.contains(preset) &&
              uniform[preset] == "paper") {
            uniform["quantizer_steps"] = "released";
          }
          uniform.erase("search");
          uniform["uniform"] = {{"weight_bits", baselines[i].first},
                                {"activation_bits", baselines[i].second}};
          add_trial(uniform, TrialKind::uniform, origin + ", /baselines/" + std::to_string(i));
        }
      }
    }
  }
}

}  // namespace

PlannedTrial make_budget_probe(const BudgetGroup& group, double lambda) {
  PlannedTrial t;
  t.config = group.probe;
  t.config.search.complexity_penalty = lambda;
  t.id = trial_id(t.config);
  t.kind = TrialKind::probe;
  t.dynamic = true;
  TrialConfig no_retraining = t.config;
  no_retraining.train.epochs = 0;
  t.expected_cost = expected_cost(no_retraining);
  t.summary = summarise(t);
  t.summary["family"] = group.family;
  t.summary["siblings"] = group.siblings;
  t.summary["budget_group"] = group.id;
  t.summary["budget"] = group.target.value;
  t.summary["budget_cost"] = to_string(group.cost);
  return t;
}

PlannedTrial make_budget_retrain(const BudgetGroup& group, const BitAllocation& allocation, double lambda,
                                 int probes) {
  PlannedTrial t;
  t.config = group.retrain;
  t.config.mode = TrialMode::allocation;
  t.config.allocation = allocation;
  t.id = trial_id(t.config);
  t.kind = TrialKind::budget;
  t.dynamic = true;
  t.expected_cost = expected_cost(t.config);
  t.summary = group.summary;
  t.summary["trial_id"] = t.id;
  t.summary["complexity_penalty"] = lambda;
  t.summary["probes"] = probes;
  return t;
}

std::vector<double> expand_range(double from, double to, int num, const std::string& scale) {
  std::vector<double> out;
  for (int i = 0; i < num; ++i) {
    const double t = num == 1 ? 0.0 : double(i) / double(num - 1);
    out.push_back(scale == "log" ? std::exp(std::log(from) + t * (std::log(to) - std::log(from)))
                                 : from + t * (to - from));
  }
  return out;
}

SweepDefinition parse_sweep(const nlohmann::json& j, const std::string& source,
                            const std::filesystem::path& relative_to) {
  JsonObjectReader root(j, "", source);
  root.reject_unknown_keys(
      {"name", "description", "max_retries", "ranks_per_trial", "slurm", "base", "axes", "baselines"});
  SweepDefinition sweep;
  sweep.source = source;
  sweep.name = root.string_value("name");
  if (sweep.name.empty() || sweep.name == "." || sweep.name == ".." ||
      sweep.name.find_first_of("/\\\n") != std::string::npos) {
    root.fail("name", "a non-empty name without slashes or newlines, not \".\" or \"..\"");
  }
  root.string_value("description", std::string{});
  sweep.max_retries = int(root.int_value("max_retries", 0, 100, 1));
  sweep.ranks_per_trial = int(root.int_value("ranks_per_trial", 1, 4096, 1));
  if (root.has("slurm")) {
    sweep.slurm = root.raw("slurm");
    if (!sweep.slurm.is_object()) root.fail("slurm", "an object");
  }

  // The base trial: everything but the axes. Validated on its own first so
  // its errors point into /base.
  nlohmann::json base = root.has("base") ? root.raw("base") : nlohmann::json::object();
  if (!base.is_object()) root.fail("base", "an object (a trial config)");
  if (base.contains("uniform") || base.contains("allocation")) {
    throw ConfigError(source + ": /base: expected a search trial config; uniform baselines go in /baselines");
  }
  if (!base.contains("search")) base["search"] = nlohmann::json::object();
  if (sweep.ranks_per_trial > 1) {
    if (base.contains("data_parallel") && base["data_parallel"].is_object() &&
        base["data_parallel"].contains("ranks")) {
      throw ConfigError(source + ": /base/data_parallel/ranks: set by /ranks_per_trial; remove it");
    }
    if (!base.contains("data_parallel")) base["data_parallel"] = nlohmann::json::object();
    if (base["data_parallel"].is_object()) base["data_parallel"]["ranks"] = sweep.ranks_per_trial;
  }
  parse_trial_config(base, source, "/base", relative_to);

  auto axes = parse_axes(root, source, sweep.budget_settings);
  if (axes.budgets && base.contains("search") && base["search"].contains("complexity_penalty")) {
    throw ConfigError(source +
                      ": /base/search/complexity_penalty: a sweep with \"budgets\" chooses lambda "
                      "itself; remove it");
  }
  const auto baselines = parse_baselines(root);

  // Cartesian product: models x fields x seeds x (bit sets x penalties | baselines).
  // Without a models axis every trial keeps the base's model as it is.
  if (axes.models.empty()) axes.models.push_back({nullptr, "/base/model"});
  if (axes.seeds.empty()) axes.seeds.push_back({base.value("seed", 0), "/base/seed"});
  if (axes.bit_sets.empty()) axes.bit_sets.push_back({nullptr, "/base/search"});
  if (axes.penalties.empty() && !axes.budgets)
    axes.penalties.push_back({nullptr, "/base/search/complexity_penalty"});
  check_product(axes, baselines.size(), sweep.budget_settings, source);
  expand_trials(sweep, base, axes, baselines, source, relative_to);
  return sweep;
}

SweepDefinition load_sweep_file(const std::string& path) {
  return parse_sweep(load_json_file(path), path, std::filesystem::path(path).parent_path());
}

}  // namespace edmips
