// The OCI runtime specification's config.json (runtime-spec 1.x), as
// containerd, Podman and CRI-O hand it to a runtime in a bundle, mapped onto
// a Vessel container (runtime::ContainerConfig): the VM is the container.
//
// What maps and what does not is decided here, once, for every front end:
// a field Vessel cannot honour is an error naming the field (never a silent
// difference); a field that has no meaning inside a VM of the container's
// own (seccomp, AppArmor, maskedPaths, the host cgroup path, ...) is
// accepted and listed in `ignored`, so the runtime can log it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/protocol.h"
#include "runtime/config.h"

namespace vessel::oci {

/// The runtime-spec version this runtime implements (state's ociVersion).
inline constexpr const char* kOciVersion = "1.0.2";

/// A spec's `process` (also what `exec --process FILE` reads).
struct Process {
  std::vector<std::string> args;  // at least one
  std::vector<std::string> env;   // KEY=VALUE
  std::string cwd = "/";          // absolute
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> additional_gids;
  bool terminal = false;
  uint16_t rows = 0, cols = 0;  // consoleSize, 0 if absent
  std::vector<protocol::Rlimit> rlimits;
  /// The same limits as `--ulimit` strings ("nofile=1024:1024").
  std::vector<std::string> ulimits;
  bool no_new_privileges = false;
  /// process.capabilities (absent sets are empty); unset when the spec has
  /// none, which runc reads as "leave root's capabilities alone".
  std::optional<protocol::Capabilities> capabilities;
  /// Parts accepted without effect, "field: why", as Spec::ignored.
  std::vector<std::string> ignored;
};

/// What a container's annotations say of its pod (CRI: containerd's
/// io.kubernetes.cri.*, CRI-O's io.kubernetes.cri-o.*; Podman passes
/// CRI-O's to a pod's containers, not to its infra container).
struct PodAnnotations {
  /// The pod's sandbox (container-type "sandbox"): it boots the pod's VM
  /// and runs no process.
  bool sandbox = false;
  /// A container of the pod (not its sandbox) whose sandbox this is.
  std::string sandbox_id;
};
PodAnnotations pod_annotations(const std::map<std::string, std::string>& annotations);

/// The memory of a CRI sandbox's VM, a ceiling for the pod's containers
/// (created after it boots): `io.vessel.pod-memory` (bytes; a pod
/// annotation containerd passes on when the runtime handler lists it in
/// `pod_annotations`), else the CRI's `io.kubernetes.cri.sandbox-memory`
/// (bytes, containerd 1.7: the pod's limits summed) when not 0, else
/// kPodMemoryDefault. kInvalidArgument naming the annotation for a value
/// that is not a number of bytes or is under 64 MiB.
Result<uint64_t> pod_memory(const std::map<std::string, std::string>& annotations);
inline constexpr uint64_t kPodMemoryDefault = 1ull << 30;

/// A bundle's config.json, mapped.
struct Spec {
  runtime::ContainerConfig config;  // rootfs, process, mounts, limits, hostname
  Process process;
  std::map<std::string, std::string> annotations;
  /// linux.namespaces' network path: the namespace the container's network
  /// should be (CNI made it); "" when the spec asks for a new one.
  std::string netns_path;
  PodAnnotations pod;
  /// Fields accepted without effect, "field: why", for the runtime's log.
  std::vector<std::string> ignored;
};

/// Parses `process` as it stands in config.json or in an exec process file.
/// kInvalidArgument naming the field ("process.args: ...") for anything
/// malformed or unsupported. `where` prefixes field names ("process").
Result<Process> parse_process(std::string_view json, const std::string& where = "process");

/// linux.resources' limits that map onto the guest cgroup, as given (absent:
/// nullopt; -1 or 0: no limit): for create, and for `update -r`.
struct ResourceUpdate {
  std::optional<int64_t> memory_bytes;     // memory.limit
  std::optional<int64_t> cpu_quota_usec;   // cpu.quota
  std::optional<int64_t> cpu_period_usec;  // cpu.period (0 to 1000000)
  std::optional<int64_t> pids;             // pids.limit
};

/// Parses a LinuxResources object as `update -r FILE` gets it (what
/// containerd's shim and Podman write). Fields without meaning in the VM
/// (shares, swap, devices, ...) go to `ignored`; huge pages and rdma are
/// errors. Errors name the field ("resources.memory.limit: ...").
Result<ResourceUpdate> parse_resources(std::string_view json, std::vector<std::string>& ignored);

/// The capability sets `p` runs with: its own, or, when it names none,
/// every capability (runc then leaves root's alone).
protocol::Capabilities process_capabilities(const Process& p);

/// Parses a bundle's config.json and maps it. `bundle` is the bundle
/// directory (absolute): a relative root.path is resolved against it. The
/// root must be an existing directory (the caller mounted it). Errors name
/// the field: "root.path: ...", "mounts[3] (/data): type 'nfs' ...",
/// "linux.namespaces: user namespaces are not supported".
Result<Spec> parse_spec(std::string_view json, const std::string& bundle);

/// The same, without touching the filesystem (root.path is only made
/// absolute): for tests and fuzzing.
Result<Spec> parse_spec_text(std::string_view json, const std::string& bundle);

/// A default config.json for `vessel-runtime spec`, as `runc spec` writes
/// (args ["sh"], terminal, root "rootfs").
std::string default_spec();

}  // namespace vessel::oci
