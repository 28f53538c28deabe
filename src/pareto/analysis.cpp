#include "pareto/analysis.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <ostream>
#include <sstream>
#include <tuple>

#include "core/error.h"
#include "core/files.h"
#include "nn/precision.h"
#include "sweep/coordinator.h"
#include "sweep/journal.h"

namespace edmips {
namespace fs = std::filesystem;

CostMeasure parse_cost_measure(const std::string& text) {
  if (text == "bitops") return CostMeasure::bitops;
  if (text == "normalised_bits") return CostMeasure::normalised_bits;
  if (text == "weight_memory_bits") return CostMeasure::weight_memory_bits;
  throw ConfigError("--cost: expected bitops, normalised_bits or weight_memory_bits, found \"" + text + "\"");
}

std::string to_string(CostMeasure measure) {
  switch (measure) {
    case CostMeasure::bitops: return "bitops";
    case CostMeasure::normalised_bits: return "normalised_bits";
    case CostMeasure::weight_memory_bits: return "weight_memory_bits";
  }
  return "?";
}

namespace {

std::string fmt(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

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
  if (summary.at("kind") == "uniform") return base + "/uniform";
  return base + "/w" + summary.at("weight_bits").get<std::string>() + " a" +
         summary.at("activation_bits").get<std::string>();
}

std::string label(const Configuration& c) {
  if (c.kind == "uniform") return "W" + c.weight_bits + "A" + c.activation_bits;
  if (c.kind == "budget") return "budget " + fmt("%.4g", c.budget.value_or(0)) + " " + c.budget_cost;
  return "lambda " + fmt("%.4g", c.complexity_penalty.value_or(0));
}

/// "3/3" seeds whose search decided every layer; "-" for baselines or unknown.
std::string decided_text(const Configuration& c) {
  if (c.decided_trials + c.undecided_trials == 0) return "-";
  return std::to_string(c.decided_trials) + "/" + std::to_string(c.decided_trials + c.undecided_trials);
}

/// The label, marked when a seed's search ended undecided.
std::string flagged_label(const Configuration& c) { return label(c) + (c.undecided() ? " (undecided!)" : ""); }

std::string accuracy_text(const Configuration& c) {
  return fmt("%.2f", c.top1_mean) + " +- " + fmt("%.2f", c.top1_std) + " (n=" + std::to_string(c.trials.size()) + ")";
}

/// Adds one finished trial (a journal event) to its configuration.
void add_finished_trial(ParetoReport& report, std::map<std::string, size_t>& by_configuration, const fs::path& dir,
                        const std::string& id, const nlohmann::json& event) {
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
    c.kind = summary.at("kind");
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
    if ((*same).at("top1") != result.at("top1") || (*same).at("bitops") != result.at("bitops")) {
      throw DataError("trial " + id + " has different results in " + (*same).at("source").get<std::string>() +
                      " (top-1 " + (*same).at("top1").dump() + ") and " + dir.string() + " (top-1 " +
                      result.at("top1").dump() + "); analyse them separately");
    }
    return;
  }
  nlohmann::json trial = {{"id", id},
                          {"seed", summary.at("seed")},
                          {"top1", result.at("top1")},
                          {"bitops", result.at("bitops")},
                          {"normalised_bits", result.at("normalised_bits")},
                          {"weight_memory_bits", result.at("weight_memory_bits")},
                          {"allocation", result.at("allocation")},
                          {"source", dir.string()}};
  if (summary.contains("probes")) trial["probes"] = summary.at("probes");
  if (result.contains("search")) {
    const auto& search = result["search"];
    trial["expected_normalised_bits"] = search.value("expected_normalised_bits", 0.0);
    if (search.contains("decision")) {
      const auto& decision = search["decision"];
      trial["decided_layers"] = decision.at("decided_layers");
      trial["searched_layers"] = decision.at("searched_layers");
      trial["smallest_margin"] = decision.at("smallest_margin");
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
  if (e.contains("lambda")) b.lambda = e.at("lambda").get<double>();
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

ParetoReport analyse_sweeps(const ParetoOptions& options) {
  if (options.directories.empty()) throw ConfigError("pareto: give at least one sweep directory");
  ParetoReport report;
  report.cost = options.cost;
  std::map<std::string, size_t> by_configuration;
  for (const auto& dir : options.directories) {
    const auto journal = dir / sweep_files::journal;
    if (!fs::exists(journal)) {
      throw ConfigError(dir.string() + ": no " + sweep_files::journal + " (not a sweep output directory)");
    }
    report.sources.push_back(dir.string());
    const auto state = read_journal(journal);  // a torn last line of a running sweep is skipped
    for (const auto& [id, event] : state.finished) {
      try {
        add_finished_trial(report, by_configuration, dir, id, event);
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

  for (auto& c : report.configurations) {
    std::vector<double> top1, bitops, bits, memory, expected, probes;
    for (const auto& t : c.trials) {
      top1.push_back(t.at("top1"));
      bitops.push_back(t.at("bitops"));
      bits.push_back(t.at("normalised_bits"));
      memory.push_back(t.at("weight_memory_bits"));
      if (t.contains("expected_normalised_bits")) expected.push_back(t.at("expected_normalised_bits"));
      if (t.contains("probes")) probes.push_back(t.at("probes"));
    }
    if (!probes.empty()) c.probes_mean = mean(probes);
    c.top1_mean = mean(top1);
    c.top1_std = sample_std(top1);
    c.bitops_mean = mean(bitops);
    c.normalised_bits_mean = mean(bits);
    c.weight_memory_bits_mean = mean(memory);
    if (!expected.empty()) c.expected_normalised_bits_mean = mean(expected);
    c.cost = options.cost == CostMeasure::bitops            ? c.bitops_mean
             : options.cost == CostMeasure::normalised_bits ? c.normalised_bits_mean
                                                            : c.weight_memory_bits_mean;
  }

  // One reference point for every group, so hypervolumes compare.
  if (options.reference) {
    report.reference = *options.reference;
  } else {
    double max_cost = 0, min_accuracy = 1e300;
    for (const auto& c : report.configurations) {
      max_cost = std::max(max_cost, c.cost);
      min_accuracy = std::min(min_accuracy, c.top1_mean);
    }
    report.reference = {1.1 * max_cost, min_accuracy};
  }

  std::map<std::string, size_t> group_index;
  for (size_t i = 0; i < report.configurations.size(); ++i) {
    const auto& c = report.configurations[i];
    auto [it, inserted] = group_index.emplace(c.group, report.groups.size());
    // A mixed group ("search") holds lambda-axis searches and budget results alike.
    if (inserted) report.groups.push_back({c.group, c.kind == "uniform" ? "uniform" : "search", c.model, c.dataset,
                                           c.kind == "uniform" ? "" : c.weight_bits,
                                           c.kind == "uniform" ? "" : c.activation_bits, {}, {}, 0});
    report.groups[it->second].configurations.push_back(i);
  }
  for (auto& g : report.groups) {
    std::vector<ParetoPoint> points;
    for (size_t i : g.configurations) points.push_back({report.configurations[i].cost, report.configurations[i].top1_mean});
    for (size_t k : pareto_front(points)) {
      g.front.push_back(g.configurations[k]);
      report.configurations[g.configurations[k]].on_front = true;
    }
    g.hypervolume = hypervolume(points, report.reference);
  }

  // Dominance: every uniform baseline against every mixed group of its model and dataset.
  for (const auto& baseline_group : report.groups) {
    if (baseline_group.kind != "uniform") continue;
    for (size_t b : baseline_group.configurations) {
      const auto& base = report.configurations[b];
      for (const auto& mixed : report.groups) {
        if (mixed.kind == "uniform" || mixed.model != base.model || mixed.dataset != base.dataset) continue;
        Dominance d{b, mixed.name, std::nullopt, std::nullopt, std::nullopt, std::nullopt};
        for (size_t m : mixed.configurations) {
          const auto& c = report.configurations[m];
          if (c.bitops_mean > base.bitops_mean) continue;
          if (!d.best_mixed || c.top1_mean > report.configurations[*d.best_mixed].top1_mean) d.best_mixed = m;
        }
        if (d.best_mixed) d.accuracy_gain = report.configurations[*d.best_mixed].top1_mean - base.top1_mean;
        // The mixed front in BitOps (whatever the chosen cost), for interpolation.
        std::vector<ParetoPoint> points;
        for (size_t m : mixed.configurations) {
          points.push_back({report.configurations[m].bitops_mean, report.configurations[m].top1_mean});
        }
        std::vector<ParetoPoint> front;
        for (size_t k : pareto_front(points)) front.push_back(points[k]);
        double accuracy = 0;
        if (interpolate_front(front, base.bitops_mean, accuracy)) {
          d.front_accuracy_at_baseline = accuracy;
          d.front_gain = accuracy - base.top1_mean;
        }
        report.dominance.push_back(d);
      }
    }
  }
  return report;
}

nlohmann::json to_json(const ParetoReport& r) {
  auto optional = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  nlohmann::json configurations = nlohmann::json::array();
  for (const auto& c : r.configurations) {
    configurations.push_back({{"configuration_id", c.configuration_id},
                              {"group", c.group},
                              {"kind", c.kind},
                              {"model", c.model},
                              {"dataset", c.dataset},
                              {"weight_bits", c.weight_bits},
                              {"activation_bits", c.activation_bits},
                              {"complexity_penalty", optional(c.complexity_penalty)},
                              {"seeds", c.trials.size()},
                              {"top1_mean", c.top1_mean},
                              {"top1_std", c.top1_std},
                              {"bitops_mean", c.bitops_mean},
                              {"normalised_bits_mean", c.normalised_bits_mean},
                              {"expected_normalised_bits_mean", optional(c.expected_normalised_bits_mean)},
                              {"weight_memory_bits_mean", c.weight_memory_bits_mean},
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
                       {"lambda", optional(b.lambda)}, {"chosen_cost", optional(b.chosen_cost)},
                       {"own_probes", b.own_probes}, {"family_probes", b.family_probes},
                       {"retrain", b.retrain.empty() ? nlohmann::json() : nlohmann::json(b.retrain)},
                       {"top1", optional(b.top1)}, {"allocation", b.allocation}});
  }
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : r.groups) {
    nlohmann::json members = nlohmann::json::array(), front = nlohmann::json::array();
    for (size_t i : g.configurations) members.push_back(r.configurations[i].configuration_id);
    for (size_t i : g.front) front.push_back(r.configurations[i].configuration_id);
    groups.push_back({{"name", g.name}, {"kind", g.kind}, {"model", g.model}, {"dataset", g.dataset},
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
         {"mixed_group", d.mixed_group},
         {"best_mixed", d.best_mixed ? nlohmann::json(r.configurations[*d.best_mixed].configuration_id) : nlohmann::json()},
         {"best_mixed_label", d.best_mixed ? nlohmann::json(label(r.configurations[*d.best_mixed])) : nlohmann::json()},
         {"best_mixed_top1", d.best_mixed ? nlohmann::json(r.configurations[*d.best_mixed].top1_mean) : nlohmann::json()},
         {"best_mixed_bitops", d.best_mixed ? nlohmann::json(r.configurations[*d.best_mixed].bitops_mean) : nlohmann::json()},
         {"accuracy_gain", optional(d.accuracy_gain)},
         {"front_top1_at_baseline_bitops", optional(d.front_accuracy_at_baseline)},
         {"front_gain", optional(d.front_gain)}});
  }
  return {{"cost", to_string(r.cost)},
          {"reference", {{"cost", r.reference.cost}, {"top1", r.reference.accuracy}}},
          {"sources", r.sources},
          {"trials", r.trials},
          {"probes", r.probes},
          {"configurations", configurations},
          {"budgets", budgets},
          {"groups", groups},
          {"dominance", dominance}};
}

namespace {

std::string dominance_table(const ParetoReport& r, bool markdown) {
  std::ostringstream out;
  const char* sep = markdown ? " | " : "  ";
  if (markdown) {
    out << "| baseline | mixed group | baseline top-1 (%) | baseline BitOps | best mixed with <= BitOps | its top-1 | gain | "
           "mixed front at baseline BitOps | gain |\n|---|---|---:|---:|---|---:|---:|---:|---:|\n";
  }
  for (const auto& d : r.dominance) {
    const auto& base = r.configurations[d.baseline];
    const std::string best = d.best_mixed ? flagged_label(r.configurations[*d.best_mixed]) + " (" +
                                                fmt("%.3g", r.configurations[*d.best_mixed].bitops_mean) + ")"
                                          : "none";
    out << (markdown ? "| " : "  ") << label(base) << sep << d.mixed_group << sep << accuracy_text(base) << sep
        << fmt("%.3g", base.bitops_mean) << sep << best << sep
        << (d.best_mixed ? fmt("%.2f", r.configurations[*d.best_mixed].top1_mean) : "-") << sep
        << (d.accuracy_gain ? fmt("%+.2f", *d.accuracy_gain) : "-") << sep
        << (d.front_accuracy_at_baseline ? fmt("%.2f", *d.front_accuracy_at_baseline) : "outside front") << sep
        << (d.front_gain ? fmt("%+.2f", *d.front_gain) : "-") << (markdown ? " |" : "") << "\n";
  }
  return out.str();
}

std::string group_table(const ParetoReport& r, const Group& g, bool markdown) {
  std::ostringstream out;
  if (markdown) {
    out << "| configuration | top-1 (%) mean +- std (n) | BitOps | normalised bits | expected bits (search) | "
           "weight memory (KiB) | seeds decided | on front |\n|---|---:|---:|---:|---:|---:|:-:|:-:|\n";
  }
  std::vector<size_t> order = g.configurations;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return r.configurations[a].cost < r.configurations[b].cost;
  });
  for (size_t i : order) {
    const auto& c = r.configurations[i];
    const char* sep = markdown ? " | " : "  ";
    out << (markdown ? "| " : "  ") << flagged_label(c) << sep << accuracy_text(c) << sep << fmt("%.4g", c.bitops_mean) << sep
        << fmt("%.3f", c.normalised_bits_mean) << sep
        << (c.expected_normalised_bits_mean ? fmt("%.3f", *c.expected_normalised_bits_mean) : "-") << sep
        << fmt("%.1f", c.weight_memory_bits_mean / 8192.0) << sep << decided_text(c) << sep
        << (c.on_front ? "yes" : "") << (markdown ? " |" : "")
        << "\n";
  }
  return out.str();
}

/// The answer a user wants first, in words: where mixed precision is at or
/// above uniform precision at equal BitOps, where it is not, and whether the
/// searches behind it decided.
std::string verdict(const ParetoReport& r) {
  std::ostringstream out;
  for (const auto& mixed : r.groups) {
    if (mixed.kind == "uniform") continue;
    std::vector<std::string> wins, losses, outside;
    for (const auto& d : r.dominance) {
      if (d.mixed_group != mixed.name) continue;
      const auto& base = r.configurations[d.baseline];
      // The front's interpolated accuracy when the baseline's BitOps lie in its
      // range, else the best configuration at no more BitOps.
      const auto gain = d.front_gain ? d.front_gain : d.accuracy_gain;
      if (!gain) {
        outside.push_back(label(base));
        continue;
      }
      (*gain >= 0 ? wins : losses).push_back(label(base) + " (" + fmt("%+.2f", *gain) + ")");
    }
    auto join = [](const std::vector<std::string>& items) {
      std::string text;
      for (const auto& item : items) text += (text.empty() ? "" : ", ") + item;
      return text;
    };
    out << mixed.name << ": ";
    if (wins.empty() && losses.empty()) {
      out << "no uniform baseline lies within reach of the mixed front yet.\n";
    } else {
      out << "mixed precision is at or above uniform at equal BitOps for " << (wins.empty() ? "none" : join(wins));
      out << "; below it for " << (losses.empty() ? "none" : join(losses)) << " (top-1 points)";
      if (!outside.empty()) out << "; no mixed configuration at or below the BitOps of " << join(outside);
      out << ".\n";
    }
    for (const auto& uniform : r.groups) {
      if (uniform.kind != "uniform" || uniform.model != mixed.model || uniform.dataset != mixed.dataset) continue;
      out << "  hypervolume: mixed " << fmt("%.4g", mixed.hypervolume) << ", uniform " << fmt("%.4g", uniform.hypervolume)
          << (mixed.hypervolume > uniform.hypervolume ? " (mixed larger)" : " (mixed not larger)") << "\n";
    }
    int undecided = 0, configurations = 0;
    for (size_t i : mixed.configurations) {
      ++configurations;
      if (r.configurations[i].undecided()) ++undecided;
    }
    if (undecided > 0) {
      out << "  warning: " << undecided << " of " << configurations
          << " configurations have a seed whose search ended undecided (marked \"undecided!\"): their "
             "allocations are partly argmaxes of near-equal probabilities.\n";
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
    const std::string h = "budget " + fmt("%.4g", b.budget) + " " + b.cost + " (tolerance " +
                          fmt("%.3g", 100 * b.tolerance) + "%): " + b.model + "/" + b.dataset + "/w" + b.weight_bits +
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
        << (b.lambda ? fmt("%.4g", *b.lambda) : "-") << sep << (b.chosen_cost ? fmt("%.4g", *b.chosen_cost) : "-")
        << sep << (b.top1 ? fmt("%.2f", *b.top1) : "-") << sep << b.own_probes << " / " << b.family_probes << sep
        << (b.allocation.empty() ? (b.reason.empty() ? "-" : b.reason) : b.allocation) << (markdown ? " |" : "")
        << "\n";
  }
  return out.str();
}

/// "23 search-only probes for 6 budgets, 3.83 per budget".
std::string probe_count_text(const ParetoReport& r) {
  return std::to_string(r.probes) + " search-only probes for " + std::to_string(r.budgets.size()) + " budgets, " +
         fmt("%.2f", double(r.probes) / double(std::max<size_t>(1, r.budgets.size()))) + " per budget";
}

/// The `edmips export` command of every configuration on a mixed front (its
/// first seed's trial), cheapest first; empty without any.
std::string export_commands(const ParetoReport& r) {
  std::ostringstream out;
  for (const auto& g : r.groups) {
    if (g.kind == "uniform") continue;
    std::vector<size_t> front = g.front;
    std::sort(front.begin(), front.end(), [&](size_t a, size_t b) {
      return r.configurations[a].cost < r.configurations[b].cost;
    });
    for (size_t i : front) {
      const auto& c = r.configurations[i];
      if (c.trials.empty()) continue;
      const auto& t = c.trials.front();
      std::string name = c.model;
      for (size_t at; (at = name.find(".onnx")) != std::string::npos;) name.erase(at, 5);
      name += "-" + label(c);
      for (auto& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-') ch = '_';
      }
      out << "# " << g.name << ", " << label(c) << ": top-1 " << fmt("%.2f", t.at("top1").get<double>())
          << " % (seed " << t.at("seed").dump() << "; mean " << fmt("%.2f", c.top1_mean) << " of "
          << c.trials.size() << "), " << fmt("%.3f", t.at("normalised_bits").get<double>()) << " bits\n"
          << "edmips export " << (fs::path(t.at("source").get<std::string>()) / "trials" / t.at("id").get<std::string>()).string()
          << " --format qdq --out " << name << ".onnx\n";
    }
  }
  return out.str();
}

std::string group_heading(const ParetoReport& r, const Group& g) {
  return g.name + ": " + std::to_string(g.configurations.size()) + " configurations, " + std::to_string(g.front.size()) +
         " on the front, hypervolume " + fmt("%.4g", g.hypervolume) + " (cost " + to_string(r.cost) + ")";
}

}  // namespace

void print_report(std::ostream& out, const ParetoReport& r) {
  out << r.trials << " finished trials in " << r.configurations.size() << " configurations from";
  for (const auto& s : r.sources) out << " " << s;
  out << "\nhypervolume reference point: " << to_string(r.cost) << " " << fmt("%.4g", r.reference.cost) << ", top-1 "
      << fmt("%.2f", r.reference.accuracy) << "%\n\n";
  if (!r.dominance.empty()) {
    out << "Mixed precision against uniform baselines (top-1 %, BitOps):\n" << dominance_table(r, false) << "\n"
        << "Summary (seed means):\n" << verdict(r) << "\n";
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
         "top1_std,bitops_mean,normalised_bits_mean,expected_normalised_bits_mean,weight_memory_bits_mean,cost,on_front,"
         "budget,probes,trial_ids\n";
  for (const auto& c : r.configurations) {
    std::string ids;
    for (const auto& t : c.trials) ids += (ids.empty() ? "" : " ") + t.at("id").get<std::string>();
    csv << '"' << c.group << "\"," << c.configuration_id << ',' << c.kind << ',' << c.model << ',' << c.dataset << ','
        << c.weight_bits << ',' << c.activation_bits << ','
        << (c.complexity_penalty ? fmt("%.10g", *c.complexity_penalty) : "") << ',' << c.trials.size() << ','
        << fmt("%.6g", c.top1_mean) << ',' << fmt("%.6g", c.top1_std) << ',' << fmt("%.10g", c.bitops_mean) << ','
        << fmt("%.6g", c.normalised_bits_mean) << ','
        << (c.expected_normalised_bits_mean ? fmt("%.6g", *c.expected_normalised_bits_mean) : "") << ','
        << fmt("%.10g", c.weight_memory_bits_mean) << ',' << fmt("%.10g", c.cost) << ',' << (c.on_front ? 1 : 0) << ','
        << (c.budget ? fmt("%.10g", *c.budget) : "") << ',' << (c.probes_mean ? fmt("%.4g", *c.probes_mean) : "")
        << ',' << ids << '\n';
  }
  write_file_atomically(directory / "pareto.csv", csv.str());

  std::ostringstream md;
  md << "# EdMIPS sweep report\n\n" << r.trials << " finished trials, " << r.configurations.size()
     << " configurations (seeds averaged), from";
  for (const auto& s : r.sources) md << " `" << s << "`";
  md << ".\n\n## Mixed precision against uniform precision\n\n";
  if (r.dominance.empty()) {
    md << "No uniform baselines and mixed-precision trials of the same model and dataset yet.\n\n";
  } else {
    md << "For each uniform baseline: the most accurate mixed-precision configuration whose BitOps are no higher, "
          "and the mixed front's accuracy interpolated (in log BitOps) at the baseline's BitOps. A positive gain "
          "means mixed precision is better at no more cost.\n\n"
       << dominance_table(r, true) << "\n**Summary** (seed means):\n\n```\n" << verdict(r) << "```\n\n";
  }
  md << "![accuracy vs BitOps](plots/accuracy_vs_bitops.png)\n\n## Fronts\n\nHypervolume reference point: "
     << to_string(r.cost) << " " << fmt("%.4g", r.reference.cost) << ", top-1 " << fmt("%.2f", r.reference.accuracy)
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
        "runner-up by at least " << fmt("%.2f", kDecidedMargin) << " (docs/search-settings.md).\n\n"
     << "![candidate probabilities during the search](plots/search_probabilities.png)\n\n"
     << "Plots (PNG and SVG) are drawn by `analysis/plots.py` from the files above; `scripts/report.sh` makes "
        "everything.\n";
  write_file_atomically(directory / "report.md", md.str());
}

}  // namespace edmips
