// core: small filesystem helpers with the project's error idiom (atomic
// replacement, whole-file reads). Depends on the standard library only.
#pragma once

#include <filesystem>
#include <string>

namespace edmips {

/// Reads a whole file; throws Error naming the file when it cannot.
std::string read_text_file(const std::filesystem::path& path);

/// Writes `content` to a temporary file beside `path`, flushes it to disk and
/// renames it over `path`, so readers see the old or the new file, never half.
void write_file_atomically(const std::filesystem::path& path, const std::string& content);

}  // namespace edmips
