// app: the table of `edmips` sub-commands, each parsing its own options and
// running its work; cli/main.cpp dispatches through it.
#pragma once

#include <string>
#include <vector>

namespace edmips {

struct SubCommand {
  const char* name;
  int (*run)(const std::vector<std::string>& args);  ///< args after the command's name; returns the exit code
};

/// Every sub-command, in the order of the usage text.
const std::vector<SubCommand>& sub_commands();
/// `edmips --help`: the commands and the exit codes.
const char* usage_text();

}  // namespace edmips
