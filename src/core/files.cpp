#include "core/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace edmips {

namespace {
constexpr const char* kTemporaryInfix = ".tmp.";  // NAME.tmp.PID
bool is_temporary(const std::filesystem::path& path) {
  return path.filename().string().find(kTemporaryInfix) != std::string::npos;
}

const char* file_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a directory";
  return "not a regular file";
}
}  // namespace

int open_regular_file(const std::filesystem::path& path) {
  // O_NONBLOCK: opening a FIFO for reading returns at once instead of
  // waiting for a writer; the check below then refuses it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw IoError(path.string() + ": cannot open for reading: " + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    throw IoError(path.string() + ": cannot inspect: " + reason);
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    throw IoError(path.string() + ": " + file_kind(info.st_mode) + ", not a regular file: give a file");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

std::string read_text_file(const std::filesystem::path& path, size_t max_bytes) {
  const int fd = open_regular_file(path);
  std::string text;
  char chunk[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string reason = std::strerror(errno);
      ::close(fd);
      throw IoError(path.string() + ": read failed: " + reason);
    }
    if (n == 0) break;
    text.append(chunk, size_t(n));
    if (text.size() > max_bytes) {
      ::close(fd);
      throw IoError(path.string() + ": larger than " + std::to_string(max_bytes >> 20) +
                    " MiB, the limit for this kind of file");
    }
  }
  ::close(fd);
  return text;
}

void write_file_atomically(const std::filesystem::path& path, const std::string& content, Durability durability) {
  const auto tmp = path.string() + kTemporaryInfix + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(tmp + ": cannot create: " + std::strerror(errno));
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string reason = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw IoError(tmp + ": write failed: " + reason);
    }
    written += static_cast<size_t>(n);
  }
  if ((durability == Durability::flushed && ::fsync(fd) != 0) || ::close(fd) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw IoError(tmp + ": flush failed: " + reason);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw IoError(path.string() + ": cannot replace: " + reason);
  }
}

void remove_stale_temporaries(const std::filesystem::path& directory) {
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    if (is_temporary(entry.path())) std::filesystem::remove(entry.path());
  }
}

void remove_stale_temporaries(const std::filesystem::path& directory, std::error_code& error) {
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    if (is_temporary(entry.path())) std::filesystem::remove(entry.path(), error);
  }
}

}  // namespace edmips
