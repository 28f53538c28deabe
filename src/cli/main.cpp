// edmips: the executable. Looks the sub-command up in app/ (each parses its
// own options there) and turns errors into the documented exit codes.
#include <boost/program_options/errors.hpp>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "app/command_line.h"
#include "core/allocator.h"
#include "core/error.h"

using namespace edmips;

int main(int argc, char** argv) {
  tune_memory_allocator();
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      std::cout << usage_text();
      return args.empty() ? int(ExitCode::invalid_input) : 0;
    }
    const std::string command = args[0];
    args.erase(args.begin());
    // `edmips report DIR | head` ends quietly and still writes its files: a
    // closed stdout fails the writes instead of killing the process. (Not
    // for sweep: Open MPI handles its own sockets' signals.)
    if (command != "sweep") std::signal(SIGPIPE, SIG_IGN);
    for (const auto& sub : sub_commands()) {
      if (command == sub.name) return sub.run(args);
    }
    std::cerr << "edmips: unknown command \"" << command << "\"\n" << usage_text();
    return int(ExitCode::invalid_input);
  } catch (const boost::program_options::error& e) {
    std::cerr << "edmips: error: " << shorten_message(e.what()) << "\n";
    return int(ExitCode::invalid_input);
  } catch (const Error& e) {
    std::cerr << "edmips: error: " << shorten_message(e.what()) << "\n";
    return int(e.code());
  } catch (const std::filesystem::filesystem_error& e) {
    // A directory or file that cannot be made or read: I/O, not a bug.
    std::cerr << "edmips: error: " << shorten_message(e.what()) << "\n";
    return int(ExitCode::data_error);
  } catch (const std::exception& e) {
    std::cerr << "edmips: internal error: " << shorten_message(e.what()) << "\n";
    return int(ExitCode::internal_error);
  }
}
