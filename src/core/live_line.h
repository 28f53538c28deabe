// core: one status line that updates in place on a terminal (batch progress),
// kept apart from ordinary lines. Only where a person watches: stderr is a
// terminal, TERM is not "dumb" and the process does not run under Slurm;
// elsewhere (logs) callers print one line per epoch instead.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

namespace edmips {

class LiveLine {
 public:
  /// Whether a live line makes sense for this process's stderr.
  static bool wanted();

  /// Replaces the live line with `text` (at most every 200 ms, unless `force`).
  void show(const std::string& text, bool force = false);
  /// Erases the live line, leaving the cursor at the start of an empty row.
  void clear();
  /// Prints `line` and a newline to stderr above the live line.
  void print(const std::string& line);

 private:
  std::mutex mutex_;
  bool visible_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace edmips
