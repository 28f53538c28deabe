// core: the project's one error type, its refinements and the exit codes they
// map to. Depends on nothing but the standard library.
#pragma once

#include <stdexcept>
#include <string>

namespace edmips {

/// Documented process exit codes (README "Exit codes").
enum class ExitCode : int {
  ok = 0,
  failure = 1,          ///< a trial or sweep ran and something in it failed
  invalid_input = 2,    ///< bad command line, config or sweep file: nothing was run
  data_error = 3,       ///< a dataset file is missing or malformed, or a file cannot be read or written
  interrupted = 4,      ///< stopped by SIGTERM/SIGINT/SIGUSR2 after checkpointing
  internal_error = 70,  ///< a bug: please report it
};

/// Base of every error this project throws on purpose.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ExitCode code = ExitCode::failure)
      : std::runtime_error(message), code_(code) {}
  ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

/// A user-supplied file or option is invalid (exit code 2).
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& message) : Error(message, ExitCode::invalid_input) {}
};

/// A dataset file is missing, truncated or has the wrong format (exit code 3).
class DataError : public Error {
 public:
  explicit DataError(const std::string& message) : Error(message, ExitCode::data_error) {}
};

/// A file cannot be read or written: permissions, a full disk, a damaged
/// journal or checkpoint (exit code 3, as data errors).
class IoError : public Error {
 public:
  explicit IoError(const std::string& message) : Error(message, ExitCode::data_error) {}
};

/// Training produced a NaN or infinite loss.
class DivergenceError : public Error {
 public:
  explicit DivergenceError(const std::string& message) : Error(message, ExitCode::failure) {}
};

/// A stop was requested by a signal; state was saved before throwing.
class Interrupted : public Error {
 public:
  explicit Interrupted(const std::string& message) : Error(message, ExitCode::interrupted) {}
};

/// Messages stay readable whatever the input: one longer than `limit` bytes
/// (a multi-megabyte key or path echoed back) keeps its start and end, with
/// how much was cut in between.
inline std::string shorten_message(const std::string& message, size_t limit = 3000) {
  if (message.size() <= limit) return message;
  const size_t tail = limit / 4, head = limit - tail;
  return message.substr(0, head) + " [... " + std::to_string(message.size() - head - tail) + " bytes cut ...] " +
         message.substr(message.size() - tail);
}

}  // namespace edmips
