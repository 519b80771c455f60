// A container's monitor: the process that owns its VM (QEMU, virtiofsd, the
// agent connection) for as long as the container runs, detached from any
// CLI. It writes the container's logs, records its state in the store,
// applies its restart policy, and serves clients on a unix socket (api.h).
// If it dies, the kernel kills its QEMU and virtiofsd (PR_SET_PDEATHSIG) and
// releases its lock, and the next CLI command records the container as
// exited (runtime_dir.h).
#pragma once

#include <string>

namespace vessel::monitor {

struct MonitorOptions {
  std::string root;  // state root
  std::string id;    // the container
  /// Where to report progress to whoever started us: "listening\n" once the
  /// socket accepts, then "ok <guest pid>\n" or "fail <exit code>\n<message>"
  /// for the first start of the main process. -1: nobody listens.
  int ready_fd = -1;
  /// Hold the main process until a client attaches (foreground run, start -a),
  /// so it misses none of its output.
  bool wait_attach = false;
  /// Hold the main process, with no deadline, until a client sends kStart
  /// (an OCI runtime's `create`, then `start`). Once the VM is booted and
  /// set up, "held\n" is reported on ready_fd. A stop or kill meanwhile ends
  /// the container without starting it.
  bool hold = false;
  /// Boot the VM for its files only (`vessel cp`, `export` and the API's
  /// archive endpoints on a stopped container): no network, no main
  /// process, nothing recorded in the store (the container stays as it
  /// was). "held\n" is reported once copies can be served; the monitor
  /// powers the VM off and exits once it has had no client for a moment.
  bool maintenance = false;
  bool debug = false;
};

/// Runs the container until it ends for good (no restart left); returns the
/// monitor's exit status (0 unless the monitor itself failed).
int run_monitor(const MonitorOptions& options);

}  // namespace vessel::monitor
