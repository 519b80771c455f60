// Machines: persistent VMs booted from an OCI image with the image's own
// init (systemd) as PID 1, a disk of their own, a user, and the host home
// shared over virtio-fs. A machine is a record of kind "machine" in the
// state store, served by the same monitor as a container (src/monitor) and
// started, stopped and removed through src/containers; container commands
// never list or touch it. This layer adds what is a machine's own: its
// configuration from the user's flags, the user, pending settings applied
// at the next start, the default machine, autostart.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "containers/containers.h"
#include "net/port_spec.h"
#include "networks/networks.h"
#include "runtime/config.h"
#include "runtime/mounts.h"

namespace vessel::machines {

using state::ContainerRecord;

/// A user as /etc/passwd says it.
struct User {
  std::string name;
  uint32_t uid = 0, gid = 0;
  std::string home;
  std::string shell;
};

/// The host user behind the command: the one sudo ran it for (SUDO_USER,
/// when root runs it through sudo), else the caller. nullopt for root.
Result<std::optional<User>> invoking_user();

/// --user NAME[:UID:GID]: NAME alone must be a user of this host (its uid,
/// gid, home and shell are taken); with UID:GID it need not be (home
/// /home/NAME, shell /bin/bash). uid 0 is refused (the machine has root).
Result<User> parse_user(const std::string& spec);

/// What `machine create` was given, resolved by the caller (the image's
/// snapshot, the guest assets).
struct CreateOptions {
  std::string name;  // "" = "default"
  unsigned cpus = 2;
  uint64_t memory_bytes = 2ull << 30;
  uint64_t disk_bytes = 16ull << 30;
  std::optional<User> user;  // nullopt: root only
  /// The host directory shared as the home ("" = the user's home), or none.
  std::string home;
  bool no_home = false;
  std::vector<runtime::MountSpec> mounts;  // --mount HOST:GUEST[:ro]
  std::vector<networks::Attachment> networks;
  std::vector<net::PortMapping> ports;
  bool autostart = false;
  std::string accel;
  std::string kernel, initrd;             // the machine kernel and the initramfs
  std::string image, image_id, snapshot;  // the image, its digest and its ext4 snapshot
};

/// Smallest memory a machine may have: a distribution's init and services
/// do not boot in less.
inline constexpr uint64_t kMinMemory = 256ull << 20;

/// --mount HOST:GUEST[:ro] (absolute paths; HOST must exist).
Result<runtime::MountSpec> parse_mount(const std::string& text);

/// The settings `machine set` takes, and whether each waits for a restart.
inline constexpr const char* kSettings[] = {"cpus", "memory", "disk",
                                            "home", "mounts", "autostart"};

class Machines {
 public:
  static Result<std::unique_ptr<Machines>> open(const std::string& root);

  containers::Containers& containers() { return *cs_; }
  const std::string& root() const { return cs_->root(); }

  /// Records the machine and makes its disk (the image's snapshot copied,
  /// sparse, grown to the disk size). Bad input is a kInvalidArgument that
  /// names it, and nothing is made.
  Result<ContainerRecord> create(const CreateOptions& options);

  /// By name, id or id prefix; "" = the default machine.
  Result<ContainerRecord> find(const std::string& ref);
  Result<std::vector<ContainerRecord>> list();

  /// Applies the pending settings (the disk only ever grows), then starts
  /// the machine's monitor and waits until its init has been handed PID 1.
  /// Does nothing for a running machine (returns false).
  Result<bool> start(const ContainerRecord& r, bool debug);
  /// A clean shutdown by the machine's init, forced after `timeout`.
  Status stop(const ContainerRecord& r, std::chrono::seconds timeout);
  Status remove(const ContainerRecord& r, bool force);

  /// Validates every KEY=VALUE, then stores them together: autostart at
  /// once, the rest as pending until the next start. Returns whether a
  /// running machine needs a restart for them.
  Result<bool> set(const ContainerRecord& r, const std::vector<std::string>& settings);

  /// The default machine's name ("" when none is set).
  std::string default_name();
  Status set_default(const std::string& name);

 private:
  explicit Machines(std::unique_ptr<containers::Containers> cs) : cs_(std::move(cs)) {}
  std::unique_ptr<containers::Containers> cs_;
};

/// Applies `config.machine.pending` to `config` and clears it.
Status apply_pending(runtime::ContainerConfig& config);

/// The machine's home mount in `config` (the bind mount on its home), or nullptr.
const runtime::MountSpec* home_mount(const runtime::ContainerConfig& config);

}  // namespace vessel::machines
