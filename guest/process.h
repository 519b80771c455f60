// Starting container processes: stdio (pipes or a pty), fork, and the
// child's path into the container (mount namespace, cwd, identity, exec).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/unique_fd.h"
#include "guest/cgroup.h"
#include "guest/container.h"
#include "guest/system.h"
#include "protocol/protocol.h"

namespace vessel::guest {

/// Init's side of a process's stdin: bytes from the host not yet written to
/// the process, and bytes written (or dropped) not yet acknowledged.
struct StdinState {
  /// The pipe's write end, or a dup of the pty master; invalid once stdin
  /// is closed (after EOF, or when the process closed its end).
  UniqueFd fd;
  /// EOF is sent as the terminal's EOF character rather than by closing.
  bool tty = false;
  /// Received from the host, not yet written; bytes before `offset` are done.
  std::vector<uint8_t> pending;
  size_t offset = 0;
  /// The host sent EOF; applied once `pending` is written.
  bool eof_requested = false;
  /// Bytes written or dropped since the last StdinAck.
  uint64_t unacked = 0;
};

/// A process started by Spawn, tracked until it is reaped.
struct Process {
  uint32_t stream = 0;
  /// Tells a process from an earlier one that used the same stream id.
  uint64_t serial = 0;
  pid_t pid = -1;
  /// The pty master, kept for Resize; invalid without a tty.
  UniqueFd pty;
  /// Read end of stdout, or a dup of the pty master; invalid after EOF.
  UniqueFd stdout_fd;
  /// Read end of stderr; invalid with a tty (merged into stdout) or after EOF.
  UniqueFd stderr_fd;
  StdinState in;
  /// The container cgroup's oom_kill count before the process started.
  uint64_t oom_kills_at_start = 0;
  /// Which container of the VM it runs in (Spawn.container).
  uint32_t container = 0;
};

/// Starts `spec` in `container`, which must be ready: creates its stdio,
/// forks, and the child joins `cgroup` (when valid) and a cgroup namespace
/// rooted there, joins the container's mount namespace, changes directory,
/// applies `spec.rlimits`, drops to the requested identity and execs,
/// searching PATH from `spec.env` as execvp(3) does. Returns once the child
/// has exec'd (the returned fds are nonblocking and close-on-exec) or has
/// failed; a failure carries the errno and a message for SpawnResult (an
/// invalid rlimit fails before anything is created), and the child is reaped.
/// The paths an exec of `file` tries, in order, as execvp(3) with `env`'s
/// PATH (or the default) would: `file` itself when it has a slash.
std::vector<std::string> command_candidates(const std::string& file,
                                            const std::vector<std::string>& env);

Result<Process> spawn_process(const protocol::Spawn& spec, const Container& container,
                              const ContainerCgroup& cgroup);

/// Work vessel-init does itself inside the container (CopyOut, CopyIn): run
/// by a forked child in place of an exec'd program.
class Task {
 public:
  virtual ~Task() = default;
  /// Whether the task reads stdin (the host then sends Stdin frames).
  virtual bool reads_stdin() const = 0;
  /// Runs first in the child; a failure becomes the SpawnResult.
  virtual Status prepare() = 0;
  /// Runs after a successful prepare(); returns the exit code. Data goes
  /// through fds 0, 1 and 2 (stdin or /dev/null, stdout, stderr pipes).
  virtual int run() = 0;
};

/// Starts `task` as spawn_process starts a program: the child joins
/// `cgroup` and the container's mount namespace, gets pipes as stdio and
/// closes every other descriptor, then runs the task as root in place of
/// exec. Returns once prepare() has succeeded (the process then runs and
/// exits like any other) or failed (its Status, the child reaped).
Result<Process> spawn_task(Task& task, const Container& container, const ContainerCgroup& cgroup);

}  // namespace vessel::guest
