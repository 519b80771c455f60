// Running the vessel CLI as a user would, and the VM tests' fixture.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vessel::test {

/// Where the tests find what they run. Each path comes from an environment
/// variable when it is set, else from the build tree this library was
/// compiled in.
struct TestPaths {
  std::string vessel;  // $VESSEL_BIN, else <build>/bin/vessel
  std::string rootfs;  // $VESSEL_TEST_ROOTFS, else <build>/rootfs/busybox
  std::string share;   // $VESSEL_SHARE_DIR, else <build>/share/vessel
  std::string kernel;  // what the CLI boots: $VESSEL_KERNEL, else <share>/kernel
  std::string initrd;  // $VESSEL_INITRD, else <share>/initramfs.cpio.gz
};

/// The paths, computed once.
const TestPaths& paths();

struct WindowSize {
  unsigned short rows = 24, cols = 80;
};

/// One scripted interaction. Once `await` appears in the output (stdout, or
/// the terminal's output with `pty`) after where the previous step matched,
/// the step resizes the terminal, then writes `write` to the input, then
/// sends `signal` to the CLI, then calls `call` (to look at the system while
/// the CLI runs), skipping what is unset.
struct Step {
  std::string await;
  std::optional<WindowSize> resize;  // only with `pty`
  std::string write;
  int signal = 0;
  std::function<void()> call;
};

struct RunOptions {
  /// Bytes for stdin, which is closed after them (and after every step's
  /// `write`). Without stdin bytes or writing steps, stdin is /dev/null.
  std::optional<std::string> stdin_data;
  /// KEY=VALUE entries added to this process's environment (replacing KEY).
  std::vector<std::string> env;
  /// The run is killed (SIGKILL) and marked timed out after this long.
  std::chrono::seconds timeout{120};
  /// Run on a new pseudo-terminal (as its session leader, the terminal
  /// being its controlling terminal) instead of pipes: stdin, stdout and
  /// stderr are the terminal and `CliResult::out` is all of its output.
  bool pty = false;
  WindowSize window;  // the terminal's initial size
  std::vector<Step> steps;
};

struct CliResult {
  /// The exit code, 128 + the signal that killed it, or -1 when the harness
  /// could not run it (a test failure has been recorded).
  int exit_code = -1;
  std::string out, err;  // with `pty`, `out` has everything and `err` is empty
  bool timed_out = false;
  size_t steps_done = 0;  // how many of RunOptions::steps ran
};

/// Runs `argv` (argv[0] a path; no PATH search) to completion, feeding stdin
/// and reading stdout and stderr concurrently, so any amount of data in
/// either direction is fine.
CliResult run_process(const std::vector<std::string>& argv, const RunOptions& options);

/// Runs the vessel CLI with `args`, and VESSEL_ACCEL=tcg unless
/// `options.env` sets it.
CliResult run_cli(const std::vector<std::string>& args, const RunOptions& options = {});

/// Quotes `argv` for a message, as a shell would read it back.
std::string shell_quote(const std::vector<std::string>& argv);

/// A description ("pid 12: qemu-system-x86_64 -name ...") of every process
/// named like one of `names` (by argv[0]'s basename) whose command line or
/// environment contains `needle`. Processes that cannot be read (another
/// user's, or gone meanwhile) are passed over.
std::vector<std::string> find_processes(const std::vector<std::string>& names,
                                        std::string_view needle);

/// The pids of the processes find_processes() would describe.
std::vector<int> find_process_ids(const std::vector<std::string>& names, std::string_view needle);

/// The names of the processes a container is made of: its monitor, QEMU and
/// virtiofsd.
const std::vector<std::string>& vm_process_names();

/// The lines of `ps -o stat,comm` output whose STAT column says zombie (Z).
std::vector<std::string> zombie_lines(std::string_view ps_output);

/// Why the VM tests cannot run on this machine (no QEMU, virtiofsd, guest
/// kernel, initramfs or rootfs fixture), or nullopt if they can.
std::optional<std::string> vm_unavailable_reason();

/// Base of the VM tests. Each test gets a fresh state root, removed
/// afterwards; it is skipped, with the reason, where VMs cannot run. Every
/// run is followed by a leak check, and when a test fails the stderr of each
/// of its runs is printed.
class VmTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  /// Whether the tests need to boot a VM (and so skip where they cannot).
  virtual bool needs_vm() const { return true; }

  /// Runs `vessel --root <state root> run RUN_ARGS...` (with --debug when
  /// $VESSEL_TEST_DEBUG is set and not 0), then checks for leaks.
  CliResult run(const std::vector<std::string>& run_args, RunOptions options = {});
  /// Runs `vessel --root <state root> run --rootfs <fixture> RUN_ARGS...`.
  CliResult run_busybox(const std::vector<std::string>& run_args, RunOptions options = {});

  /// Runs `vessel --root <state root> ARGS...` (any verb; --debug as run()
  /// adds it) and records it for the failure report, without the leak
  /// check: a detached container outlives the CLI.
  CliResult vessel(const std::vector<std::string>& args, RunOptions options = {});

  /// Expects that no QEMU, virtiofsd or vessel-monitor of this test is left
  /// and that the state root's runtime directory is empty.
  void expect_no_leaks();
  /// SIGKILLs what expect_no_leaks() would report, so that a failed test
  /// does not leave VMs running (TearDown does it after the leak check).
  void kill_leftovers();

  /// The state root passed with --root.
  const std::string& state_root() const { return state_root_; }
  /// A scratch directory for the test's own files (outside the state root).
  const std::string& scratch_dir() const { return scratch_dir_; }

 private:
  struct Record {
    std::string command;
    CliResult result;
  };
  std::string base_dir_, state_root_, scratch_dir_;
  std::mutex runs_mutex_;  // vessel() may be called from several threads
  std::vector<Record> runs_;
};

}  // namespace vessel::test
