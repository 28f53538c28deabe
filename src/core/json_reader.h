// core: reads typed values out of user JSON while tracking the JSON path, so
// every error names the file, the path, what was expected and what was found,
// and unknown keys get the near spelling suggested. No torch.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace edmips {

/// Deepest nesting a config, sweep or journal line may have.
constexpr int kMaxJsonDepth = 64;
/// Largest config or sweep file read (a larger one, or /dev/zero, is refused).
constexpr size_t kMaxJsonFileBytes = size_t(16) << 20;

/// Parses JSON text; a syntax error, a number out of range, a key given twice
/// in one object or nesting deeper than kMaxJsonDepth becomes a ConfigError
/// naming `source` (and the JSON path where it can).
nlohmann::json parse_json_text(const std::string& text, const std::string& source);

/// Reads a file of at most kMaxJsonFileBytes and parses it as JSON (ConfigError on failure).
nlohmann::json load_json_file(const std::string& path);

/// Reads a JSON file the tool itself wrote (result.json, status.json, a trial's
/// config.json): one that cannot be read or parsed is damaged data, an
/// IoError (exit 3) naming the file, not a user's invalid input.
nlohmann::json load_state_file(const std::string& path);

/// The closest of `candidates` to `word` by edit distance, if close enough.
std::optional<std::string> closest_spelling(const std::string& word,
                                            const std::vector<std::string>& candidates);

/// Short description of a JSON value for error messages ("the string \"x\"").
std::string describe_json(const nlohmann::json& value);

/// A view of one JSON object at a known path that remembers which keys were read.
class JsonObjectReader {
 public:
  /// `pointer` is the JSON pointer of `object` ("" for the root).
  JsonObjectReader(const nlohmann::json& object, std::string pointer, std::string source);

  bool has(const std::string& key) const;
  std::string path_of(const std::string& key) const { return pointer_ + "/" + key; }
  const std::string& source() const { return source_; }

  /// Throws ConfigError "<source>: <path>: expected <expected>, found <found>".
  [[noreturn]] void fail(const std::string& key, const std::string& expected) const;
  [[noreturn]] void fail_at(const std::string& path, const std::string& expected,
                            const nlohmann::json& found) const;

  std::string string_value(const std::string& key, const std::optional<std::string>& fallback = {});
  /// One of `allowed`; the error lists them.
  std::string choice(const std::string& key, const std::vector<std::string>& allowed,
                     const std::optional<std::string>& fallback = {});
  bool bool_value(const std::string& key, std::optional<bool> fallback = {});
  long long int_value(const std::string& key, long long min, long long max,
                      std::optional<long long> fallback = {});
  double number_value(const std::string& key, double min, double max,
                      std::optional<double> fallback = {});
  /// A non-empty list of integers, each within [min, max], without duplicates.
  std::vector<int> int_list(const std::string& key, int min, int max,
                            std::optional<std::vector<int>> fallback = {});

  /// The child object at `key` (must be an object).
  JsonObjectReader object(const std::string& key);
  /// The raw value at `key`, marked as read (for values parsed elsewhere).
  const nlohmann::json& raw(const std::string& key);

  /// Rejects every key that was never read, suggesting the near spelling.
  void reject_unknown_keys(const std::vector<std::string>& also_allowed = {}) const;

 private:
  const nlohmann::json& required(const std::string& key);
  const nlohmann::json& object_;
  std::string pointer_;
  std::string source_;
  std::set<std::string> read_;
};

}  // namespace edmips
