#include "sweep/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "core/error.h"
#include "core/files.h"
#include "core/json_reader.h"

namespace edmips {
namespace fs = std::filesystem;

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[40];
  const size_t n = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buffer + n, sizeof buffer - n, ".%03dZ", int(millis));
  return buffer;
}

namespace {

void apply_event(JournalState& state, const nlohmann::json& e) {
  const auto type = event_type_of(e);
  ++state.events;
  if (type == EventType::sweep_started) ++state.runs;
  else if (type == EventType::trial_started) {
    const std::string trial = e.at("trial");
    state.started.insert(trial);
    if (e.contains("summary")) state.started_summaries[trial] = e.at("summary");
  } else if (type == EventType::budget_decided) state.budgets[e.at("group").get<std::string>()] = e;
  else if (type == EventType::trial_finished) state.finished[e.at("trial").get<std::string>()] = e;
  else if (type == EventType::trial_failed) ++state.failures[e.at("trial").get<std::string>()];
}

/// The fields any event may carry and the JSON type each must have: a line
/// with one of the wrong type is a damaged journal for every reader alike.
void check_event_fields(const nlohmann::json& e) {
  using T = nlohmann::json::value_t;
  static const std::vector<std::pair<const char*, std::vector<T>>> fields = {
      {"time", {T::string}},           {"trial", {T::string}},
      {"group", {T::string}},          {"sweep", {T::string}},   {"error", {T::string}},
      {"message", {T::string}},        {"host", {T::string}},    {"will_retry", {T::boolean}},
      {"rank", {T::number_integer, T::number_unsigned}},         {"attempt", {T::number_integer, T::number_unsigned}},
      {"trials", {T::number_integer, T::number_unsigned}},       {"budgets", {T::number_integer, T::number_unsigned}},
      {"result", {T::object}},         {"summary", {T::object}}, {"reason", {T::string}},
      {"retrain", {T::string}}};
  const auto check = [](const nlohmann::json& object, const std::string& where, const char* key,
                        const std::vector<T>& types, bool required) {
    const auto it = object.find(key);
    if (it == object.end()) {
      if (required) throw std::invalid_argument("no \"" + where + key + "\" field");
      return;
    }
    if (std::find(types.begin(), types.end(), it->type()) != types.end()) return;
    const T first = types[0];
    throw std::invalid_argument("\"" + where + key + "\" is " + shorten_message(describe_json(*it), 200) + ", not " +
                                (first == T::string    ? "a string"
                                 : first == T::boolean ? "a boolean"
                                 : first == T::object  ? "an object"
                                 : first == T::number_float ? "a number"
                                                            : "an integer"));
  };
  check(e, "", "event", {T::string}, true);
  for (const auto& [key, types] : fields) check(e, "", key, types, false);
  // What the readers take as numbers (pareto, report, the budget planner).
  const std::vector<T> number = {T::number_float, T::number_integer, T::number_unsigned};
  std::vector<T> number_or_null = number;
  number_or_null.push_back(T::null);
  const auto type = event_type_of(e);
  if (type == EventType::trial_finished) {
    check(e, "", "trial", {T::string}, true);
    check(e, "", "result", {T::object}, true);
    const auto& result = e.at("result");
    for (const char* key : {"top1", "top5", "test_loss", "validation_top1"}) {
      check(result, "result/", key, number_or_null, false);
    }
    for (const char* key : {"bitops", "normalised_bits", "weight_memory_bits"}) check(result, "result/", key, number, false);
    check(result, "result/", "test_images", {T::number_integer, T::number_unsigned, T::null}, false);
    check(result, "result/", "allocation", {T::object}, false);
  } else if (type == EventType::budget_decided) {
    check(e, "", "group", {T::string}, true);
    check(e, "", "state", {T::string}, true);
    check(e, "", "cost", {T::string}, false);  // the measure's name
    for (const char* key : {"budget", "tolerance", "complexity_penalty", "lambda", "chosen_cost"}) check(e, "", key, number, false);
    check(e, "", "allocation", {T::object}, false);
  } else if (type == EventType::trial_started || type == EventType::trial_failed ||
             type == EventType::trial_interrupted) {
    check(e, "", "trial", {T::string}, true);
  }
}

}  // namespace

std::optional<double> decided_complexity_penalty(const nlohmann::json& e) {
  for (const char* key : {"complexity_penalty", "lambda"}) {
    if (e.contains(key) && e[key].is_number()) return e[key].get<double>();
  }
  return std::nullopt;
}

size_t for_each_journal_event(const std::string& text, const std::string& source,
                              const std::function<void(const nlohmann::json&)>& visit, bool* torn_tail) {
  size_t start = 0, line_number = 0;
  if (torn_tail) *torn_tail = false;
  while (start < text.size()) {
    ++line_number;
    const size_t end = text.find('\n', start);
    const bool last = end == std::string::npos || end + 1 >= text.size();
    const std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    nlohmann::json event;
    std::string problem;
    if (end == std::string::npos) {
      problem = "a line without its newline";  // cut short
    } else {
      try {
        event = parse_json_text(line, source);  // depth-limited, as every JSON input
        if (!event.is_object()) throw std::invalid_argument("not a JSON object");
        check_event_fields(event);
      } catch (const std::exception& e) {
        problem = e.what();
      }
    }
    if (!problem.empty()) {
      if (last) {  // a torn last line: a crash mid-write, or a line being written now
        if (torn_tail) *torn_tail = true;
        return start;
      }
      throw IoError(shorten_message(source + ":" + std::to_string(line_number) +
                                    ": corrupt journal line (" + problem +
                                    "); the sweep's history cannot be trusted", 1500));
    }
    try {
      visit(event);
    } catch (const nlohmann::json::exception& e) {
      throw IoError(source + ":" + std::to_string(line_number) + ": malformed event: " + e.what());
    }
    start = end + 1;
  }
  return text.size();
}

namespace {

/// Parses the journal text; returns the byte length of the valid prefix.
size_t replay(const std::string& text, const fs::path& path, JournalState& state) {
  bool torn = false;
  const size_t valid = for_each_journal_event(
      text, path.string(), [&state](const nlohmann::json& e) { apply_event(state, e); }, &torn);
  if (torn) {
    state.torn_tail = true;
    state.torn_bytes = text.size() - valid;
  }
  return valid;
}

}  // namespace

JournalState parse_journal_text(const std::string& text, const std::string& source) {
  JournalState state;
  replay(text, source, state);
  return state;
}

JournalState read_journal(const fs::path& path) {
  JournalState state;
  if (!fs::exists(path)) return state;
  replay(read_text_file(path), path, state);
  return state;
}

Journal::Journal(const fs::path& path) : path_(path) {
  std::string text;
  if (fs::exists(path)) text = read_text_file(path);
  const size_t valid = replay(text, path, initial_);
  if (valid < text.size()) fs::resize_file(path, valid);  // drop the torn tail
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(path.string() + ": cannot open journal: " + std::strerror(errno));
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

void Journal::append(nlohmann::json event) {
  event["time"] = utc_now();
  const std::string line = event.dump() + "\n";
  // One write() of the whole line: a crash leaves at most a torn last line.
  size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(path_.string() + ": journal write failed: " + std::strerror(errno));
    }
    written += size_t(n);
  }
  if (::fdatasync(fd_) != 0) throw IoError(path_.string() + ": journal flush failed: " + std::strerror(errno));
}

const std::vector<std::string>& result_columns() {
  static const std::vector<std::string> columns = {
      "trial_id",        "configuration_id", "kind",       "model",           "dataset",
      "seed",            "complexity_penalty", "weight_bits", "activation_bits",
      "top1",            "top5",          "test_loss",       "best_epoch",      "best_top1",
      "best_top5",       "bitops",          "normalised_bits",
      "expected_normalised_bits", "decided_layers", "searched_layers", "smallest_margin",
      "weight_memory_bits", "activation_memory_bits", "table_cost", "table_unit", "total_macs", "quantized_macs",
      "allocation",      "search_s",      "train_s",         "rank",
      "attempt",         "duration_s",    "budget",          "probes",
      "in_current_sweep"};
  return columns;
}

namespace {
std::string csv_value(const nlohmann::json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string quoted = "\"";
    for (char c : s) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
  }
  if (v.is_number_float()) {
    std::ostringstream out;
    out.precision(10);
    out << v.get<double>();
    return out.str();
  }
  return v.dump();
}
}  // namespace

namespace {
std::vector<std::string> result_row_unchecked(const nlohmann::json& e);
}  // namespace

std::vector<std::string> result_row(const nlohmann::json& e) {
  try {
    return result_row_unchecked(e);
  } catch (const nlohmann::json::exception& error) {
    throw IoError("journal: the trial_finished event of trial " + e.value("trial", std::string("?")) +
                  " lacks what a finished trial records (" + error.what() + ")");
  }
}

std::string allocation_text(const nlohmann::json& allocation) {
  std::string text;
  for (const auto& l : allocation.at("layers")) {
    text += (text.empty() ? "" : " ") + std::to_string(l.at("weight_bits").get<int>()) + "/" +
            std::to_string(l.at("activation_bits").get<int>());
  }
  return text;
}

namespace {
std::vector<std::string> result_row_unchecked(const nlohmann::json& e) {
  const auto& r = e.at("result");
  const auto& s = e.at("summary");
  const std::string allocation = allocation_text(r.at("allocation"));
  const nlohmann::json expected =
      r.contains("search") ? r["search"].value("expected_normalised_bits", nlohmann::json()) : nlohmann::json();
  // How decided the search ended (search trials of this engine; empty otherwise).
  const auto decision = r.contains("search") ? r["search"].value("decision", nlohmann::json::object())
                                             : nlohmann::json::object();
  auto decision_value = [&](const char* key) { return decision.value(key, nlohmann::json()); };
  // The best per-epoch test evaluation (train.eval_every); empty without one.
  const auto best_epoch = r.value("best_epoch", nlohmann::json());
  auto best = [&](const char* key) { return best_epoch.is_object() ? best_epoch.value(key, nlohmann::json()) : nlohmann::json(); };
  const std::vector<nlohmann::json> values = {
      e.at("trial"),          s.value("configuration_id", nlohmann::json()), s.at("kind"),           s.at("model"),          s.at("dataset"),
      s.at("seed"),           s.at("complexity_penalty"), s.at("weight_bits"), s.at("activation_bits"),
      r.at("top1"),           r.value("top5", nlohmann::json()),  // absent from results before top-5 was recorded
      r.at("test_loss"),      best("epoch"),          best("top1"),           best("top5"),
      r.at("bitops"),         r.at("normalised_bits"),
      expected,               decision_value("decided_layers"), decision_value("searched_layers"),
      decision_value("smallest_margin"), r.at("weight_memory_bits"),
      // Absent from results before cost models; table_* only under a table cost.
      r.value("activation_memory_bits", nlohmann::json()), r.value("table_cost", nlohmann::json()),
      r.value("table_unit", nlohmann::json()), r.at("total_macs"), r.at("quantized_macs"),
      allocation,             r.at("timings").at("search_s"), r.at("timings").at("train_s"), e.at("rank"),
      e.at("attempt"),        e.at("duration_s"),
      // Budget retrainings: the budget and the probes it started; probes: the
      // budget that started them.
      s.value("budget", nlohmann::json()), s.value("probes", nlohmann::json())};
  std::vector<std::string> row;
  for (const auto& v : values) row.push_back(csv_value(v));
  return row;
}
}  // namespace

void write_results_csv(const fs::path& path, const std::map<std::string, nlohmann::json>& finished,
                       const std::set<std::string>& current) {
  std::string text;
  for (size_t i = 0; i < result_columns().size(); ++i) text += (i ? "," : "") + result_columns()[i];
  text += "\n";
  for (const auto& [id, event] : finished) {
    const auto row = result_row(event);
    for (size_t i = 0; i < row.size(); ++i) text += (i ? "," : "") + row[i];
    text += (current.empty() || current.count(id)) ? ",1\n" : ",0\n";
  }
  // Rebuilt from the journal at every start, so no fsync is needed.
  write_file_atomically(path, text, Durability::replaceable);
}

}  // namespace edmips
