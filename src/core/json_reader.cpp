#include "core/json_reader.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/files.h"

namespace edmips {

namespace {

/// Follows a parse to refuse what nlohmann/json would accept silently or
/// crash on: a key given twice in one object (the last would win), and
/// nesting deeper than kMaxJsonDepth (deep recursion elsewhere).
class StrictJson {
 public:
  explicit StrictJson(const std::string& source) : source_(source) {}

  bool operator()(int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        if (depth >= kMaxJsonDepth) {
          throw ConfigError(source_ + ": " + pointer() + ": nested deeper than " + std::to_string(kMaxJsonDepth) +
                            " levels");
        }
        advance();
        frames_.push_back({event == E::object_start, {}, {}, 0});
        break;
      case E::object_end:
      case E::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
      case E::key: {
        auto& frame = frames_.back();
        frame.key = parsed.get<std::string>();
        if (!frame.keys.insert(frame.key).second) {
          throw ConfigError(source_ + ": " + pointer() + ": key given twice in one object (remove one)");
        }
        break;
      }
      case E::value:
        advance();
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool object;
    std::set<std::string> keys;
    std::string key;
    size_t index;  ///< elements of an array seen so far
  };
  void advance() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
  }
  /// JSON pointer of the value being read.
  std::string pointer() const {
    std::string p;
    for (const auto& f : frames_) p += "/" + (f.object ? f.key : std::to_string(f.index == 0 ? 0 : f.index - 1));
    return p.empty() ? "/" : p;
  }
  std::string source_;
  std::vector<Frame> frames_;
};

}  // namespace

nlohmann::json parse_json_text(const std::string& text, const std::string& source) {
  // nlohmann's parser takes a NUL byte for the end of its input and would
  // ignore what follows: every byte of a file must be seen, so none may be NUL.
  if (const auto nul = text.find('\0'); nul != std::string::npos) {
    throw ConfigError(source + ": not valid JSON: byte " + std::to_string(nul + 1) +
                      " is a NUL, which JSON text never holds (a binary or damaged file)");
  }
  try {
    return nlohmann::json::parse(text, StrictJson(source));
  } catch (const nlohmann::json::exception& e) {
    // Syntax errors, and numbers out of range such as 1e999.
    throw ConfigError(source + ": not valid JSON: " + e.what());
  }
}

nlohmann::json load_json_file(const std::string& path) {
  std::string text;
  try {
    text = read_text_file(path, kMaxJsonFileBytes);
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  return parse_json_text(text, path);
}

nlohmann::json load_state_file(const std::string& path) {
  const auto text = read_text_file(path, kMaxJsonFileBytes);
  try {
    return parse_json_text(text, path);
  } catch (const ConfigError& e) {
    throw IoError(std::string(e.what()) + " (a damaged file: delete it, or restore it from a copy)");
  }
}

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}
}  // namespace

std::optional<std::string> closest_spelling(const std::string& word,
                                            const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    const size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::string describe_json(const nlohmann::json& value) {
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  switch (value.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::boolean: return "the boolean " + text;
    case nlohmann::json::value_t::string: return "the string " + text;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "the integer " + text;
    case nlohmann::json::value_t::number_float: return "the number " + text;
    case nlohmann::json::value_t::array: return "an array " + text;
    case nlohmann::json::value_t::object: return "an object " + text;
    default: return text;
  }
}

JsonObjectReader::JsonObjectReader(const nlohmann::json& object, std::string pointer,
                                   std::string source)
    : object_(object), pointer_(std::move(pointer)), source_(std::move(source)) {
  if (!object_.is_object()) fail_at(pointer_.empty() ? "/" : pointer_, "an object", object_);
}

bool JsonObjectReader::has(const std::string& key) const { return object_.contains(key); }

void JsonObjectReader::fail(const std::string& key, const std::string& expected) const {
  fail_at(path_of(key), expected, object_.at(key));
}

void JsonObjectReader::fail_at(const std::string& path, const std::string& expected,
                               const nlohmann::json& found) const {
  throw ConfigError(source_ + ": " + path + ": expected " + expected + ", found " +
                    describe_json(found));
}

const nlohmann::json& JsonObjectReader::required(const std::string& key) {
  read_.insert(key);
  if (!object_.contains(key)) {
    throw ConfigError(source_ + ": " + path_of(key) + ": required key is missing");
  }
  return object_.at(key);
}

const nlohmann::json& JsonObjectReader::raw(const std::string& key) { return required(key); }

std::string JsonObjectReader::string_value(const std::string& key,
                                           const std::optional<std::string>& fallback) {
  read_.insert(key);
  if (!has(key) && fallback) return *fallback;
  const auto& v = required(key);
  if (!v.is_string()) fail(key, "a string");
  return v.get<std::string>();
}

std::string JsonObjectReader::choice(const std::string& key, const std::vector<std::string>& allowed,
                                     const std::optional<std::string>& fallback) {
  read_.insert(key);
  if (!has(key) && fallback) return *fallback;
  std::string expected = "one of";
  for (const auto& a : allowed) expected += " \"" + a + "\"";
  const auto& v = required(key);
  if (!v.is_string()) fail(key, expected);
  const auto s = v.get<std::string>();
  if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
    if (auto near = closest_spelling(s, allowed)) expected += " (did you mean \"" + *near + "\"?)";
    fail(key, expected);
  }
  return s;
}

bool JsonObjectReader::bool_value(const std::string& key, std::optional<bool> fallback) {
  read_.insert(key);
  if (!has(key) && fallback) return *fallback;
  const auto& v = required(key);
  if (!v.is_boolean()) fail(key, "true or false");
  return v.get<bool>();
}

long long JsonObjectReader::int_value(const std::string& key, long long min, long long max,
                                      std::optional<long long> fallback) {
  read_.insert(key);
  if (!has(key) && fallback) return *fallback;
  const auto& v = required(key);
  std::ostringstream expected;
  expected << "an integer in [" << min << ", " << max << "]";
  if (!v.is_number_integer()) fail(key, expected.str());
  const auto x = v.get<long long>();
  if (x < min || x > max) fail(key, expected.str());
  return x;
}

double JsonObjectReader::number_value(const std::string& key, double min, double max,
                                      std::optional<double> fallback) {
  read_.insert(key);
  if (!has(key) && fallback) return *fallback;
  const auto& v = required(key);
  std::ostringstream expected;
  expected << "a number in [" << min << ", " << max << "]";
  if (!v.is_number()) fail(key, expected.str());
  const auto x = v.get<double>();
  if (!std::isfinite(x) || x < min || x > max) fail(key, expected.str());
  return x;
}

std::vector<int> JsonObjectReader::int_list(const std::string& key, int min, int max,
                                            std::optional<std::vector<int>> fallback) {
  read_.insert(key);
  if (!has(key) && fallback) return *fallback;
  const auto& v = required(key);
  if (!v.is_array() || v.empty()) fail(key, "a non-empty array of integers");
  std::vector<int> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const auto& item = v[i];
    const std::string path = path_of(key) + "/" + std::to_string(i);
    const std::string expected = "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    if (!item.is_number_integer()) fail_at(path, expected, item);
    const auto x = item.get<long long>();
    if (x < min || x > max) fail_at(path, expected, item);
    if (std::find(out.begin(), out.end(), static_cast<int>(x)) != out.end()) {
      fail_at(path, "no repeated values", item);
    }
    out.push_back(static_cast<int>(x));
  }
  return out;
}

JsonObjectReader JsonObjectReader::object(const std::string& key) {
  const auto& v = required(key);
  if (!v.is_object()) fail(key, "an object");
  return JsonObjectReader(v, path_of(key), source_);
}

void JsonObjectReader::reject_unknown_keys(const std::vector<std::string>& also_allowed) const {
  std::vector<std::string> known(read_.begin(), read_.end());
  known.insert(known.end(), also_allowed.begin(), also_allowed.end());
  for (const auto& item : object_.items()) {
    if (std::find(known.begin(), known.end(), item.key()) != known.end()) continue;
    std::string message = source_ + ": " + path_of(item.key()) + ": unknown key";
    if (auto near = closest_spelling(item.key(), known)) message += "; did you mean \"" + *near + "\"?";
    else {
      message += "; expected one of:";
      for (const auto& k : known) message += " " + k;
    }
    throw ConfigError(message);
  }
}

}  // namespace edmips
