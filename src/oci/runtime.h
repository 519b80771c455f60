// The OCI runtime's lifecycle (what `vessel-runtime` does for containerd's
// runc shim, Podman's conmon and CRI-O), over the same layers as `vessel`:
// a container is a Vessel container (containers::Containers) whose monitor
// holds its main process until `start`.
//
// State: everything lives under the runtime root (`--root`, e.g.
// /run/containerd/runc/<namespace>): <root>/<id>/state.json (bundle, pid,
// annotations, the Vessel container id) and <root>/vessel, the Vessel state
// root of this runtime root (state.db, containers/, run/). `delete` removes
// both; nothing else is written.
//
// The pid of a container (its --pid-file) is a "relay": a process forked by
// `create` that stays behind as the caller's descendant (containerd's shim
// and conmon are child subreapers and reap it), attached to the monitor, with
// the stdio the runtime was given (or the pty whose master went over
// --console-socket). It forwards stdin, output, window size changes and the
// signals it gets to the container's process and exits with its status
// (128+N for a signal), so the caller sees the container's exit as runc's
// container process's. `exec` makes one per process the same way.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "containers/containers.h"
#include "oci/spec.h"

namespace vessel::oci {

/// The runtime-spec state of a container (`state` prints it as JSON).
struct State {
  std::string id;
  std::string status;  // "created", "running", "paused" or "stopped"
  pid_t pid = 0;       // the relay; 0 once stopped
  std::string bundle;
  std::string rootfs;  // root.path, absolute
  std::map<std::string, std::string> annotations;
  std::string created;  // RFC 3339
  std::string vessel_id;
  bool paused = false;  // pause was asked (the VM's vCPUs are stopped)
  /// A pod's sandbox or container: the pod directory on the host (the
  /// sandbox's, which its VM shares); "" for a container with a VM alone.
  std::string pod_dir;
  bool sandbox = false;  // this container's VM can take a pod's containers
};

/// runtime-spec's state JSON (ociVersion, id, status, pid, bundle,
/// annotations) plus runc's extras (created, rootfs, owner).
std::string to_json(const State& s);

struct CreateOptions {
  std::string bundle;          // directory with config.json (made absolute)
  std::string pid_file;        // "" = none
  std::string console_socket;  // required with process.terminal
  bool debug = false;          // the monitor logs its phases
};

struct ExecOptions {
  std::string process_file;  // a runtime-spec process (JSON)
  bool detach = false;       // return once it runs; else wait and return its status
  std::string pid_file;
  std::string console_socket;
  std::optional<bool> tty;  // overrides process.terminal
};

class Runtime {
 public:
  /// The runtime root (created, 0700) and its Vessel state root.
  static Result<std::unique_ptr<Runtime>> open(const std::string& root);

  /// Creates container `id` from `options.bundle` and returns once its VM is
  /// booted and set up and its process is held; writes --pid-file. Errors
  /// name the spec's field; nothing is left behind on failure.
  /// Pods: every container but a pod's is a VM that can take the pod's
  /// other containers (its root reaches the VM through a pod directory);
  /// a CRI sandbox (its annotations say so) runs no process; a container
  /// whose annotations name a sandbox is added to the sandbox's VM.
  Status create(const std::string& id, const CreateOptions& options);
  /// Lets the held process run; fails unless the container is "created".
  Status start(const std::string& id);
  Result<State> state(const std::string& id);
  /// All containers of this root.
  Result<std::vector<State>> list();
  /// Delivers `signal` to the container's process (in the VM). On a
  /// created container any signal ends it without starting it. `all` is
  /// accepted: every process of the container is in the VM and ends with it.
  Status kill(const std::string& id, int signal, bool all);
  /// Removes the container; one that is not stopped only with `force`
  /// (it is killed first).
  Status remove(const std::string& id, bool force);
  /// Host pids of the container's processes (its relays).
  Result<std::vector<pid_t>> pids(const std::string& id);
  /// Runs another process in a running container; returns its exit status
  /// when not detached, else 0 once it runs.
  Result<int> exec(const std::string& id, const ExecOptions& options);
  /// Freezes or thaws the VM's vCPUs (QMP stop/cont).
  Status pause(const std::string& id, bool pause);
  /// Changes a running container's limits in its guest cgroup: memory up
  /// to what the VM was given at create, a CPU quota up to its vCPUs, pids
  /// freely. Limits not given stay. kInvalidArgument beyond the VM, naming
  /// the limit; kFailedPrecondition unless running.
  Status update(const std::string& id, const ResourceUpdate& resources);

 private:
  Runtime(std::string root, std::unique_ptr<containers::Containers> cs)
      : root_(std::move(root)), cs_(std::move(cs)) {}
  std::string dir(const std::string& id) const { return root_ + "/" + id; }
  Result<State> load(const std::string& id);
  Status save(const State& s);

  std::string root_;
  std::unique_ptr<containers::Containers> cs_;
};

/// The `features` JSON (runtime-spec features.md) of this runtime.
std::string features_json();

}  // namespace vessel::oci
