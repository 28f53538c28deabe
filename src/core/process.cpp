#include "core/process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>

extern char** environ;

namespace edmips {
namespace fs = std::filesystem;

void write_stderr_line(const std::string& line) {
  std::cerr.flush();
  std::fflush(stderr);
  const std::string text = line + "\n";
  const char* data = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t written = ::write(STDERR_FILENO, data, left);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;  // stderr is gone: nothing better to do
    data += written;
    left -= size_t(written);
  }
}

std::string host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "?";
  return host;
}

int run_program(const std::vector<std::string>& argv, bool quiet) {
  if (argv.empty()) return -1;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (quiet) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

fs::path executable_directory() {
  std::error_code ec;
  const auto self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : self.parent_path();
}

std::vector<fs::path> share_directories() {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("EDMIPS_SHARE_DIR"); env && *env) dirs.emplace_back(env);
  const auto bin = executable_directory();
  dirs.push_back((bin / ".." / "share" / "edmips").lexically_normal());  // PREFIX/bin/edmips
  dirs.push_back((bin / ".." / "..").lexically_normal().parent_path());   // SOURCE/build/src/edmips
  return dirs;
}

std::optional<fs::path> find_share_file(const std::string& relative) {
  for (const auto& dir : share_directories()) {
    std::error_code ec;
    if (fs::is_regular_file(dir / relative, ec)) return dir / relative;
  }
  return std::nullopt;
}

}  // namespace edmips
