#include "core/directory_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "core/error.h"
#include "core/process.h"

namespace edmips {

namespace {

std::string holder_text() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char since[32];
  std::strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return "host " + host_name() + ", PID " + std::to_string(::getpid()) + ", since " + since;
}

std::string read_holder(int fd) {
  char buffer[512] = {};
  const ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
  std::string text = n > 0 ? std::string(buffer, size_t(n)) : std::string("an unknown process");
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text;
}

}  // namespace

DirectoryLock::DirectoryLock(const std::filesystem::path& directory) {
  const auto path = (directory / kFileName).string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot open the lock file: " + std::strerror(errno), ExitCode::data_error);
  // A few tries: `edmips status` holds a shared lock for an instant (probe_directory_lock).
  int error = 0;
  for (int attempt = 0;; ++attempt) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    error = errno;
    if (error != EWOULDBLOCK || attempt == 19) break;
    error = 0;
    ::usleep(50 * 1000);
  }
  if (error != 0) {
    if (error == EWOULDBLOCK) {
      const std::string holder = read_holder(fd);
      ::close(fd);
      throw ConfigError(directory.string() + " is in use by another sweep (" + holder + "; lock " + path +
                        "): wait for it to end, stop it, or choose another --out");
    }
    ::close(fd);
    warning_ = path + ": cannot lock (" + std::strerror(error) +
               "; on Lustre mount with -o flock): make sure no other sweep uses this directory";
    return;
  }
  // Ours now; a previous holder that died left its text, which we replace.
  const std::string text = holder_text() + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) != ssize_t(text.size())) {
    // The lock holds without the note; only the message to a second sweep is poorer.
  }
  fd_ = fd;
}

LockState probe_directory_lock(const std::filesystem::path& directory, std::string* holder) {
  const auto path = (directory / DirectoryLock::kFileName).string();
  // Read-only and without blocking: a FIFO in its place is no lock.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return LockState::unknown;
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return LockState::unknown;
  }
  LockState state = LockState::unknown;
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::flock(fd, LOCK_UN);
    state = LockState::free;
  } else if (errno == EWOULDBLOCK) {
    state = LockState::held;
    if (holder) *holder = read_holder(fd);
  }
  ::close(fd);
  return state;
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace edmips
