// Running one process in a fresh VM, with the caller's stdio: `vessel run`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "vmm/accel.h"

namespace vessel::runtime {

struct RunSpec {
  std::string root;    // state root
  std::string rootfs;  // host directory that becomes the container's root, or
  /// an ext4 image used read-only as the root's lower layer, with a fresh
  /// sparse writable disk of `writable_bytes` on top (none with read_only).
  std::string root_image;
  uint64_t writable_bytes = 8ull << 30;
  std::vector<std::string> argv;
  std::vector<std::string> env;  // KEY=VALUE, after defaults are applied
  std::string workdir = "/";
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> groups;
  /// "user[:group]" with names, resolved in the container (overrides uid,
  /// gid and groups); empty for the numeric fields above.
  std::string user;
  bool tty = false;          // -t
  bool interactive = false;  // -i
  std::string hostname;
  std::string name;
  unsigned cpus = 2;
  uint64_t memory_bytes = 512ull << 20;
  std::optional<vmm::Accel> accel;    // nullopt: automatic
  std::optional<std::string> kernel;  // --kernel
  bool read_only = false;
  bool debug = false;
  int boot_timeout_seconds = 60;
};

/// Docker's default PATH inside a container.
inline constexpr const char* kDefaultPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Checks the spec and fills in what Docker would: PATH, HOSTNAME, HOME and
/// TERM (with a tty) unless set, a hostname from the id.
Status prepare_spec(RunSpec& spec, const std::string& id);

struct RunOutcome {
  /// The process's exit code, 128+signal, or Docker's 126/127 when the
  /// command could not be executed.
  int exit_code = 0;
  /// Set when the command could not be started (the reason for 126/127).
  std::optional<Error> exec_error;
  vmm::AccelChoice accel;
};

/// Boots a VM, runs the process with this process's stdin/stdout/stderr
/// (forwarding SIGINT, SIGTERM, SIGHUP and window size changes), powers the
/// VM off and removes every runtime file. An Error means Vessel itself
/// failed (bad spec, missing QEMU, the VM did not boot); its message carries
/// the tail of the boot log where that helps.
/// `on_accel` is called once the accelerator is chosen (for the TCG notice).
Result<RunOutcome> run_container(RunSpec spec, void (*on_accel)(const vmm::AccelChoice&,
                                                                const RunSpec&) = nullptr);

}  // namespace vessel::runtime
