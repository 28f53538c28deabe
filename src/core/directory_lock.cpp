#include "core/directory_lock.h"

#include <fcntl.h>
#include <sys/file.h>
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
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
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

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace edmips
