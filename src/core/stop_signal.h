// core: turns SIGTERM, SIGINT and SIGUSR2 into a flag that long-running work
// polls at safe points (after a batch), so it can checkpoint and stop.
#pragma once

#include <atomic>

namespace edmips {

/// Installs the handlers (idempotent) and returns the flag they set. The
/// sweep's abort watcher sets the same flag when the coordinator asks.
std::atomic<bool>& install_stop_signal_handlers();

/// The signal that set the flag, or 0.
int stop_signal_number();

/// Sets the flag as if a signal had arrived (used by the sweep coordinator to
/// pass a stop on to trials, and by tests).
void request_stop(int signal_number);

}  // namespace edmips
