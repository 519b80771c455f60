// Containers as a user sees them: create, start, stop, kill, remove, list,
// find by name or id prefix. Each running container is served by its own
// monitor process (monitor/); this layer starts monitors, talks to them, and
// keeps the state store consistent with what is really running: a container
// recorded as running whose monitor is gone is recorded as exited the next
// time anyone looks (reconcile()).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "monitor/api.h"
#include "monitor/client.h"
#include "networks/networks.h"
#include "runtime/config.h"
#include "state/store.h"

namespace vessel::containers {

using state::ContainerRecord;

/// The kinds of record (state::ContainerRecord::kind).
inline const std::string kContainer = "container";
inline const std::string kMachine = "machine";

class Containers {
 public:
  /// Opens the state under `root` (creating it).
  static Result<std::unique_ptr<Containers>> open(const std::string& root);

  const std::string& root() const { return root_; }
  state::Store& store() { return *store_; }

  /// Records a new container: checks and completes `config`, gives it an id
  /// and a name (generated when `name` is empty), its network endpoints
  /// (`attachments`; none: the default network), makes its directory and
  /// writable layer. kAlreadyExists for a taken name or address.
  ///
  /// A machine (config.machine.enabled) is recorded with kind "machine",
  /// and its disk is made from its image: config.root_image (the image's
  /// snapshot) is copied to <dir>/disk.img (runtime::make_machine_disk), sparse, with a journal,
  /// made config.machine.disk_bytes long, and becomes the root_image recorded.
  Result<ContainerRecord> create(runtime::ContainerConfig config, const std::string& name,
                                 const std::vector<networks::Attachment>& attachments = {});

  /// The networks of this state root.
  networks::Networks& networks() { return *networks_; }

  /// By name, id or unique id prefix, of `kind` ("container" or "machine";
  /// one of the other kind is not found, with a message that says what it
  /// is); reconciled.
  Result<ContainerRecord> find(const std::string& ref, const std::string& kind = kContainer);
  /// All records of `kind` ("" = every kind), oldest first; reconciled.
  Result<std::vector<ContainerRecord>> list(const std::string& kind = kContainer);
  /// If `r` is recorded running but its monitor is gone, records it exited
  /// and removes what the monitor left; returns the current record.
  Result<ContainerRecord> reconcile(ContainerRecord r);

  /// Starts the container's monitor (which boots the VM and starts the main
  /// process). nullopt when it is already running. With `wait_attach` the
  /// main process waits until a client attaches.
  Result<std::optional<monitor::Launch>> start(const ContainerRecord& r, bool wait_attach,
                                               bool debug);

  /// Connects to a running container's monitor; kFailedPrecondition
  /// ("container X is not running") otherwise.
  Result<monitor::Channel> connect(const ContainerRecord& r);

  /// A channel to the guest for copies (CopyOut, CopyIn: `cp`, `export`,
  /// the API's archive endpoints): the running container's monitor, or for
  /// a container that is not running a maintenance boot of its VM (its
  /// disks and volumes, no network, no process; the record stays as it
  /// was), which powers off soon after the last such channel closes.
  /// Copies of one stopped container share one boot. A start meanwhile
  /// waits for the boot to end; a remove ends it.
  Result<monitor::Channel> open_files(const ContainerRecord& r);

  /// Stops gracefully: `signal` (0 = the container's stop signal), then
  /// SIGKILL after `timeout` seconds (-1 = the container's). A container
  /// that is not running is left as it is.
  Status stop(const ContainerRecord& r, int signal, int timeout);
  /// Sends `signal` to the main process; kFailedPrecondition if not running.
  Status kill(const ContainerRecord& r, int signal);
  /// Removes the container and its files; a running one only with `force`
  /// (it is killed first), else kFailedPrecondition. With `volumes`, its
  /// anonymous volumes go too.
  Status remove(const ContainerRecord& r, bool force, bool volumes = false);

  /// Freezes (`pause`) or thaws the VM's vCPUs (docker pause/unpause);
  /// kFailedPrecondition when it is not running, already paused, or (to
  /// thaw) not paused. Paused is kept as a marker in the runtime directory,
  /// so it ends with the monitor.
  Status pause(const ContainerRecord& r, bool pause);
  /// True while the running container is paused.
  bool paused(const ContainerRecord& r) const;

  /// Changes a running container's limits (docker update): its monitor has
  /// the guest write them to the container's cgroup, then the record keeps
  /// them for its next starts (runtime::keep_limits; the VM keeps its
  /// size). kInvalidArgument (monitor::merge_limits' text) beyond what the
  /// VM was given at boot; kFailedPrecondition when it is not running or is
  /// paused (its guest is frozen).
  Status update_limits(const ContainerRecord& r, const monitor::Limits& change);

  /// Joins a container that is not running to a network (docker network
  /// connect): its VM gets the NIC at its next start. kFailedPrecondition
  /// while it runs (a VM's NICs are fixed when it boots), when it is
  /// already on the network, or uses --network none; kNotFound for a
  /// network that does not exist; kInvalidArgument as at create (address,
  /// MAC, aliases).
  Status connect_network(const ContainerRecord& r, const networks::Attachment& attachment);
  /// Takes a container that is not running off a network;
  /// kFailedPrecondition while it runs or when it is not on it.
  Status disconnect_network(const ContainerRecord& r, const std::string& network);

  /// One resource sample of a running container, from its guest (the
  /// monitor asks the agent, which reads the container's cgroup);
  /// kFailedPrecondition when it is not running, kTimeout after 10 s.
  Result<protocol::Stats> stats(const ContainerRecord& r);

  /// Waits until the container's monitor has gone (after a stop), up to `timeout`.
  Status wait_gone(const ContainerRecord& r, std::chrono::milliseconds timeout);

  /// Removes container directories that have no record (a create that
  /// crashed half-way), older than a minute.
  void remove_orphans();

  // ---- volumes: host directories under <root>/volumes/<name>/_data ----

  /// Creates a volume; `name` empty makes an anonymous one (a 64-hex name).
  /// kAlreadyExists for a taken name.
  Result<state::VolumeRecord> create_volume(const std::string& name,
                                            const std::map<std::string, std::string>& labels,
                                            bool anonymous = false);
  /// The volume, created (named, not anonymous) if absent.
  Result<state::VolumeRecord> ensure_volume(const std::string& name);
  Result<state::VolumeRecord> volume(const std::string& name);
  Result<std::vector<state::VolumeRecord>> volumes();
  /// kFailedPrecondition when a container uses it (even a stopped one).
  Status remove_volume(const std::string& name);
  /// Removes unused volumes (anonymous ones only, unless `all`); returns
  /// their names and the bytes reclaimed.
  Result<std::pair<std::vector<std::string>, uint64_t>> prune_volumes(bool all);
  /// <root>/volumes/<name>/_data.
  std::string volume_data(const std::string& name) const;

 private:
  Containers(std::string root, std::unique_ptr<state::Store> store);
  /// Ends a maintenance boot of `r`'s VM (open_files), if one runs.
  Status end_maintenance(const ContainerRecord& r);
  /// A monitor records the exit before it tidies (network, host cgroup,
  /// runtime directory): a container recorded exited whose monitor still
  /// lives is waited for (up to 10 s), not taken for a running one.
  void settle(const ContainerRecord& r);

  std::string root_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<networks::Networks> networks_;
};

/// "5 seconds", "Less than a second", ... : how long ago `then_ns` was.
std::string describe_age(int64_t then_ns, int64_t now_ns);

/// "running", "exited (0)", ... as `ls` shows it, with how long ago.
std::string describe_status(const ContainerRecord& r, int64_t now_ns);

/// Docker's name rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
Status validate_name(const std::string& name);

}  // namespace vessel::containers
