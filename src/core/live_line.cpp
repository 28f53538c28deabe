#include "core/live_line.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace edmips {

bool LiveLine::wanted() {
  const char* term = std::getenv("TERM");
  if (term && std::strcmp(term, "dumb") == 0) return false;
  if (std::getenv("SLURM_JOB_ID")) return false;
  return ::isatty(STDERR_FILENO) == 1;
}

void LiveLine::show(const std::string& text, bool force) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (!force && visible_ && now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  // Carriage return, the text, erase to the end of the row.
  std::fprintf(stderr, "\r%s\033[K", text.c_str());
  std::fflush(stderr);
  visible_ = true;
}

void LiveLine::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!visible_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  visible_ = false;
}

void LiveLine::print(const std::string& line) {
  clear();
  std::lock_guard<std::mutex> lock(mutex_);
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace edmips
