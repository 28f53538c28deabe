// core: small filesystem helpers with the project's error idiom (atomic
// replacement, whole-file reads). Depends on the standard library only.
#pragma once

#include <filesystem>
#include <string>

namespace edmips {

/// Reads a whole file; throws Error naming the file when it cannot, or when it
/// holds more than `max_bytes` (reading stops there: /dev/zero is refused too).
std::string read_text_file(const std::filesystem::path& path, size_t max_bytes = size_t(-1));

/// Whether write_file_atomically waits for the data to reach the disk.
enum class Durability {
  flushed,    ///< fsync before the rename: survives a power loss (checkpoints, results)
  replaceable ///< no fsync: readers never see half a file, but a crash may lose the last
              ///< version (files rebuilt from the journal, such as status.json)
};

/// Writes `content` to a temporary file beside `path` and renames it over
/// `path`, so readers see the old or the new file, never half.
void write_file_atomically(const std::filesystem::path& path, const std::string& content,
                           Durability durability = Durability::flushed);

}  // namespace edmips
