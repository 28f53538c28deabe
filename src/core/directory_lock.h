// core: an exclusive lock on a directory for as long as a process uses it
// (flock on DIR/.edmips.lock), so two sweeps never share an output directory.
// The kernel drops the lock when the holder dies, even by kill -9, so a
// stale lock needs no cleaning. Standard library and POSIX only.
#pragma once

#include <filesystem>
#include <string>

namespace edmips {

class DirectoryLock {
 public:
  /// Takes the lock or throws ConfigError naming the holder (host, PID,
  /// since when). Where the filesystem cannot lock at all (Lustre mounted
  /// without -o flock), the lock is not held and warning() says so.
  explicit DirectoryLock(const std::filesystem::path& directory);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

  bool held() const { return fd_ >= 0; }
  const std::string& warning() const { return warning_; }
  static constexpr const char* kFileName = ".edmips.lock";

 private:
  int fd_ = -1;
  std::string warning_;
};

/// Whether a live process holds DIRECTORY's lock, without disturbing it: a
/// shared lock taken and dropped at once (a sweep starting at that moment
/// retries for a second). `unknown`: no lock file, or a filesystem that
/// cannot lock. `holder` gets the holder's note when held.
enum class LockState { held, free, unknown };
LockState probe_directory_lock(const std::filesystem::path& directory, std::string* holder = nullptr);

}  // namespace edmips
