#include "pareto/analysis.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>
#include <tuple>

#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/json_reader.h"
#include "core/number_text.h"
#include "nn/cost_model.h"
#include "nn/precision.h"
#include "sweep/journal.h"

namespace edmips {
namespace fs = std::filesystem;

CostMeasure parse_cost_measure(const std::string& text) {
  if (auto measure = cost_measure_from_string(text)) return *measure;
  throw ConfigError("--cost: expected bitops, normalised_bits, weight_memory_bits, activation_memory_bits or table, "
                    "found \"" + text + "\"");
}

std::string cost_title(CostMeasure measure) {
  switch (measure) {
    case CostMeasure::bitops: return "BitOps";
    case CostMeasure::normalised_bits: return "normalised bits";
    case CostMeasure::weight_memory_bits: return "weight memory bits";
    case CostMeasure::activation_memory_bits: return "activation memory bits";
    case CostMeasure::table: return "table cost";
  }
  return "?";
}

std::string cost_unit(CostMeasure measure, const std::string& table_unit) {
  switch (measure) {
    case CostMeasure::bitops: return "bit-ops";
    case CostMeasure::normalised_bits: return "";
    case CostMeasure::weight_memory_bits:
    case CostMeasure::activation_memory_bits: return "bits";
    case CostMeasure::table: return table_unit;
  }
  return "";
}

std::string to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::better: return "better";
    case Verdict::tie: return "tie";
    case Verdict::worse: return "worse";
  }
  return "?";
}

double Configuration::cost_in(CostMeasure measure) const {
  switch (measure) {
    case CostMeasure::bitops: return bitops_mean;
    case CostMeasure::normalised_bits: return normalised_bits_mean;
    case CostMeasure::weight_memory_bits: return weight_memory_bits_mean;
    case CostMeasure::activation_memory_bits: return activation_memory_bits_mean.value_or(0.0);
    case CostMeasure::table: return table_cost_mean.value_or(0.0);
  }
  return bitops_mean;
}

Uncertainty seed_interval(double mean, double std, size_t n) {
  Uncertainty u;
  if (n < 2) return u;
  const boost::math::students_t t(double(n - 1));
  const double q = boost::math::quantile(boost::math::complement(t, (1 - kConfidence) / 2));
  u.basis = "seeds";
  u.half_width = q * std / std::sqrt(double(n));
  u.low = std::max(0.0, mean - u.half_width);  // an accuracy lies in [0, 100]
  u.high = std::min(100.0, mean + u.half_width);
  return u;
}

Uncertainty binomial_interval(double top1, int64_t images) {
  Uncertainty u;
  if (images <= 0) return u;
  const double z = boost::math::quantile(boost::math::complement(boost::math::normal(), (1 - kConfidence) / 2));
  const double n = double(images), p = std::clamp(top1 / 100.0, 0.0, 1.0), z2 = z * z;
  const double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const double spread = z / (1 + z2 / n) * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  u.basis = "test set";
  u.low = 100 * (centre - spread);
  u.high = 100 * (centre + spread);
  u.half_width = (u.high - u.low) / 2;
  return u;
}

std::filesystem::path trial_directory(const nlohmann::json& trial) {
  return std::filesystem::path(trial.at("source").get<std::string>()) / "trials" / trial.at("id").get<std::string>();
}

namespace {

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

double sample_std(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

std::string group_name(const nlohmann::json& summary) {
  const std::string base = summary.at("model").get<std::string>() + "/" + summary.at("dataset").get<std::string>();
  if (trial_kind_of(summary) == TrialKind::uniform) return base + "/uniform";
  return base + "/w" + summary.at("weight_bits").get<std::string>() + " a" +
         summary.at("activation_bits").get<std::string>() +
         (summary.contains("search_cost") ? " cost " + summary.at("search_cost").get<std::string>() : "");
}

/// "3/3" seeds whose search decided every layer; "-" for baselines or unknown.
std::string decided_text(const Configuration& c) {
  if (c.decided_trials + c.undecided_trials == 0) return "-";
  return std::to_string(c.decided_trials) + "/" + std::to_string(c.decided_trials + c.undecided_trials);
}

std::string label(const Configuration& c) { return configuration_label(c); }

/// The label, marked when a seed's search ended undecided.
std::string flagged_label(const Configuration& c) { return label(c) + (c.undecided() ? " (undecided!)" : ""); }

/// "+- 0.95" for a known interval, "+- ?" without one.
std::string half_width_text(const Uncertainty& u) {
  return u.basis == "none" ? "+- ?" : "+- " + format_number("%.2f", u.half_width);
}

/// "3 seeds", "test set (10000)" or "1 seed, unknown".
std::string basis_text(const Configuration& c) {
  const auto& u = c.top1_interval;
  if (u.basis == "seeds") return std::to_string(c.trials.size()) + " seeds, std " + format_number("%.2f", c.top1_std);
  if (u.basis == "test set") return "1 seed; test set of " + std::to_string(*c.test_images);
  return "1 seed; test-set size unknown";
}

/// Escapes what GitHub-flavoured Markdown reads as a table's cell boundary.
std::string markdown_cell(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '|') out += "\\|";
    else out += ch;
  }
  return out;
}

/// A table with headers, as GitHub-flavoured Markdown (cells escaped) or as
/// aligned console columns. `right` marks numeric columns.
std::string render_table(const std::vector<std::string>& headers, const std::vector<bool>& right,
                         const std::vector<std::vector<std::string>>& rows, bool markdown) {
  std::ostringstream out;
  if (markdown) {
    out << "|";
    for (const auto& h : headers) out << " " << markdown_cell(h) << " |";
    out << "\n|";
    for (size_t i = 0; i < headers.size(); ++i) out << (right[i] ? "---:|" : "---|");
    out << "\n";
    for (const auto& row : rows) {
      out << "|";
      for (const auto& cell : row) out << " " << markdown_cell(cell) << " |";
      out << "\n";
    }
    return out.str();
  }
  std::vector<size_t> width(headers.size());
  for (size_t i = 0; i < headers.size(); ++i) width[i] = headers[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text = " ";
    for (size_t i = 0; i < cells.size(); ++i) {
      const std::string pad(width[i] - std::min(width[i], cells[i].size()), ' ');
      text += " " + (right[i] ? pad + cells[i] : cells[i] + pad);
      if (i + 1 < cells.size()) text += " ";
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text + "\n";
  };
  out << line(headers);
  for (const auto& row : rows) out << line(row);
  return out.str();
}

/// A cost for a table: BitOps and weight bits in %.3g, normalised bits in %.3f.
std::string cost_text(CostMeasure measure, double value) {
  return measure == CostMeasure::normalised_bits ? format_number("%.3f", value) : format_number("%.3g", value);
}

/// "12% less BitOps than W2A2", "the same BitOps as W2A2" (without `than`: no comparison named).
std::string relative_cost_text(CostMeasure measure, double cost, double reference, const std::string& than = "") {
  if (reference <= 0) return "";
  const double change = 100 * (cost / reference - 1);
  if (std::fabs(change) < 0.5) return "the same " + cost_title(measure) + (than.empty() ? "" : " as " + than);
  return format_number("%.0f", std::fabs(change)) + "% " + (change < 0 ? "less " : "more ") + cost_title(measure) +
         (than.empty() ? "" : " than " + than);
}

}  // namespace

std::string cost_label(const ParetoReport& r) {
  return cost_title(r.cost) + (r.cost_unit.empty() ? "" : " (" + r.cost_unit + ")");
}

namespace {

/// Adds one finished trial (a journal event) to its configuration.
/// The trial's cost in `table`: its quantized layers, as its result.json in
/// the sweep's trials/ folder records them, priced layer by layer.
double table_cost_of(const CostModel& table, const nlohmann::json& trial) {
  const auto path = (trial_directory(trial) / "result.json").string();
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw DataError(path + ": missing; --cost-table prices each trial's layers from its result.json");
  }
  const auto result = load_json_file(path);
  if (!result.contains("layers")) throw DataError(path + ": no \"layers\" to price in the cost table");
  return total_cost(table, quantized_layers_of(result.at("layers"), path));
}

void add_finished_trial(ParetoReport& report, std::map<std::string, size_t>& by_configuration, const fs::path& dir,
                        const std::string& id, const nlohmann::json& event, bool best_epoch,
                        const CostModel* table) {
  const auto& summary = event.at("summary");
  const auto& result = event.at("result");
  if (result.at("top1").is_null()) {  // a budget's search-only probe: no accuracy, no point
    ++report.probes;
    return;
  }
  const std::string configuration_id = summary.value("configuration_id", id);
  auto [it, inserted] = by_configuration.emplace(configuration_id, report.configurations.size());
  if (inserted) {
    Configuration c;
    c.configuration_id = configuration_id;
    c.group = group_name(summary);
    const auto kind = trial_kind_of(summary);
    if (!kind) {
      throw IoError((dir / sweep_files::journal).string() + ": trial " + id + ": summary/kind: expected search, " +
                    "uniform, probe or budget, found " + summary.value("kind", nlohmann::json()).dump());
    }
    c.kind = *kind;
    c.model = summary.at("model");
    c.dataset = summary.at("dataset");
    c.weight_bits = summary.at("weight_bits");
    c.activation_bits = summary.at("activation_bits");
    if (!summary.at("complexity_penalty").is_null()) c.complexity_penalty = summary.at("complexity_penalty");
    if (summary.contains("budget")) {
      c.budget = summary.at("budget").get<double>();
      c.budget_cost = summary.value("budget_cost", "");
    }
    report.configurations.push_back(c);
  }
  auto& c = report.configurations[it->second];
  const auto same = std::find_if(c.trials.begin(), c.trials.end(),
                                 [&](const nlohmann::json& t) { return t.at("id") == id; });
  if (same != c.trials.end()) {
    // The same trial in two directories counts once, when both agree. A
    // trial is deterministic for its config, so differing results mean
    // different engines or a damaged file: no silent pick.
    if ((*same).at("final_top1") != result.at("top1") || (*same).at("bitops") != result.at("bitops")) {
      throw DataError("trial " + id + " has different results in " + (*same).at("source").get<std::string>() +
                      " (top-1 " + (*same).at("final_top1").dump() + ") and " + dir.string() + " (top-1 " +
                      result.at("top1").dump() + "); analyse them separately");
    }
    return;
  }
  // The released protocol's figure when asked for and recorded: the best
  // epoch on the test set (optimistic: the epoch is chosen on it).
  const auto best = result.value("best_epoch", nlohmann::json());
  const bool use_best = best_epoch && best.is_object() && best.value("top1", nlohmann::json()).is_number();
  if (best_epoch && !use_best) ++report.without_best_epoch;
  nlohmann::json trial = {{"id", id},
                          {"seed", summary.at("seed")},
                          {"top1", use_best ? best.at("top1") : result.at("top1")},
                          {"final_top1", result.at("top1")},
                          {"bitops", result.at("bitops")},
                          {"normalised_bits", result.at("normalised_bits")},
                          {"weight_memory_bits", result.at("weight_memory_bits")},
                          {"allocation", result.at("allocation")},
                          {"source", dir.string()}};
  if (summary.contains("probes")) trial["probes"] = summary.at("probes");
  if (result.contains("activation_memory_bits")) trial["activation_memory_bits"] = result.at("activation_memory_bits");
  if (table) {
    trial["table_cost"] = table_cost_of(*table, trial);
  } else if (result.contains("table_cost")) {
    const auto unit = result.value("table_unit", std::string());
    if (!report.cost_unit.empty() && report.cost == CostMeasure::table && unit != report.cost_unit) {
      throw DataError("trial " + id + " in " + dir.string() + " is priced in " + unit + ", another in " +
                      report.cost_unit + "; give --cost-table FILE to price every trial in one table");
    }
    if (report.cost == CostMeasure::table) report.cost_unit = unit;
    trial["table_cost"] = result.at("table_cost");
  }
  if (result.contains("test_images")) trial["test_images"] = result.at("test_images");
  if (result.contains("validation_top1") && result.at("validation_top1").is_number()) {
    trial["validation_top1"] = result.at("validation_top1");
    trial["validation_images"] = result.value("validation_images", nlohmann::json());
  }
  if (result.contains("search")) {
    const auto& search = result["search"];
    trial["expected_normalised_bits"] = search.value("expected_normalised_bits", 0.0);
    if (search.contains("decision")) {
      const auto& decision = search["decision"];
      trial["decided_layers"] = decision.at("decided_layers");
      trial["searched_layers"] = decision.at("searched_layers");
      trial["smallest_margin"] = decision.at("smallest_margin");
      for (const char* key : {"smallest_margin_at_temperature_1", "arch_steps", "last_change_step", "flips"}) {
        if (decision.contains(key)) trial[key] = decision.at(key);
      }
      (decision.at("decided").get<bool>() ? c.decided_trials : c.undecided_trials) += 1;
    }
  }
  c.trials.push_back(trial);
  ++report.trials;
}

/// Adds one budget's latest decision (and its retraining's accuracy, once finished).
void add_budget(ParetoReport& report, const fs::path& dir, const JournalState& state, const nlohmann::json& e) {
  const auto& s = e.at("summary");
  BudgetResult b;
  b.group = e.at("group");
  b.configuration_id = s.value("configuration_id", b.group);
  b.source = dir.string();
  b.model = s.at("model");
  b.dataset = s.at("dataset");
  b.weight_bits = s.at("weight_bits");
  b.activation_bits = s.at("activation_bits");
  b.seed = s.at("seed");
  b.cost = e.at("cost");
  b.budget = e.at("budget");
  b.tolerance = e.at("tolerance");
  b.state = e.at("state");
  b.reason = e.value("reason", "");
  b.own_probes = e.value("own_probes", 0);
  b.family_probes = e.value("family_probes", 0);
  b.lambda = decided_complexity_penalty(e);
  if (e.contains("chosen_cost")) b.chosen_cost = e.at("chosen_cost").get<double>();
  if (e.contains("allocation")) b.allocation = allocation_text(e.at("allocation"));
  b.retrain = e.value("retrain", "");
  const auto retrained = state.finished.find(b.retrain);
  if (retrained != state.finished.end() && retrained->second.at("result").at("top1").is_number()) {
    b.top1 = retrained->second.at("result").at("top1").get<double>();
  }
  report.budgets.push_back(b);
}

}  // namespace

std::string configuration_label(const Configuration& c) {
  if (c.kind == TrialKind::uniform) return "W" + c.weight_bits + "A" + c.activation_bits;
  if (c.kind == TrialKind::budget) return "budget " + short_number(c.budget.value_or(0)) + " " + c.budget_cost;
  return "lambda " + format_number("%g", c.complexity_penalty.value_or(0));
}

std::string accuracy_text(const Configuration& c) {
  const auto& u = c.top1_interval;
  if (u.basis == "none") return format_number("%.2f", c.top1_mean) + " (1 seed; uncertainty unknown: no test-set size recorded)";
  return format_number("%.2f", c.top1_mean) + " +- " + format_number("%.2f", u.half_width) + " (95% interval; " + basis_text(c) + ")";
}

namespace {

/// Index of the configuration's trial with the lowest seed.
size_t first_seed(const Configuration& c) {
  size_t first = 0;
  for (size_t t = 1; t < c.trials.size(); ++t) {
    if (c.trials[t].at("seed").get<uint64_t>() < c.trials[first].at("seed").get<uint64_t>()) first = t;
  }
  return first;
}

/// The smallest of the trials' integer `key`, when every trial records one.
std::optional<int64_t> smallest_count(const std::vector<nlohmann::json>& trials, const char* key) {
  std::optional<int64_t> smallest;
  for (const auto& t : trials) {
    if (!t.contains(key) || !t.at(key).is_number_integer()) return std::nullopt;
    const int64_t n = t.at(key);
    smallest = smallest ? std::min(*smallest, n) : n;
  }
  return smallest;
}

/// A configuration's 95% interval: over its seeds when it has two or more,
/// else over its one seed's images (none when their number is unknown).
Uncertainty accuracy_interval(double mean, double std, size_t seeds, std::optional<int64_t> images) {
  if (seeds >= 2) return seed_interval(mean, std, seeds);
  return images ? binomial_interval(mean, *images) : Uncertainty{};
}

/// Half-width of a difference of two independent estimates' 95% intervals.
double combined_half_width(const Uncertainty& a, const Uncertainty& b) {
  return std::sqrt(a.half_width * a.half_width + b.half_width * b.half_width);
}

/// "+- 1.16" for a gain with a known interval, "+- ?" without one.
std::string gain_half_width_text(const Dominance& d) {
  return d.gain_half_width > 0 ? "+- " + format_number("%.2f", d.gain_half_width) : "+- ?";
}

/// Better, tie or worse: a difference inside its uncertainty is a tie.
Verdict verdict_of(double gain, double half_width) {
  if (std::fabs(gain) <= half_width) return Verdict::tie;
  return gain > 0 ? Verdict::better : Verdict::worse;
}

/// The most accurate candidate (seed means; ties by lower cost), and the
/// cheapest candidate statistically tied with it when that is a different one.
void choose(const ParetoReport& r, const std::vector<size_t>& candidates, CostMeasure measure, Recommendation& rec) {
  auto better = [&](size_t a, size_t b) {
    const auto &x = r.configurations[a], &y = r.configurations[b];
    return x.selection_top1 > y.selection_top1 ||
           (x.selection_top1 == y.selection_top1 && x.cost_in(measure) < y.cost_in(measure));
  };
  rec.chosen = candidates.front();
  for (size_t i : candidates) {
    if (better(i, rec.chosen)) rec.chosen = i;
  }
  const auto& best = r.configurations[rec.chosen];
  for (size_t i : candidates) {
    const auto& c = r.configurations[i];
    if (best.selection_top1 - c.selection_top1 > combined_half_width(best.selection_interval, c.selection_interval)) {
      continue;
    }
    if (c.cost_in(measure) >= best.cost_in(measure)) continue;
    if (!rec.cheaper_tie || c.cost_in(measure) < r.configurations[*rec.cheaper_tie].cost_in(measure)) rec.cheaper_tie = i;
  }
  rec.trial = first_seed(best);
  rec.why = "the most accurate trained network (seed mean) at no more than " + rec.limit + ".";
  if (rec.cheaper_tie) {
    const auto& c = r.configurations[*rec.cheaper_tie];
    rec.why += " " + configuration_label(c) + " (" + format_number("%.2f", c.selection_top1) + ", " +
               relative_cost_text(measure, c.cost_in(measure), best.cost_in(measure)) +
               ") is statistically tied with it: the data cannot tell the two apart.";
  }
}

/// Every trained configuration of `model` and `dataset` in the mixed group or uniform.
std::vector<size_t> candidates_under(const ParetoReport& r, const Group& mixed, CostMeasure measure, double limit) {
  std::vector<size_t> out;
  for (size_t i = 0; i < r.configurations.size(); ++i) {
    const auto& c = r.configurations[i];
    if (c.model != mixed.model || c.dataset != mixed.dataset) continue;
    if (c.group != mixed.name && c.kind != TrialKind::uniform) continue;
    if (c.cost_in(measure) <= limit * (1 + 1e-12)) out.push_back(i);
  }
  return out;
}

}  // namespace

std::string comparison_text(const ParetoReport& r, const Dominance& d) {
  const auto& base = r.configurations[d.baseline];
  if (!d.best_mixed || !d.accuracy_gain || !d.verdict) {
    return "no trained mixed network at or below " + label(base) + "'s " + cost_title(r.cost);
  }
  const auto& mixed = r.configurations[*d.best_mixed];
  const std::string words = *d.verdict == Verdict::better ? "better than "
                            : *d.verdict == Verdict::worse ? "worse than "
                                                           : "tie with ";
  return words + label(base) + ": " + format_number("%+.2f", *d.accuracy_gain) + " " + gain_half_width_text(d) +
         " top-1 points (" +
         flagged_label(mixed) + ", " + relative_cost_text(r.cost, mixed.cost, base.cost) + ")";
}

namespace {

/// Reads every finished trial and decided budget of the sweeps' journals
/// into configurations (seeds of one configuration together).
void read_sweeps(ParetoReport& report, const ParetoOptions& options) {
  std::map<std::string, size_t> by_configuration;
  std::unique_ptr<CostModel> table;
  if (!options.cost_table.empty()) {
    table = std::make_unique<CostModel>();
    table->measure = CostBasis::table;
    table->table = read_cost_table(options.cost_table);
    if (options.cost == CostMeasure::table) report.cost_unit = table->table->unit;
  }
  for (const auto& dir : options.directories) {
    const auto journal = dir / sweep_files::journal;
    if (!fs::exists(journal)) {
      throw ConfigError(dir.string() + ": no " + sweep_files::journal + " (not a sweep output directory)");
    }
    report.sources.push_back(dir.string());
    const auto state = read_journal(journal);  // a torn last line of a running sweep is skipped
    for (const auto& [id, event] : state.finished) {
      try {
        add_finished_trial(report, by_configuration, dir, id, event, options.best_epoch, table.get());
      } catch (const nlohmann::json::exception& e) {
        throw DataError(journal.string() + ": the trial_finished event of trial " + id +
                        " lacks what a finished trial records (" + e.what() + ")");
      }
    }
    for (const auto& [group, event] : state.budgets) {
      try {
        add_budget(report, dir, state, event);
      } catch (const nlohmann::json::exception& e) {
        throw DataError(journal.string() + ": the budget_decided event of budget " + group +
                        " lacks what a decision records (" + e.what() + ")");
      }
    }
  }
  std::sort(report.budgets.begin(), report.budgets.end(), [](const BudgetResult& a, const BudgetResult& b) {
    return std::tie(a.cost, a.budget, a.model, a.weight_bits, a.activation_bits, a.seed, a.source) <
           std::tie(b.cost, b.budget, b.model, b.weight_bits, b.activation_bits, b.seed, b.source);
  });
  if (report.configurations.empty()) {
    throw ConfigError("pareto: no finished trials yet in the given directories" +
                      std::string(report.probes ? " (only budget probes, which are not evaluated)" : ""));
  }
}

/// Each configuration's means over its seeds, its uncertainty, its cost in
/// `cost`, and the accuracy that selects (validation when every
/// configuration has it, else test).
void summarise_configurations(ParetoReport& report, CostMeasure cost) {
  for (auto& c : report.configurations) {
    std::vector<double> top1, bitops, bits, memory, activation_memory, table_costs, expected, probes, settled,
        validation;
    for (const auto& t : c.trials) {
      top1.push_back(t.at("top1"));
      bitops.push_back(t.at("bitops"));
      bits.push_back(t.at("normalised_bits"));
      memory.push_back(t.at("weight_memory_bits"));
      if (t.contains("activation_memory_bits")) activation_memory.push_back(t.at("activation_memory_bits"));
      if (t.contains("table_cost")) table_costs.push_back(t.at("table_cost"));
      if (t.contains("expected_normalised_bits")) expected.push_back(t.at("expected_normalised_bits"));
      if (t.contains("probes")) probes.push_back(t.at("probes"));
      if (t.contains("arch_steps") && t.at("arch_steps").get<double>() > 0) {
        settled.push_back(t.at("last_change_step").get<double>() / t.at("arch_steps").get<double>());
      }
      if (t.contains("validation_top1")) validation.push_back(t.at("validation_top1"));
    }
    if (!probes.empty()) c.probes_mean = mean(probes);
    if (!settled.empty()) c.settled_fraction_mean = mean(settled);
    c.top1_mean = mean(top1);
    c.top1_std = sample_std(top1);
    c.bitops_mean = mean(bitops);
    c.normalised_bits_mean = mean(bits);
    c.weight_memory_bits_mean = mean(memory);
    if (activation_memory.size() == c.trials.size()) c.activation_memory_bits_mean = mean(activation_memory);
    if (table_costs.size() == c.trials.size()) c.table_cost_mean = mean(table_costs);
    const bool has_cost = cost == CostMeasure::activation_memory_bits ? bool(c.activation_memory_bits_mean)
                          : cost == CostMeasure::table              ? bool(c.table_cost_mean)
                                                                    : true;
    if (!has_cost) {
      const std::string why = cost == CostMeasure::table
                                  ? " (only searches under a cost table record one: give --cost-table FILE to "
                                    "price every trial in the same table)"
                                  : " (results written before it was recorded: run them again)";
      throw DataError("--cost " + to_string(cost) + ": configuration " + label(c) + " (" + c.model +
                      ") has a seed without a " + cost_title(cost) + why);
    }
    if (!expected.empty()) c.expected_normalised_bits_mean = mean(expected);
    c.test_images = smallest_count(c.trials, "test_images");
    c.top1_interval = accuracy_interval(c.top1_mean, c.top1_std, c.trials.size(), c.test_images);
    if (validation.size() == c.trials.size()) {  // every seed, or the configuration has no validation accuracy
      c.validation_top1_mean = mean(validation);
      c.validation_top1_std = sample_std(validation);
      c.validation_images = smallest_count(c.trials, "validation_images");
    }
    c.cost = c.cost_in(cost);
    for (auto& t : c.trials) t["cost"] = t.at(cost_result_key(cost));
  }
  report.select_on_validation = std::all_of(report.configurations.begin(), report.configurations.end(),
                                            [](const Configuration& c) { return c.validation_top1_mean.has_value(); });
  for (auto& c : report.configurations) {
    c.selection_top1 = report.select_on_validation ? *c.validation_top1_mean : c.top1_mean;
    c.selection_interval = report.select_on_validation ? accuracy_interval(c.selection_top1, c.validation_top1_std,
                                                                           c.trials.size(), c.validation_images)
                                                       : c.top1_interval;
  }
}

/// One reference point for every group, so hypervolumes compare: the
/// user's, or 1.1 x the largest cost and the lowest selection accuracy.
void set_reference(ParetoReport& report, const ParetoOptions& options) {
  if (options.reference) {
    report.reference = *options.reference;
  } else {
    double max_cost = 0, min_accuracy = 1e300;
    for (const auto& c : report.configurations) {
      max_cost = std::max(max_cost, c.cost);
      min_accuracy = std::min(min_accuracy, c.selection_top1);
    }
    report.reference = {1.1 * max_cost, min_accuracy};
  }
}

/// Groups (a uniform one, and one per mixed family), their fronts and
/// hypervolumes.
void build_fronts(ParetoReport& report) {
  std::map<std::string, size_t> group_index;
  for (size_t i = 0; i < report.configurations.size(); ++i) {
    const auto& c = report.configurations[i];
    auto [it, inserted] = group_index.emplace(c.group, report.groups.size());
    // A mixed group ("search") holds lambda-axis searches and budget results alike.
    const bool uniform = c.kind == TrialKind::uniform;
    if (inserted) report.groups.push_back({c.group, uniform ? TrialKind::uniform : TrialKind::search, c.model, c.dataset,
                                           uniform ? "" : c.weight_bits, uniform ? "" : c.activation_bits, {}, {}, 0});
    report.groups[it->second].configurations.push_back(i);
  }
  for (auto& g : report.groups) {
    std::vector<ParetoPoint> points;
    for (size_t i : g.configurations) {
      points.push_back({report.configurations[i].cost, report.configurations[i].selection_top1});
    }
    for (size_t k : pareto_front(points)) {
      g.front.push_back(g.configurations[k]);
      report.configurations[g.configurations[k]].on_front = true;
    }
    g.hypervolume = hypervolume(points, report.reference);
  }
}

/// Every uniform baseline against every mixed group of its model and
/// dataset, in the chosen cost, with a recommendation at the baseline's cost;
/// mixed group by mixed group, cheapest baseline first.
void compare_with_baselines(ParetoReport& report) {
  // Dominance: every uniform baseline against every mixed group of its model
  // and dataset, in the chosen cost.
  for (const auto& baseline_group : report.groups) {
    if (baseline_group.kind != TrialKind::uniform) continue;
    for (size_t b : baseline_group.configurations) {
      const auto& base = report.configurations[b];
      for (const auto& mixed : report.groups) {
        if (mixed.kind == TrialKind::uniform || mixed.model != base.model || mixed.dataset != base.dataset) continue;
        Dominance d{b, mixed.name, std::nullopt, std::nullopt, std::nullopt, 0, std::nullopt, std::nullopt, std::nullopt};
        for (size_t m : mixed.configurations) {
          const auto& c = report.configurations[m];
          if (c.cost > base.cost) continue;
          if (!d.best_mixed || c.selection_top1 > report.configurations[*d.best_mixed].selection_top1) d.best_mixed = m;
        }
        if (d.best_mixed) {
          const auto& best = report.configurations[*d.best_mixed];
          d.accuracy_gain = best.top1_mean - base.top1_mean;
          if (report.select_on_validation) d.validation_gain = best.selection_top1 - base.selection_top1;
          d.gain_half_width = combined_half_width(best.top1_interval, base.top1_interval);
          d.verdict = verdict_of(*d.accuracy_gain, d.gain_half_width);
        }
        std::vector<ParetoPoint> front;
        for (size_t m : mixed.front) {
          front.push_back({report.configurations[m].cost, report.configurations[m].selection_top1});
        }
        double accuracy = 0;
        if (interpolate_front(front, base.cost, accuracy)) {
          d.front_accuracy_at_baseline = accuracy;
          d.front_gain = accuracy - base.selection_top1;
        }
        report.dominance.push_back(d);

        Recommendation rec;
        rec.limit = label(base) + "'s " + cost_title(report.cost);
        rec.mixed_group = mixed.name;
        rec.baseline = b;
        rec.limit_cost = base.cost;
        rec.limit_measure = report.cost;
        choose(report, candidates_under(report, mixed, report.cost, base.cost), report.cost, rec);
        report.recommendations.push_back(rec);
      }
    }
  }
  // Mixed group by mixed group, cheapest baseline first.
  auto by_baseline_cost = [&](std::optional<size_t> a, const std::string& ga, std::optional<size_t> b,
                              const std::string& gb) {
    const double ca = a ? report.configurations[*a].cost : 0, cb = b ? report.configurations[*b].cost : 0;
    return std::tie(ga, ca) < std::tie(gb, cb);
  };
  std::stable_sort(report.dominance.begin(), report.dominance.end(), [&](const Dominance& a, const Dominance& b) {
    return by_baseline_cost(a.baseline, a.mixed_group, b.baseline, b.mixed_group);
  });
  std::stable_sort(report.recommendations.begin(), report.recommendations.end(),
                   [&](const Recommendation& a, const Recommendation& b) {
                     return by_baseline_cost(a.baseline, a.mixed_group, b.baseline, b.mixed_group);
                   });
}

/// A recommendation per budget of each mixed group: the budget's own measure
/// is the limit.
void recommend_budgets(ParetoReport& report) {
  for (const auto& mixed : report.groups) {
    if (mixed.kind == TrialKind::uniform) continue;
    std::map<std::pair<std::string, double>, bool> seen;
    for (size_t i : mixed.configurations) {
      const auto& c = report.configurations[i];
      if (c.kind != TrialKind::budget || !c.budget || !seen.emplace(std::make_pair(c.budget_cost, *c.budget), true).second) {
        continue;
      }
      CostMeasure measure;
      try {
        measure = parse_cost_measure(c.budget_cost);
      } catch (const ConfigError&) {
        continue;  // a measure this report cannot read back
      }
      const auto candidates = candidates_under(report, mixed, measure, *c.budget);
      if (candidates.empty()) continue;
      Recommendation rec;
      rec.limit = "budget " + cost_text(measure, *c.budget) + " " + cost_title(measure);
      rec.mixed_group = mixed.name;
      rec.limit_cost = *c.budget;
      rec.limit_measure = measure;
      choose(report, candidates, measure, rec);
      report.recommendations.push_back(rec);
    }
  }
}

}  // namespace

ParetoReport analyse_sweeps(const ParetoOptions& options) {
  if (options.directories.empty()) throw ConfigError("pareto: give at least one sweep directory");
  ParetoReport report;
  report.cost = options.cost;
  report.cost_unit = cost_unit(options.cost, "");
  report.cost_table = options.cost_table;
  report.best_epoch = options.best_epoch;
  read_sweeps(report, options);
  summarise_configurations(report, options.cost);
  set_reference(report, options);
  build_fronts(report);
  compare_with_baselines(report);
  recommend_budgets(report);
  return report;
}

nlohmann::json to_json(const ParetoReport& r) {
  auto optional = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  nlohmann::json configurations = nlohmann::json::array();
  for (const auto& c : r.configurations) {
    configurations.push_back({{"configuration_id", c.configuration_id},
                              {"group", c.group},
                              {"kind", to_string(c.kind)},
                              {"model", c.model},
                              {"dataset", c.dataset},
                              {"weight_bits", c.weight_bits},
                              {"activation_bits", c.activation_bits},
                              {"complexity_penalty", optional(c.complexity_penalty)},
                              {"seeds", c.trials.size()},
                              {"top1_mean", c.top1_mean},
                              {"top1_std", c.top1_std},
                              {"validation_top1_mean", optional(c.validation_top1_mean)},
                              {"validation_top1_std", c.validation_top1_mean ? nlohmann::json(c.validation_top1_std)
                                                                             : nlohmann::json()},
                              {"top1_interval", {{"basis", c.top1_interval.basis},
                                                 {"confidence", kConfidence},
                                                 {"low", c.top1_interval.low},
                                                 {"high", c.top1_interval.high},
                                                 {"half_width", c.top1_interval.half_width}}},
                              {"test_images", c.test_images ? nlohmann::json(*c.test_images) : nlohmann::json()},
                              {"label", label(c)},
                              {"bitops_mean", c.bitops_mean},
                              {"normalised_bits_mean", c.normalised_bits_mean},
                              {"expected_normalised_bits_mean", optional(c.expected_normalised_bits_mean)},
                              {"settled_fraction_mean", optional(c.settled_fraction_mean)},
                              {"weight_memory_bits_mean", c.weight_memory_bits_mean},
                              {"activation_memory_bits_mean", optional(c.activation_memory_bits_mean)},
                              {"table_cost_mean", optional(c.table_cost_mean)},
                              {"cost", c.cost},
                              {"on_front", c.on_front},
                              {"decided_trials", c.decided_trials},
                              {"undecided_trials", c.undecided_trials},
                              {"budget", optional(c.budget)},
                              {"budget_cost", c.budget ? nlohmann::json(c.budget_cost) : nlohmann::json()},
                              {"probes_mean", optional(c.probes_mean)},
                              {"trials", c.trials}});
  }
  nlohmann::json budgets = nlohmann::json::array();
  for (const auto& b : r.budgets) {
    budgets.push_back({{"group", b.group}, {"configuration_id", b.configuration_id}, {"source", b.source},
                       {"model", b.model}, {"dataset", b.dataset}, {"weight_bits", b.weight_bits},
                       {"activation_bits", b.activation_bits}, {"seed", b.seed}, {"cost", b.cost},
                       {"budget", b.budget}, {"tolerance", b.tolerance}, {"state", b.state}, {"reason", b.reason},
                       {"complexity_penalty", optional(b.lambda)}, {"chosen_cost", optional(b.chosen_cost)},
                       {"own_probes", b.own_probes}, {"family_probes", b.family_probes},
                       {"retrain", b.retrain.empty() ? nlohmann::json() : nlohmann::json(b.retrain)},
                       {"top1", optional(b.top1)}, {"allocation", b.allocation}});
  }
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : r.groups) {
    nlohmann::json members = nlohmann::json::array(), front = nlohmann::json::array();
    for (size_t i : g.configurations) members.push_back(r.configurations[i].configuration_id);
    for (size_t i : g.front) front.push_back(r.configurations[i].configuration_id);
    groups.push_back({{"name", g.name}, {"kind", to_string(g.kind)}, {"model", g.model}, {"dataset", g.dataset},
                      {"weight_bits", g.weight_bits}, {"activation_bits", g.activation_bits},
                      {"configurations", members}, {"front", front}, {"hypervolume", g.hypervolume}});
  }
  nlohmann::json dominance = nlohmann::json::array();
  for (const auto& d : r.dominance) {
    const auto& base = r.configurations[d.baseline];
    dominance.push_back(
        {{"baseline", base.configuration_id},
         {"baseline_label", label(base)},
         {"baseline_top1", base.top1_mean},
         {"baseline_bitops", base.bitops_mean},
         {"baseline_cost", base.cost},
         {"mixed_group", d.mixed_group},
         {"best_mixed", d.best_mixed ? nlohmann::json(r.configurations[*d.best_mixed].configuration_id) : nlohmann::json()},
         {"best_mixed_label", d.best_mixed ? nlohmann::json(label(r.configurations[*d.best_mixed])) : nlohmann::json()},
         {"best_mixed_top1", d.best_mixed ? nlohmann::json(r.configurations[*d.best_mixed].top1_mean) : nlohmann::json()},
         {"best_mixed_bitops", d.best_mixed ? nlohmann::json(r.configurations[*d.best_mixed].bitops_mean) : nlohmann::json()},
         {"best_mixed_cost", d.best_mixed ? nlohmann::json(r.configurations[*d.best_mixed].cost) : nlohmann::json()},
         {"accuracy_gain", optional(d.accuracy_gain)},
         {"validation_gain", optional(d.validation_gain)},
         {"gain_half_width", d.gain_half_width},
         {"verdict", d.verdict ? nlohmann::json(to_string(*d.verdict)) : nlohmann::json()},
         {"comparison", comparison_text(r, d)},
         {"front_top1_at_baseline_cost", optional(d.front_accuracy_at_baseline)},
         {"front_gain", optional(d.front_gain)}});
  }
  nlohmann::json recommendations = nlohmann::json::array();
  for (const auto& rec : r.recommendations) {
    const auto& c = r.configurations[rec.chosen];
    const auto& t = c.trials[rec.trial];
    recommendations.push_back({{"limit", rec.limit},
                               {"mixed_group", rec.mixed_group},
                               {"limit_cost", rec.limit_cost},
                               {"limit_measure", to_string(rec.limit_measure)},
                               {"baseline", rec.baseline ? nlohmann::json(r.configurations[*rec.baseline].configuration_id)
                                                         : nlohmann::json()},
                               {"configuration_id", c.configuration_id},
                               {"label", label(c)},
                               {"cheaper_tie", rec.cheaper_tie
                                                   ? nlohmann::json(r.configurations[*rec.cheaper_tie].configuration_id)
                                                   : nlohmann::json()},
                               {"why", rec.why},
                               {"trial", t.at("id")},
                               {"trial_directory", trial_directory(t).string()}});
  }
  return {{"cost", to_string(r.cost)},
          {"cost_unit", r.cost_unit},
          {"cost_label", cost_label(r)},
          {"cost_table", r.cost_table.empty() ? nlohmann::json() : nlohmann::json(r.cost_table)},
          {"selected_on", r.select_on_validation ? "validation" : "test"},
          {"accuracy", r.best_epoch ? "best_epoch" : "final_epoch"},
          {"reference", {{"cost", r.reference.cost}, {"top1", r.reference.accuracy}}},
          {"sources", r.sources},
          {"trials", r.trials},
          {"probes", r.probes},
          {"configurations", configurations},
          {"budgets", budgets},
          {"groups", groups},
          {"dominance", dominance},
          {"recommendations", recommendations}};
}

namespace {

std::string dominance_table(const ParetoReport& r, bool markdown) {
  const std::string cost = cost_label(r);
  std::vector<std::vector<std::string>> rows;
  for (const auto& d : r.dominance) {
    const auto& base = r.configurations[d.baseline];
    const Configuration* best = d.best_mixed ? &r.configurations[*d.best_mixed] : nullptr;
    rows.push_back({label(base), d.mixed_group, format_number("%.2f", base.top1_mean), half_width_text(base.top1_interval),
                    cost_text(r.cost, base.cost), best ? flagged_label(*best) : "none",
                    best ? format_number("%.2f", best->top1_mean) : "-", best ? half_width_text(best->top1_interval) : "-",
                    best ? cost_text(r.cost, best->cost) : "-",
                    d.accuracy_gain ? format_number("%+.2f", *d.accuracy_gain) : "-",
                    d.accuracy_gain ? gain_half_width_text(d) : "-",
                    d.verdict ? to_string(*d.verdict) : "-",
                    d.front_accuracy_at_baseline ? format_number("%.2f", *d.front_accuracy_at_baseline) : "outside front",
                    d.front_gain ? format_number("%+.2f", *d.front_gain) : "-"});
    if (r.select_on_validation) rows.back().push_back(d.validation_gain ? format_number("%+.2f", *d.validation_gain) : "-");
  }
  const std::string on = r.select_on_validation ? " (validation)" : "";
  std::vector<std::string> headers = {"baseline", "mixed group", "top-1 %", "95%", cost,
                                      "best trained mixed at <= " + cost + (r.select_on_validation ? ", on validation" : ""),
                                      "its top-1 %", "95%", "its " + cost, "gain", "95%", "verdict",
                                      "front interpolated at baseline " + cost + on, "interpolated gain" + on};
  std::vector<bool> right = {false, false, true, true, true, false, true, true, true, true, true, false, true, true};
  if (r.select_on_validation) {
    headers.push_back("validation gain");
    right.push_back(true);
  }
  return render_table(headers, right, rows, markdown);
}

std::string group_table(const ParetoReport& r, const Group& g, bool markdown) {
  const bool own_cost_column = r.cost == CostMeasure::activation_memory_bits || r.cost == CostMeasure::table;
  std::vector<size_t> order = g.configurations;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return r.configurations[a].cost < r.configurations[b].cost;
  });
  std::vector<std::vector<std::string>> rows;
  for (size_t i : order) {
    const auto& c = r.configurations[i];
    rows.push_back({flagged_label(c), format_number("%.2f", c.top1_mean), half_width_text(c.top1_interval), basis_text(c),
                    short_number(c.bitops_mean), format_number("%.3f", c.normalised_bits_mean),
                    c.expected_normalised_bits_mean ? format_number("%.3f", *c.expected_normalised_bits_mean) : "-",
                    format_number("%.1f", c.weight_memory_bits_mean / 8192.0), decided_text(c),
                    c.settled_fraction_mean ? format_number("%.0f%%", 100 * *c.settled_fraction_mean) : "-",
                    c.on_front ? "yes" : ""});
    // A cost the columns above do not show: the report's own, with its unit.
    if (own_cost_column) rows.back().insert(rows.back().end() - 1, cost_text(r.cost, c.cost));
    if (r.select_on_validation) {
      rows.back().insert(rows.back().begin() + 1, format_number("%.2f", c.selection_top1));
      rows.back().insert(rows.back().begin() + 2, half_width_text(c.selection_interval));
    }
  }
  std::vector<std::string> headers = {"configuration", "top-1 %", "95%", "from", "BitOps", "normalised bits",
                                      "expected bits (search)", "weight memory (KiB)", "seeds decided",
                                      "last change (of search)", "on front"};
  std::vector<bool> right = {false, true, true, false, true, true, true, true, true, true, false};
  if (own_cost_column) {
    headers.insert(headers.end() - 1, cost_label(r));
    right.insert(right.end() - 1, true);
  }
  if (r.select_on_validation) {
    headers.insert(headers.begin() + 1, {"validation top-1 % (chooses)", "95%"});
    headers[3] = "test top-1 % (reports)";
    right.insert(right.begin() + 1, {true, true});
  }
  return render_table(headers, right, rows, markdown);
}

/// The answer a user wants first, in words: for each mixed group, how its
/// trained networks compare with each uniform baseline at no more cost
/// (uncertainty counted: a gain inside it is a tie), then the front's
/// interpolation, labelled as such, then whether the searches decided.
std::string verdict(const ParetoReport& r) {
  std::ostringstream out;
  const std::string cost = cost_title(r.cost);
  for (const auto& mixed : r.groups) {
    if (mixed.kind == TrialKind::uniform) continue;
    std::vector<std::string> trained, interpolated;
    for (const auto& d : r.dominance) {
      if (d.mixed_group != mixed.name) continue;
      trained.push_back(comparison_text(r, d));
      const auto& base = r.configurations[d.baseline];
      interpolated.push_back(label(base) + " " +
                             (d.front_gain ? format_number("%+.2f", *d.front_gain) : std::string("outside the front")));
    }
    out << mixed.name << ":\n";
    if (trained.empty()) {
      out << "  no uniform baseline of this model and dataset yet.\n";
    } else {
      out << "  trained networks at no more " << cost << " (seed means, 95% intervals; a gain inside its interval "
          << "is a tie" << (r.select_on_validation ? "; chosen on validation, gains on test" : "") << "):\n";
      for (const auto& line : trained) out << "    " << line << "\n";
      out << "  the front interpolated at each baseline's " << cost << " (no network was trained there): ";
      for (size_t i = 0; i < interpolated.size(); ++i) out << (i ? ", " : "") << interpolated[i];
      out << "\n";
    }
    for (const auto& uniform : r.groups) {
      if (uniform.kind != TrialKind::uniform || uniform.model != mixed.model || uniform.dataset != mixed.dataset) continue;
      out << "  hypervolume (" << cost << "): mixed " << short_number(mixed.hypervolume) << ", uniform "
          << short_number(uniform.hypervolume)
          << (mixed.hypervolume > uniform.hypervolume ? " (mixed larger)" : " (mixed not larger)") << "\n";
    }
    int undecided = 0, configurations = 0;
    for (size_t i : mixed.configurations) {
      ++configurations;
      if (r.configurations[i].undecided()) ++undecided;
    }
    if (undecided > 0) {
      out << "  warning: " << undecided << " of " << configurations
          << " configurations have a seed whose search ended undecided (marked \"undecided!\"): a layer's "
             "choice led by less than " << format_number("%.2f", kDecidedMargin) << " or still changed in the final "
          << format_number("%.0f", 100 * kStableFraction) << "% of the search, so their allocations are partly chance.\n";
    }
  }
  return out.str();
}

/// Output-file name of an exported configuration: model, label, safe characters.
std::string export_name(const Configuration& c) {
  std::string name = c.model;
  for (size_t at; (at = name.find(".onnx")) != std::string::npos;) name.erase(at, 5);
  name += "-" + label(c);
  for (auto& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-') ch = '_';
  }
  return name;
}

std::string export_command(const Configuration& c, const nlohmann::json& trial) {
  return "edmips export " + trial_directory(trial).string() + " --format qdq --out " + export_name(c) + ".onnx";
}

/// Per layer: the chosen trial's bits and how many of the configuration's
/// seeds chose the same.
std::string allocation_table(const Configuration& c, size_t trial, bool markdown) {
  std::vector<std::vector<std::string>> rows;
  const auto& layers = c.trials[trial].at("allocation").at("layers");
  for (size_t k = 0; k < layers.size(); ++k) {
    const auto& layer = layers[k];
    int agree = 0;
    for (const auto& t : c.trials) {
      const auto& other = t.at("allocation").at("layers");
      if (k < other.size() && other[k].at("weight_bits") == layer.at("weight_bits") &&
          other[k].at("activation_bits") == layer.at("activation_bits")) {
        ++agree;
      }
    }
    rows.push_back({layer.value("layer", "layer " + std::to_string(k)), layer.at("weight_bits").dump(),
                    layer.at("activation_bits").dump(),
                    std::to_string(agree) + "/" + std::to_string(c.trials.size())});
  }
  return render_table({"layer", "weight bits", "activation bits", "seeds with the same bits"},
                      {false, true, true, true}, rows, markdown);
}

/// The recommendations: per uniform baseline and per budget, the network to
/// deploy, its uncertainty, costs, files and export command.
std::string recommendations_text(const ParetoReport& r, bool markdown) {
  std::ostringstream out;
  for (const auto& rec : r.recommendations) {
    const auto& c = r.configurations[rec.chosen];
    const auto& t = c.trials[rec.trial];
    const double trial_top1 = t.at("top1").get<double>();
    const auto own = t.contains("test_images") && t.at("test_images").is_number_integer()
                         ? binomial_interval(trial_top1, t.at("test_images").get<int64_t>())
                         : Uncertainty{};
    const std::string costs = "BitOps " + short_number(c.bitops_mean) + ", normalised bits " +
                              format_number("%.3f", c.normalised_bits_mean) + ", weight memory " +
                              format_number("%.1f", c.weight_memory_bits_mean / 8192.0) + " KiB" +
                              (rec.baseline ? " (" + relative_cost_text(rec.limit_measure, c.cost_in(rec.limit_measure),
                                                                        rec.limit_cost,
                                                                        label(r.configurations[*rec.baseline])) +
                                                  ")"
                                            : "");
    const std::string trial_text = "seed " + t.at("seed").dump() + ", trial " + t.at("id").get<std::string>() +
                                   ": top-1 " + format_number("%.2f", trial_top1) +
                                   (own.basis == "none" ? "" : " +- " + format_number("%.2f", own.half_width) +
                                                                   " (95% interval of its test set)");
    if (markdown) {
      out << "### At " << rec.limit << " (" << rec.mixed_group << ")\n\n"
          << "Deploy **" << flagged_label(c) << "** (configuration " << c.configuration_id << "): " << rec.why << "\n\n"
          << "- top-1: " << accuracy_text(c) << "\n"
          << "- cost: " << costs << "\n"
          << "- the network (its " << trial_text << "): `" << trial_directory(t).string() << "`\n"
          << "- export: `" << export_command(c, t) << "`\n\n"
          << allocation_table(c, rec.trial, true) << "\n";
    } else {
      out << "at " << rec.limit << " (" << rec.mixed_group << "): deploy " << flagged_label(c) << ", top-1 "
          << accuracy_text(c) << "\n    " << rec.why << "\n    cost: " << costs << "\n    " << trial_text << ": "
          << trial_directory(t).string() << "\n    bits (w/a):";
      for (const auto& layer : t.at("allocation").at("layers")) {
        out << " " << layer.at("weight_bits").dump() << "/" << layer.at("activation_bits").dump();
      }
      out << "\n    " << export_command(c, t) << "\n";
    }
  }
  return out.str();
}

/// One table per budget (cost measure, value, model, data, candidate
/// bits), a row per seed: what the budget search found and how it trained.
std::string budget_tables(const ParetoReport& r, bool markdown) {
  std::ostringstream out;
  std::string heading;
  for (const auto& b : r.budgets) {
    const std::string h = "budget " + short_number(b.budget) + " " + b.cost + " (tolerance " +
                          format_number("%.3g", 100 * b.tolerance) + "%): " + b.model + "/" + b.dataset + "/w" + b.weight_bits +
                          " a" + b.activation_bits;
    if (h != heading) {
      heading = h;
      if (markdown) {
        out << "\n### " << h << "\n\n| seed | state | lambda found | cost | top-1 (%) | probes (own / family) | "
               "allocation (w/a per layer) |\n|---:|---|---:|---:|---:|---:|---|\n";
      } else {
        out << h << "\n";
      }
    }
    const char* sep = markdown ? " | " : "  ";
    std::string state = b.state == "gave_up" ? "gave up (closest under the budget)" : b.state;
    if (b.state == "met" || b.state == "gave_up") {
      if (!b.top1) state += ", retraining";
    }
    out << (markdown ? "| " : "  seed ") << b.seed << sep << state << sep
        << (b.lambda ? short_number(*b.lambda) : "-") << sep << (b.chosen_cost ? short_number(*b.chosen_cost) : "-")
        << sep << (b.top1 ? format_number("%.2f", *b.top1) : "-") << sep << b.own_probes << " / " << b.family_probes << sep
        << (b.allocation.empty() ? (b.reason.empty() ? "-" : b.reason) : b.allocation) << (markdown ? " |" : "")
        << "\n";
  }
  return out.str();
}

/// "23 search-only probes for 6 budgets, 3.83 per budget".
std::string probe_count_text(const ParetoReport& r) {
  return std::to_string(r.probes) + " search-only probes for " + std::to_string(r.budgets.size()) + " budgets, " +
         format_number("%.2f", double(r.probes) / double(std::max<size_t>(1, r.budgets.size()))) + " per budget";
}

/// The `edmips export` command of every configuration on a mixed front (its
/// first seed's trial), cheapest first; empty without any.
std::string export_commands(const ParetoReport& r) {
  std::ostringstream out;
  for (const auto& g : r.groups) {
    if (g.kind == TrialKind::uniform) continue;
    std::vector<size_t> front = g.front;
    std::sort(front.begin(), front.end(), [&](size_t a, size_t b) {
      return r.configurations[a].cost < r.configurations[b].cost;
    });
    for (size_t i : front) {
      const auto& c = r.configurations[i];
      if (c.trials.empty()) continue;
      const auto& t = c.trials[first_seed(c)];
      out << "# " << g.name << ", " << label(c) << ": top-1 " << format_number("%.2f", t.at("top1").get<double>())
          << " % (seed " << t.at("seed").dump() << "; mean " << format_number("%.2f", c.top1_mean) << " of "
          << c.trials.size() << "), " << format_number("%.3f", t.at("normalised_bits").get<double>()) << " bits\n"
          << export_command(c, t) << "\n";
    }
  }
  return out.str();
}

std::string group_heading(const ParetoReport& r, const Group& g) {
  return g.name + ": " + std::to_string(g.configurations.size()) + " configurations, " + std::to_string(g.front.size()) +
         " on the front, hypervolume " + short_number(g.hypervolume) + " (cost " + to_string(r.cost) + ")";
}

}  // namespace

namespace {
/// What --best-epoch changes, in one sentence for the terminal and report.md.
std::string best_epoch_note(const ParetoReport& r) {
  std::string note = "top-1 is each trial's best epoch on the test set (--best-epoch, the released protocol's "
                     "figure): optimistic for every configuration, since the epoch is chosen on the test set";
  if (r.without_best_epoch > 0) {
    note += "; " + std::to_string(r.without_best_epoch) +
            " trial(s) had no per-epoch evaluation (train.eval_every) and use their final epoch";
  }
  return note + ".";
}
}  // namespace

void print_report(std::ostream& out, const ParetoReport& r) {
  out << r.trials << " finished trials in " << r.configurations.size() << " configurations from";
  for (const auto& s : r.sources) out << " " << s;
  out << (r.select_on_validation
              ? "\nchosen on validation (images held back from training), reported on test"
              : "\nchosen and reported on test (no validation split: dataset.validation_subset; docs/report.md)");
  out << "\nhypervolume reference point: " << to_string(r.cost) << " " << short_number(r.reference.cost) << ", top-1 "
      << format_number("%.2f", r.reference.accuracy) << "%\n";
  if (r.best_epoch) out << best_epoch_note(r) << "\n";
  out << "\n";
  if (!r.dominance.empty()) {
    out << "Mixed precision against uniform baselines (top-1 %, " << cost_label(r)
        << "; 95% intervals):\n" << dominance_table(r, false) << "\n"
        << "Summary:\n" << verdict(r) << "\n";
  }
  if (!r.recommendations.empty()) {
    out << "Recommended networks (the most accurate trained network at no more cost; seed means):\n" << recommendations_text(r, false) << "\n";
  }
  for (const auto& g : r.groups) out << group_heading(r, g) << "\n" << group_table(r, g, false) << "\n";
  if (!r.budgets.empty()) {
    out << "Budgets (" << probe_count_text(r) << "):\n" << budget_tables(r, false) << "\n";
  }
  if (const auto commands = export_commands(r); !commands.empty()) {
    out << "Export a network on the front (--format qdq, qonnx or float; docs/onnx.md):\n" << commands
        << "\n";
  }
}

void write_report_files(const ParetoReport& r, const fs::path& directory) {
  fs::create_directories(directory);
  write_file_atomically(directory / "pareto.json", to_json(r).dump(2) + "\n");

  std::ostringstream csv;
  csv << "group,configuration_id,kind,model,dataset,weight_bits,activation_bits,complexity_penalty,seeds,top1_mean,"
         "top1_std,bitops_mean,normalised_bits_mean,expected_normalised_bits_mean,weight_memory_bits_mean,"
         "activation_memory_bits_mean,table_cost_mean,cost,cost_measure,cost_unit,on_front,budget,probes,trial_ids\n";
  for (const auto& c : r.configurations) {
    std::string ids;
    for (const auto& t : c.trials) ids += (ids.empty() ? "" : " ") + t.at("id").get<std::string>();
    csv << '"' << c.group << "\"," << c.configuration_id << ',' << to_string(c.kind) << ',' << c.model << ',' << c.dataset << ','
        << c.weight_bits << ',' << c.activation_bits << ','
        << (c.complexity_penalty ? format_number("%.10g", *c.complexity_penalty) : "") << ',' << c.trials.size() << ','
        << format_number("%.6g", c.top1_mean) << ',' << format_number("%.6g", c.top1_std) << ',' << format_number("%.10g", c.bitops_mean) << ','
        << format_number("%.6g", c.normalised_bits_mean) << ','
        << (c.expected_normalised_bits_mean ? format_number("%.6g", *c.expected_normalised_bits_mean) : "") << ','
        << format_number("%.10g", c.weight_memory_bits_mean) << ','
        << (c.activation_memory_bits_mean ? format_number("%.10g", *c.activation_memory_bits_mean) : "") << ','
        << (c.table_cost_mean ? format_number("%.10g", *c.table_cost_mean) : "") << ','
        << format_number("%.10g", c.cost) << ',' << to_string(r.cost) << ",\"" << r.cost_unit << "\","
        << (c.on_front ? 1 : 0) << ','
        << (c.budget ? format_number("%.10g", *c.budget) : "") << ',' << (c.probes_mean ? short_number(*c.probes_mean) : "")
        << ',' << ids << '\n';
  }
  write_file_atomically(directory / "pareto.csv", csv.str());

  std::ostringstream md;
  md << "# EdMIPS sweep report\n\n" << r.trials << " finished trials, " << r.configurations.size()
     << " configurations (seeds averaged), from";
  for (const auto& s : r.sources) md << " `" << s << "`";
  md << ".\n\n"
     << (r.select_on_validation
             ? "Fronts, the best network at each cost and the recommendations are **chosen on validation** (images "
               "held back from training) and **reported on test**, so the reported accuracies are not the ones "
               "that chose them.\n"
             : "Fronts, the best network at each cost and the recommendations are chosen **on the test set** and "
               "reported on it: the chosen network's accuracy is optimistic by the selection. Give the sweep a "
               "`dataset.validation_subset` to choose on held-back training images instead (docs/report.md).\n")
     << (r.best_epoch ? "\n**" + best_epoch_note(r) + "**\n" : std::string())
     << "\n## Mixed precision against uniform precision\n\n";
  if (r.dominance.empty()) {
    md << "No uniform baselines and mixed-precision trials of the same model and dataset yet.\n\n";
  } else {
    const std::string cost = cost_title(r.cost);
    md << "For each uniform baseline: the most accurate trained mixed-precision configuration whose " << cost
       << " are no higher (seed means), the gain with its 95% interval and the verdict it allows (a gain inside "
          "its interval is a tie), and, separately, the mixed front's accuracy interpolated (in log " << cost
       << ") at the baseline's cost, a network nobody trained. Intervals: Student's t over the seeds where a "
          "configuration has two or more, else the Wilson interval of its one seed's test set; a gain's interval "
          "combines the two as independent estimates (docs/report.md).\n\n"
       << dominance_table(r, true) << "\n**Summary**:\n\n```\n" << verdict(r) << "```\n\n";
  }
  if (!r.recommendations.empty()) {
    md << "## Recommended networks\n\nFor each uniform baseline's cost (and each budget), the network to deploy: "
          "the most accurate trained network (seed mean) at no more cost, mixed or uniform, with its first seed's "
          "files; a cheaper network whose gap to it lies inside their combined 95% interval is named as a tie.\n\n"
       << recommendations_text(r, true);
  }
  md << "![accuracy vs BitOps](plots/accuracy_vs_bitops.png)\n\n## Fronts\n\nHypervolume reference point: "
     << to_string(r.cost) << " " << short_number(r.reference.cost) << ", top-1 " << format_number("%.2f", r.reference.accuracy)
     << "% (the same for every group).\n\n";
  for (const auto& g : r.groups) md << "### " << group_heading(r, g) << "\n\n" << group_table(r, g, true) << "\n";
  if (!r.budgets.empty()) {
    md << "## Budgets\n\nFor each budget the sweep searched lambda with search-only probes (" << probe_count_text(r)
       << ") until a derived allocation's cost lay within the tolerance under the budget, then retrained it "
          "(docs/budgets.md). \"gave up\" retrains the most expensive probe still under the budget; \"own\" probes "
          "are those the budget started, \"family\" all of its model, bits and seed it could use.\n"
       << budget_tables(r, true) << "\n";
  }
  if (const auto commands = export_commands(r); !commands.empty()) {
    md << "## Exporting the front\n\nEach configuration on a mixed front, cheapest first, as the command "
          "that writes it for a runtime (`--format qdq` for ONNX Runtime and TensorRT, `qonnx` for FINN, `float`; "
          "docs/onnx.md). The command exports the configuration's first seed.\n\n```sh\n"
       << commands << "```\n\n";
  }
  md << "## Bit allocations on the front\n\n![bit allocation](plots/bit_allocation.png)\n\n"
     << "## How the penalty maps to a budget\n\n![lambda vs normalised bits](plots/lambda_vs_bits.png)\n\n"
     << "## Search dynamics\n\n![expected bits per epoch](plots/search_dynamics.png)\n\n"
     << "Each layer's candidate probabilities over one search (the mixed front's configuration nearest 2 "
        "normalised bits): a layer is decided when its chosen weight and activation candidates each lead the "
        "runner-up by at least " << format_number("%.2f", kDecidedMargin) << " at the search's temperature and neither choice "
        "changed in the final " << format_number("%.0f", 100 * kStableFraction) << "% of the search's architecture steps; "
        "\"last change\" in the tables is the step of the latest change, as a share of the search "
        "(docs/search-settings.md).\n\n"
     << "![candidate probabilities during the search](plots/search_probabilities.png)\n\n"
     << "Plots (PNG and SVG) are drawn by `analysis/plots.py` from the files above; `scripts/report.sh` makes "
        "everything.\n";
  write_file_atomically(directory / "report.md", md.str());
}

}  // namespace edmips
