// core: small filesystem helpers with the project's error idiom (atomic
// replacement, whole-file reads). Depends on the standard library only.
#pragma once

#include <filesystem>
#include <string>
#include <system_error>

namespace edmips {

/// Opens `path` read-only and returns its descriptor (the caller closes it).
/// Anything but a regular file (a FIFO, a socket, a device, a directory) is
/// refused with an IoError naming the file and what it is, without blocking
/// on it: a FIFO with no writer would otherwise hang the open or the read.
int open_regular_file(const std::filesystem::path& path);

/// Reads a whole regular file; throws IoError naming the file when it cannot,
/// when it is not a regular file, or when it holds more than `max_bytes`.
std::string read_text_file(const std::filesystem::path& path, size_t max_bytes = size_t(-1));

/// Whether write_file_atomically waits for the data to reach the disk.
enum class Durability {
  flushed,    ///< fsync before the rename: survives a power loss (checkpoints, results)
  replaceable ///< no fsync: readers never see half a file, but a crash may lose the last
              ///< version (files rebuilt from the journal, such as status.json)
};

/// Writes `content` to a temporary file beside `path` (`NAME.tmp.PID`) and
/// renames it over `path`, so readers see the old or the new file, never half.
void write_file_atomically(const std::filesystem::path& path, const std::string& content,
                           Durability durability = Durability::flushed);

/// Removes the temporary files write_file_atomically left in `directory`
/// after a crash or a full disk. Call it only as the directory's sole writer
/// (none of them is then in use). The first form throws on a failure, the
/// second reports it in `error` and goes on.
void remove_stale_temporaries(const std::filesystem::path& directory);
void remove_stale_temporaries(const std::filesystem::path& directory, std::error_code& error);

}  // namespace edmips
