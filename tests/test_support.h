// tests: shared helpers (temporary directories, running the edmips binary).
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <zlib.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

/// Ends a test whose precondition is missing here (no GPU, no dataset) with a
/// marker that CTest counts as skipped, not passed (SKIP_REGULAR_EXPRESSION
/// in tests/CMakeLists.txt); such tests carry a label (gpu, fashion_mnist)
/// so `ctest -LE gpu` leaves them out. Catch2 v2 has no skip of its own.
#define EDMIPS_SKIP(reason)             \
  do {                                  \
    WARN("EDMIPS-SKIP: " << (reason));  \
    return;                             \
  } while (0)

namespace edmips::testing {

/// A fresh directory removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("edmips-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

/// Runs a shell command; returns its exit status (or 128+signal).
inline int run_command(const std::string& command) {
  const int status = std::system(command.c_str());
  if (status == -1) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

/// A child process started with arguments (no shell); killed if still running
/// when the object goes away.
class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv, const std::string& log_path = "/dev/null") {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~ChildProcess() {
    if (pid_ > 0 && !waited_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  pid_t pid() const { return pid_; }
  void signal(int s) { ::kill(pid_, s); }
  /// Exit code, or 128+signal.
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    waited_ = true;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
  }
  bool running() {
    if (waited_) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      waited_ = true;
      return false;
    }
    return true;
  }

 private:
  pid_t pid_ = -1;
  bool waited_ = false;
};

/// Polls `condition` every 50 ms until it holds or `timeout_s` passes.
template <typename F>
bool wait_until(F condition, double timeout_s) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

inline std::string be32(uint32_t v) {
  return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

inline std::string idx_images(uint32_t count, uint32_t rows, uint32_t cols, uint32_t magic = 0x803) {
  std::string s = be32(magic) + be32(count) + be32(rows) + be32(cols);
  for (uint32_t i = 0; i < count * rows * cols; ++i) s.push_back(char(i % 251));
  return s;
}

inline std::string idx_labels(uint32_t count) {
  std::string s = be32(0x801) + be32(count);
  for (uint32_t i = 0; i < count; ++i) s.push_back(char(i % 10));
  return s;
}

inline void write_gzip(const std::filesystem::path& path, const std::string& content) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, content.data(), unsigned(content.size()));
  gzclose(f);
}

/// A small MNIST-format dataset: gzip train files, raw test files.
inline void write_mnist(const TempDir& dir, uint32_t train = 20, uint32_t test = 10) {
  write_gzip(dir / "train-images-idx3-ubyte.gz", idx_images(train, 6, 5));
  write_gzip(dir / "train-labels-idx1-ubyte.gz", idx_labels(train));
  write_file(dir / "t10k-images-idx3-ubyte", idx_images(test, 6, 5));
  write_file(dir / "t10k-labels-idx1-ubyte", idx_labels(test));
}

/// The edmips binary beside this test binary (build/tests -> build/src), or
/// $EDMIPS_BINARY. Found at run time, not compiled in, so the tests' object
/// files do not depend on where the checkout lies (ccache hits across clones).
inline std::string edmips_binary() {
  if (const char* given = std::getenv("EDMIPS_BINARY"); given && *given) return given;
  const auto self = std::filesystem::read_symlink("/proc/self/exe");
  return (self.parent_path().parent_path() / "src" / "edmips").string();
}

/// The checkout's root: $EDMIPS_SOURCE_DIR, else the folder above the build
/// folder holding this test binary (ROOT/build/tests/edmips_tests, as
/// scripts/build.sh lays it out). Tests that run the project's scripts need it.
inline std::filesystem::path source_dir() {
  if (const char* given = std::getenv("EDMIPS_SOURCE_DIR"); given && *given) return given;
  const auto root = std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path().parent_path();
  if (!std::filesystem::exists(root / "scripts" / "python.sh")) {
    throw std::runtime_error("set EDMIPS_SOURCE_DIR to the checkout's root (not found above the test binary)");
  }
  return root;
}

/// Runs one of the project's Python scripts with Debian's interpreter
/// (scripts/python.sh); returns its exit status.
inline int run_python(const std::string& script_and_arguments) {
  return run_command("bash '" + (source_dir() / "scripts" / "python.sh").string() + "' " + script_and_arguments);
}

inline bool fashion_mnist_available() {
  return std::filesystem::exists(std::string(FASHION_MNIST_DIR) + "/train-images-idx3-ubyte.gz");
}

}  // namespace edmips::testing
