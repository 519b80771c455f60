// Child processes owned by an object that kills and reaps them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "sys/jail.h"

namespace vessel::sys {

/// How a child ended.
struct ExitStatus {
  int code = 0;    // exit code when signal == 0
  int signal = 0;  // terminating signal, or 0
  /// Shell convention: code, or 128 + signal.
  int shell_code() const { return signal ? 128 + signal : code; }
  std::string to_string() const;
};

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the program path (no PATH search)
  /// Child fd number -> parent fd to dup there. Fds 0, 1, 2 default to
  /// /dev/null unless mapped. Every other fd is closed in the child (they are
  /// all O_CLOEXEC in this project; mapping one is how a child gets it).
  std::vector<std::pair<int, int>> fds;
  /// Kill the child with SIGKILL when this process dies (PR_SET_PDEATHSIG).
  bool die_with_parent = true;
  /// Put the child in its own process group, so a terminal's ^C reaches
  /// only the CLI, which decides what to forward.
  bool new_process_group = true;
  /// The child's environment ("KEY=VALUE"); nullopt: this process's.
  std::optional<std::vector<std::string>> env;
  /// When set, a child that stays root keeps only these capabilities
  /// (capability(7) numbers) in its bounding set, has no inheritable or
  /// ambient ones, and runs with no_new_privs: a daemon that needs root for
  /// one thing (dnsmasq binding port 53) and nothing else. Best effort for
  /// a caller without CAP_SETPCAP, which has nothing to shed.
  std::optional<std::vector<int>> keep_capabilities;
  /// Transparent huge pages off for the child and what it starts
  /// (PR_SET_THP_DISABLE, which execve keeps): its memory is faulted in
  /// 4 KiB pages, so a sparse touch does not cost 2 MiB.
  bool no_huge_pages = false;
  /// Run the child in a jail (sys/jail.h): its own mount, pid, ipc, uts
  /// (and network) namespaces, a root of read-only binds, an unprivileged
  /// uid, no capabilities, no_new_privs. Needs root. argv[0] is a path
  /// inside the jail.
  std::optional<Jail> jail;
};

/// A running child. Destruction kills (SIGKILL) and reaps it unless it was
/// waited for or detached.
class Process {
 public:
  /// Forks and execs; fails if the program cannot be executed (the child
  /// reports the exec errno through a CLOEXEC pipe).
  static Result<Process> spawn(const SpawnOptions& options);

  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  pid_t pid() const { return pid_; }
  /// A pidfd (pidfd_open) that becomes readable when the child exits.
  int pidfd() const { return pidfd_.get(); }
  bool running() const { return pid_ > 0 && !status_; }

  Status kill(int signo);
  /// Waits up to `timeout` (forever if nullopt); kTimeout if still running.
  Result<ExitStatus> wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  /// Non-blocking: the status if the child has exited.
  std::optional<ExitStatus> try_wait();
  /// Stops owning the child: it is neither killed nor reaped here.
  void detach();

 private:
  Process(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  void reset();

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  std::optional<ExitStatus> status_;
};

/// A process's memory as the host counts it (/proc/PID/smaps_rollup), bytes.
/// Pss divides each shared page among the processes that map it.
struct ProcessMemory {
  uint64_t rss = 0;
  uint64_t pss = 0;
  uint64_t pss_anon = 0;   // private and anonymous (heap, TCG code buffer)
  uint64_t pss_shmem = 0;  // shared memory (a VM's memfd-backed guest RAM)
  uint64_t anonymous = 0;  // private anonymous pages, whole
};

/// Parses the text of an smaps_rollup file; fields it lacks stay 0.
ProcessMemory parse_smaps_rollup(std::string_view text);
/// Reads /proc/`pid`/smaps_rollup.
Result<ProcessMemory> process_memory(pid_t pid);
/// Bytes allocated to the shared memory files process `pid` holds open:
/// memfds and unlinked files on a tmpfs (QEMU's guest RAM file in its
/// jail). Their pages exist whether or not the process has touched them:
/// another process, such as virtiofsd, may have. 0 when there are none or
/// on error.
uint64_t shared_memory_file_bytes(pid_t pid);

/// Looks up `name` in $PATH (or returns it if it contains '/'); nullopt if not found.
std::optional<std::string> find_program(const std::string& name);

/// Runs `argv` (argv[0] a path) and returns what it wrote to stdout (at most
/// 1 MiB); an error if it could not run or did not exit 0.
Result<std::string> output_of(const std::vector<std::string>& argv);

}  // namespace vessel::sys
