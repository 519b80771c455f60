// vessel-monitor: one per running container, started by `vessel` (see
// monitor.h). Not meant to be run by hand.
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/log.h"
#include "monitor/monitor.h"

int main(int argc, char** argv) {
  vessel::monitor::MonitorOptions o;
  vessel::log::set_program("vessel-monitor");
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        vessel::log::error(a + " needs a value");
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--root")
      o.root = value();
    else if (a == "--id")
      o.id = value();
    else if (a == "--ready-fd")
      o.ready_fd = std::atoi(value().c_str());
    else if (a == "--wait-attach")
      o.wait_attach = true;
    else if (a == "--hold")
      o.hold = true;
    else if (a == "--maintenance")
      o.maintenance = true;
    else if (a == "--debug")
      o.debug = true;
    else {
      vessel::log::error("unknown argument '" + a +
                         "' (usage: vessel-monitor --root DIR --id ID "
                         "[--ready-fd FD] [--wait-attach] [--hold] [--maintenance] [--debug])");
      return 2;
    }
  }
  if (o.root.empty() || o.id.size() != 64) {
    vessel::log::error("usage: vessel-monitor --root DIR --id ID [--ready-fd FD]");
    return 2;
  }
  vessel::log::set_program("vessel-monitor " + o.id.substr(0, 12));
  // VESSEL_PHASES=1: the phase timings of --debug in monitor.log, with the
  // VM's console still quiet (docs/performance.md).
  const char* phases = ::getenv("VESSEL_PHASES");
  if (o.debug || (phases && *phases == '1')) vessel::log::set_level(vessel::log::Level::kDebug);
  return vessel::monitor::run_monitor(o);
}
