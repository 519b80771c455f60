// One container's VM: boots it, waits for vessel-init, prepares the
// container's root. The caller then drives processes over agent().
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_connection.h"
#include "base/error.h"
#include "protocol/protocol.h"
#include "runtime/config.h"
#include "sys/host_cgroup.h"
#include "vmm/accel.h"
#include "vmm/vmm.h"

namespace vessel::runtime {

struct BootOptions {
  std::string state_root;    // where volumes live (<root>/volumes/<name>/_data)
  std::string runtime_dir;   // private directory for sockets (exists)
  std::string boot_log;      // console and QEMU messages ("" = runtime_dir/boot.log)
  std::string upper_disk;    // the writable layer (an ext4 image), unless read-only
  std::string root_overlay;  // a root_disk container's qcow2 (make_root_overlay)
  bool debug = false;        // console to stderr
  /// Boot is abandoned (kUnavailable "interrupted") when this fd becomes
  /// readable; -1 for none.
  int abort_fd = -1;
  /// The VM's network devices, each an open tap the caller owns and keeps
  /// open until boot() returns, and what the guest makes of them:
  /// `interfaces[i]` configures `nics[i]` (the same MAC, as 6 raw bytes).
  /// Empty: the container has only lo.
  std::vector<vmm::NetDevice> nics;
  std::vector<protocol::Interface> interfaces;
  uint32_t gateway = 0;                        // IPv4 default route (host byte order); 0: none
  std::vector<protocol::Address6> addresses6;  // Setup.addresses6
  std::vector<protocol::Route> routes;         // Setup.routes
  /// The container's /etc/hosts and /etc/resolv.conf; "" for the defaults
  /// (localhost and the hostname; the host's resolvers minus loopback ones).
  std::string hosts;
  std::string resolv_conf;
};

class ContainerVm {
 public:
  /// Starts the VM and waits until the container's root is set up.
  /// Errors carry the tail of the boot log where it helps.
  static Result<std::unique_ptr<ContainerVm>> boot(const ContainerConfig& config,
                                                   const BootOptions& options);

  ~ContainerVm();
  agent::AgentConnection& agent() { return agent_; }
  vmm::VmInstance& vm() { return *vm_; }
  const vmm::AccelChoice& accel() const { return accel_; }

  /// Waits for the next frame (up to `timeout`) while watching the VM and
  /// the abort fd.
  Result<agent::Frame> await(std::chrono::milliseconds timeout);

  /// Asks the guest to power off and waits up to `grace` before forcing it.
  void poweroff(std::chrono::milliseconds grace);
  /// Ends a VM whose disks are about to be deleted (run --rm): at once (QEMU
  /// quits) when it shares no host directory, since its guest has nothing
  /// left to write anywhere that stays; else as poweroff(), so that what the
  /// guest still holds for a shared directory (dirty mmap'd pages) is
  /// written back first.
  void discard(std::chrono::milliseconds grace);
  /// Detaches the share tree made for virtiofsd from this process's mount
  /// namespace now rather than when the VM ends: virtiofsd, running, serves
  /// from its own sandbox's copy. For a monitor about to give up
  /// CAP_SYS_ADMIN, which the detach needs.
  void detach_private_mounts();

  /// `e` with the tail of the boot log appended.
  Error with_boot_log(Error e) const;

 private:
  ContainerVm(std::unique_ptr<vmm::VmInstance> vm, int port, int abort_fd)
      : vm_(std::move(vm)), agent_(port), abort_fd_(abort_fd) {}

  std::unique_ptr<vmm::VmInstance> vm_;
  agent::AgentConnection agent_;
  int abort_fd_;
  vmm::AccelChoice accel_;
  std::vector<std::string> private_mounts_;  // the share tree made for virtiofsd
  bool host_shares_ = false;                 // virtio-fs devices (root, mounts)
};

/// How this process's VMs are confined (docs/security.md): on unless
/// $VESSEL_CONFINE is "0" or "off" (a switch for benchmarks and debugging),
/// with the uid kConfinedIdBase + this process's pid (the VM's monitor).
vmm::Confinement vmm_confinement();

/// The confinement in force for VMs started now, as `vessel system status`
/// shows it: one line per process kind.
struct ConfinementStatus {
  bool enabled = false;
  std::string qemu;
  std::string virtiofsd;
  std::string host_cgroup;
};
ConfinementStatus confinement_status();

/// The guest RAM of `config`'s VM: a machine's memory; a container's limit
/// plus kGuestReserve.
uint64_t vm_memory_bytes(const ContainerConfig& config);

/// What a VM's host processes (monitor, QEMU, virtiofsd) may use beyond
/// guest RAM before their host cgroup's limit holds them: QEMU's TCG code
/// buffer (32 MiB), its heap and device state, virtiofsd, the monitor,
/// and the host page cache of the VM's disk images charged to it.
inline constexpr uint64_t kHostOverheadBytes = 256ull << 20;
/// Threads of QEMU (vCPUs, its block I/O pool of up to 64), virtiofsd's
/// (a pool per daemon) and the monitor's, with room.
inline constexpr uint64_t kHostPidsMax = 1024;

/// The host cgroup limits of `config`'s VM (docs/security.md): memory =
/// guest RAM + kHostOverheadBytes, pids kHostPidsMax, the default CPU
/// weight (every VM counts the same as any other service).
sys::HostLimits host_limits(const ContainerConfig& config);

/// Creates the sparse writable layer: an empty ext4 of `bytes` at `path`.
Status make_writable_disk(const std::string& path, uint64_t bytes);

/// Makes a machine's disk at `path` from an image's ext4 `snapshot`: a
/// sparse copy, `bytes` long, with a journal added (snapshots have none).
Status make_machine_disk(const std::string& snapshot, const std::string& path, uint64_t bytes);

/// A root_disk container's disk in its directory: a qcow2 with no data and
/// no backing file named in it, the size of `base`; QEMU is told its
/// backing, `base`, at each start (ContainerConfig::root_disk). Copied from
/// `<cache_dir>/root-<bytes>.qcow2`, which qemu-img makes once.
inline constexpr const char* kRootOverlayName = "root.qcow2";
Status make_root_overlay(const std::string& cache_dir, const std::string& base,
                         const std::string& path);

/// The container cgroup's limits Setup gives `config` (none for a machine):
/// memory.max is the container's memory, cpu.max its --cpus fraction.
protocol::Update container_limits(const ContainerConfig& config);

/// Makes `config` say the limits `limits` (an Update applied to its
/// running container), so that container_limits gives them at its next
/// starts: memory.max below the VM's memory as memory_limit_bytes, pids,
/// and the CPU quota as cpu_millis (of a 100 ms period; the VM's whole
/// vCPUs or more as no quota).
void keep_limits(ContainerConfig& config, const protocol::Update& limits);

/// The Spawn message that starts `config`'s main process (and, with argv
/// and the rest replaced, an exec's): the container's rlimits, capability
/// sets and no_new_privs.
protocol::Spawn main_spawn(const ContainerConfig& config, uint16_t rows, uint16_t cols);

// ---- pods (vessel-runtime: one VM per pod, docs/kubernetes.md) ----

/// Makes `dir` the pod directory on the host: a small tmpfs mounted there
/// with shared propagation, so that what is mounted under it later reaches
/// the namespaces copied from this one before (the monitor's, virtiofsd's
/// sandbox: slaves of it). The sandbox's VM shares it whole.
Status make_pod_dir(const std::string& dir);
/// Unmounts the pod directory with everything under it and removes it.
/// Nothing there (or no mount) is fine.
Status remove_pod_dir(const std::string& dir);

/// Binds container `c`'s root (c.rootfs) at <pod>/<c.pod_dir>/rootfs and,
/// with `mounts`, each of its bind mounts and volumes at
/// <pod>/<c.pod_dir>/m<i>, read-only ones read-only from the start (the
/// read-only flag must travel with the mount to the namespaces it
/// propagates to). `state_root` locates volumes. On failure, what was bound
/// is undone. (The pod's own VM serves its container 0's mounts as any
/// VM does: `mounts` false.)
Status bind_into_pod(const ContainerConfig& c, const std::string& pod,
                     const std::string& state_root, bool mounts);
/// Undoes bind_into_pod for the container whose directory is `pod_dir`.
Status unbind_from_pod(const std::string& pod, const std::string& pod_dir);

/// The Setup that adds pod member `c` as container `index` of its
/// sandbox's VM: its root and mounts in the VM's share (tag "rootfs",
/// bind_into_pod's layout), its limits, its /etc files.
protocol::Setup member_setup(const ContainerConfig& c, uint32_t index, const std::string& hosts,
                             const std::string& resolv_conf);

/// Docker's exit code for a Spawn the guest refused: 127 (not found), 126
/// (cannot execute), or 0 when the failure is not about the command itself
/// (then the container could not start: 125).
int exec_failure_code(int errnum);

}  // namespace vessel::runtime
