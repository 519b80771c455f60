// A container's configuration: what `vessel create`/`run` fixed, stored as
// JSON in the state store and read by the container's monitor.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "net/port_spec.h"
#include "protocol/protocol.h"
#include "runtime/mounts.h"

namespace vessel::runtime {

/// Docker's --restart: no | on-failure[:N] | always | unless-stopped.
struct RestartPolicy {
  enum class Kind { kNo, kOnFailure, kAlways, kUnlessStopped };
  Kind kind = Kind::kNo;
  int max_retries = 0;  // on-failure only; 0 = unlimited
  std::string to_string() const;
};
Result<RestartPolicy> parse_restart_policy(const std::string& text);

/// What makes a VM a persistent machine rather than a container: its root
/// is its own disk (root_image, written in place), its init runs as PID 1,
/// and a user is made to exist in it. Changes from `machine set` wait in
/// `pending` (setting -> value, as the user gave it) until the next start.
struct MachineConfig {
  bool enabled = false;
  std::string user;  // "" = no user (root only)
  uint32_t uid = 0, gid = 0;
  std::string home;   // the user's home in the machine (and on the host when shared)
  std::string shell;  // the user's shell, where the image has it
  /// The home directory is the host's, shared at the same path (a bind mount
  /// in `mounts`); else it is made on the machine's disk.
  bool share_home = true;
  std::string init = "/sbin/init";
  uint64_t disk_bytes = 16ull << 30;  // the disk grows to this at the next start
  bool autostart = false;
  std::map<std::string, std::string> pending;
};

struct ContainerConfig {
  // The root filesystem: a host directory served over virtio-fs, or an ext4
  // image used read-only under a writable layer (none with read_only).
  std::string rootfs;
  std::string root_image;
  /// root_image is an image's writable base (ImageStore::root_base): the
  /// container runs it read-write under a copy-on-write disk of its own,
  /// <container dir>/root.qcow2, rather than read-only under a writable
  /// layer (upper.img, overlayfs). Containers made before it have it false.
  bool root_disk = false;
  uint64_t writable_bytes = 8ull << 30;
  bool read_only = false;
  std::string image;     // the image reference the user gave, or ""
  std::string image_id;  // its manifest digest, or ""
  /// Bind mounts, volumes (named by then: anonymous ones get a generated
  /// name at create) and tmpfs mounts, in the order given.
  std::vector<MountSpec> mounts;

  // The main process.
  std::vector<std::string> argv;
  std::vector<std::string> env;  // KEY=VALUE, after defaults are applied
  std::string workdir = "/";
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> groups;
  /// "user[:group]" with names, resolved in the container (overrides uid,
  /// gid and groups); empty when the numeric fields say it.
  std::string user;
  bool tty = false;         // -t
  bool open_stdin = false;  // -i
  std::string hostname;

  // Networking. Which networks the container is on (its endpoints: address,
  // MAC, aliases) is in the state store; these are the rest.
  /// "default", "none" or the first network's name (Docker's NetworkMode).
  std::string network_mode = "default";
  /// A network namespace configured by someone else (CNI, for an OCI
  /// runtime's caller): the VM's one NIC is joined to its interface and
  /// takes its MAC, address and route (net/netns_link.h). Only with
  /// network_mode "none"; "" = none.
  std::string netns_path;
  std::vector<std::string> dns;          // --dns: nameservers instead of the network's
  std::vector<std::string> dns_search;   // --dns-search
  std::vector<std::string> dns_options;  // --dns-option
  std::vector<std::string> extra_hosts;  // --add-host NAME:IP
  /// -p and -P, one entry per port (ranges expanded).
  std::vector<net::PortMapping> ports;

  // The VM.
  unsigned cpus = 2;
  /// The container's memory: its cgroup's memory.max inside the guest. The
  /// VM gets kGuestReserve more for the kernel and vessel-init, so a
  /// container over its limit is OOM-killed, never the agent.
  uint64_t memory_bytes = 512ull << 20;
  /// A lower memory.max set while the container ran (docker update): kept
  /// for its next starts, while memory_bytes keeps sizing the VM (so a
  /// later update may raise it again up to that); 0: memory_bytes.
  uint64_t memory_limit_bytes = 0;
  uint64_t pids_limit = 0;  // --pids-limit; 0: none
  /// --memory-reclaim auto|off: while idle, the container's page cache is
  /// reclaimed in the guest and goes back to the host (docs/architecture.md).
  bool memory_reclaim = true;
  /// --cpus as a fraction: a cgroup CPU quota in millicpus (0: whole vCPUs,
  /// no quota). --cpus 1.5 gives 2 vCPUs and a quota of 1500.
  uint32_t cpu_millis = 0;
  /// --ulimit as given ("nofile=1024:2048"), applied to every process.
  std::vector<std::string> ulimits;
  /// --cap-add and --cap-drop as given ("NET_ADMIN", "ALL"): every process
  /// gets Docker's default set with these applied (agent/capabilities.h).
  /// Not used when `capabilities` is set, nor for a machine (its processes
  /// keep all of root's).
  std::vector<std::string> cap_add, cap_drop;
  /// Exact capability sets for every process (an OCI spec's
  /// process.capabilities); unset: Docker's, from cap_add and cap_drop.
  std::optional<protocol::Capabilities> capabilities;
  /// --security-opt no-new-privileges: PR_SET_NO_NEW_PRIVS for every process.
  bool no_new_privileges = false;
  std::string accel;   // "kvm", "tcg" or "" (automatic)
  std::string kernel;  // resolved guest kernel and initramfs paths
  std::string initrd;

  // Lifecycle.
  RestartPolicy restart;
  int stop_signal = 15;      // SIGTERM unless the image or --stop-signal says
  int stop_timeout = 10;     // seconds before SIGKILL
  bool auto_remove = false;  // --rm
  std::map<std::string, std::string> labels;
  int boot_timeout_seconds = 60;

  MachineConfig machine;

  // Pods (vessel-runtime: one VM per pod, docs/kubernetes.md).
  /// "" (a container with a VM of its own), kPodSandbox (a VM that takes
  /// a pod's other containers) or kPodMember (one of them).
  std::string pod_role;
  /// A CRI pod's sandbox: no process of its own (vessel-init stands for
  /// pause); it runs until killed or until its VM stops.
  bool no_process = false;
  /// The pod's sandbox's Vessel id (a member: whose monitor runs its VM).
  std::string pod_sandbox;
  /// The container's directory in the pod's share, relative: its root is
  /// <pod_dir>/rootfs there and its bind mounts and volumes <pod_dir>/m<i>
  /// (the i-th of `mounts` that is not a tmpfs). A sandbox's `rootfs` is
  /// the pod directory on the host, which the VM shares.
  std::string pod_dir;
};

/// A container whose VM is its pod's: the others join it.
inline constexpr std::string_view kPodSandbox = "sandbox";
/// A container of a pod, in its sandbox's VM.
inline constexpr std::string_view kPodMember = "member";

/// Memory the VM has beyond the container's limit (guest kernel, init).
inline constexpr uint64_t kGuestReserve = 64ull << 20;

/// Docker's default PATH inside a container.
inline constexpr const char* kDefaultPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Checks the configuration and fills in what Docker would: PATH, HOSTNAME,
/// HOME and TERM (with a tty) unless set, a hostname from the id.
Status prepare_config(ContainerConfig& config, const std::string& id);

std::string to_json(const ContainerConfig& config);
/// kInvalidArgument when `json` is not a configuration this version wrote.
Result<ContainerConfig> config_from_json(const std::string& json);

/// A signal by name ("TERM", "SIGTERM", "sigkill") or number; kInvalidArgument.
Result<int> parse_signal(const std::string& text);

}  // namespace vessel::runtime
