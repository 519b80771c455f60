// vessel-runtime: an OCI runtime with runc's command line, for containerd
// (io.containerd.runc.v2 with BinaryName), Podman (--runtime) and CRI-O.
// Each container runs in its own Vessel VM. See docs/kubernetes.md.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "base/log.h"
#include "verbs.h"

namespace vessel::ocirt {

namespace {
bool g_log_to_file = false;
}

void set_log_to_file(bool on) {
  g_log_to_file = on;
}

void report_error(const std::string& message) {
  log::error(message);
  // runc prints its error on stderr too; callers that read --log (the shim)
  // and those that read stderr (conmon, people) both see it.
  if (g_log_to_file) {
    std::string line = "vessel-runtime: " + message + "\n";
    ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
    (void)unused;
  }
}

}  // namespace vessel::ocirt

int main(int argc, char** argv) {
  using namespace vessel::ocirt;
  vessel::log::set_program("vessel-runtime");
  CLI::App app{"vessel-runtime: an OCI runtime running each container in its own VM",
               "vessel-runtime"};
  app.require_subcommand(1);
  app.fallthrough();
  Global g;
  app.add_option("--root", g.root,
                 "Root directory for container state (default /run/vessel-runtime)");
  app.add_option("--log", g.log, "Log file (default: stderr)");
  app.add_option("--log-format", g.log_format, "Log format: text or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", g.debug, "Debug logging; the monitor logs its phases");
  app.add_flag("--systemd-cgroup", g.systemd_cgroup,
               "Accepted (the container's cgroups are inside its VM)");
  std::string rootless_unused, criu_unused;
  app.add_option("--rootless", rootless_unused, "true, false or auto: accepted and ignored");
  app.add_option("--criu", criu_unused, "Accepted and ignored (checkpoints are not supported)");
  app.set_version_flag("-v,--version",
                       "vessel-runtime version 0.1.0\nspec: 1.0.2\n(one VM per container)");

  std::vector<std::pair<CLI::App*, Verb>> verbs;
  add_verbs(app, g, verbs);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  int log_fd = -1;
  if (!g.log.empty()) {
    log_fd = ::open(g.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
      std::cerr << "vessel-runtime: open --log '" << g.log << "': " << std::strerror(errno)
                << std::endl;
      return 1;
    }
    vessel::log::set_fd(log_fd);
    set_log_to_file(true);
  }
  vessel::log::set_json(g.log_format == "json");
  vessel::log::set_level(g.debug ? vessel::log::Level::kDebug : vessel::log::Level::kWarn);
  for (auto& [sub, run] : verbs)
    if (sub->parsed()) return run();
  return 1;
}
