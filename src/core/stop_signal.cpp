#include "core/stop_signal.h"

#include <csignal>

namespace edmips {
namespace {
// Signal handlers can only reach process-wide state; these two are the only
// globals in the project and are written only by the handler / request_stop.
std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int signal_number) {
  g_signal.store(signal_number);
  g_stop.store(true);
}
}  // namespace

std::atomic<bool>& install_stop_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int s : {SIGTERM, SIGINT, SIGUSR2}) sigaction(s, &action, nullptr);
  return g_stop;
}

int stop_signal_number() { return g_signal.load(); }

void request_stop(int signal_number) { on_stop_signal(signal_number); }

}  // namespace edmips
