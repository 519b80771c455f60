// The container's root filesystem and mount namespace, prepared once per VM
// by the Setup message.
#pragma once

#include <string>
#include <string_view>

#include "base/unique_fd.h"
#include "guest/cgroup.h"
#include "guest/system.h"
#include "protocol/protocol.h"

namespace vessel::guest {

/// Where the container's root filesystem is mounted in init's own namespace.
inline constexpr std::string_view kContainerRoot = "/run/vessel/rootfs";

/// Mounts, in a child, the root that the kernel command line names
/// (`vessel.root=...`, protocol::early_root) at kContainerRoot, and the API
/// filesystems under it but the cgroup, while init boots and waits for the
/// Setup; Container::prepare() takes it when its Setup asks for that root.
/// Nothing happens without the argument. Call once, before the agent runs.
void start_early_root(std::string_view cmdline);

/// A prepared container root: the virtio-fs root with /proc, /sys, /dev,
/// /dev/pts and /dev/shm mounted under it, and a mount namespace whose root
/// is that tree. Every container process joins the namespace with setns(2).
class Container {
 public:
  Container() = default;

  /// Configures the network (net.h; container 0 only), mounts the root
  /// filesystem named by `setup` at kContainerRoot (container 0) or at
  /// /run/vessel/c<N>/rootfs (container N of a pod's VM), and the API filesystems under it (with
  /// `cgroup`, when valid, as the container's /sys/fs/cgroup; else the whole
  /// cgroup2 tree if any), sets the hostname, covers /etc/hosts,
  /// /etc/resolv.conf and /etc/hostname (creating what the image lacks), and
  /// creates the mount namespace. A failure carries the errno and a message
  /// for SetupResult, and undoes the mounts (not the network), so that a
  /// corrected Setup without interfaces can be tried again.
  static Result<Container> prepare(const protocol::Setup& setup, const ContainerCgroup& cgroup);

  /// Unmounts the root (and everything under it) and drops the mount
  /// namespace: for a container leaving a pod's VM, whose processes are
  /// gone or going.
  void release();

  /// False until prepare() has succeeded.
  bool ready() const { return mount_ns_.valid(); }
  /// The root as seen from init's namespace ("/run/vessel/rootfs").
  const std::string& root() const { return root_; }
  /// An fd of the container's mount namespace, owned by this object.
  int mount_ns() const { return mount_ns_.get(); }

 private:
  std::string root_;
  UniqueFd mount_ns_;
};

}  // namespace vessel::guest
