// core: runs another program (no shell, so no quoting pitfalls) and finds the
// files edmips ships beside its binary. Standard library and POSIX only.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace edmips {

/// Runs argv[0] (searched in PATH) with the given arguments, inheriting
/// stdin/stdout/stderr; returns its exit status, 128 + signal, or -1 when it
/// could not be started.
int run_program(const std::vector<std::string>& argv, bool quiet = false);

/// Writes `line` and a newline to stderr in one write(2) where the system
/// allows (a pipe takes up to PIPE_BUF bytes whole), so lines from ranks that
/// share a terminal or an mpirun stream never interleave mid-line.
void write_stderr_line(const std::string& line);

/// This machine's host name, or "?" when it cannot be read.
std::string host_name();

/// The directory of the running edmips binary.
std::filesystem::path executable_directory();

/// Where edmips looks for its shared files (analysis/plots.py, the sweep
/// schema and examples), in order: $EDMIPS_SHARE_DIR, PREFIX/share/edmips
/// beside an installed bin/edmips, and the source tree above a build tree.
std::vector<std::filesystem::path> share_directories();

/// The first share directory holding `relative`, if any.
std::optional<std::filesystem::path> find_share_file(const std::string& relative);

}  // namespace edmips
