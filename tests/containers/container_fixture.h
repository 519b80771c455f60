// The container tests' fixture: VmTest plus what tests of containers that
// outlive the CLI need (detached runs, inspect, waiting for a state, checks
// that nothing of a container is left).
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "support/cli_runner.h"

namespace vessel::test {

/// The embedded image every container test runs: no network needed.
inline constexpr const char* kImage = "vessel/busybox";
/// Guest memory for the tests' VMs: small, so that many fit at once.
inline constexpr const char* kMemory = "128m";

bool contains(std::string_view haystack, std::string_view needle);
/// Whether `s` is 64 lowercase hex digits.
bool is_full_id(std::string_view s);
/// The non-empty lines of `s`.
std::vector<std::string> lines(std::string_view s);

class ContainerTest : public VmTest {
 protected:
  /// Removes every container left (rm -f --all) and kills what survives
  /// that, before VmTest's leak check.
  void TearDown() override;

  /// `vessel run -d -m 128m RUN_ARGS...` (without -m when RUN_ARGS has
  /// one); expects exit 0 and a full id on
  /// stdout, which it returns ("" on failure).
  std::string run_detached(const std::vector<std::string>& run_args, RunOptions options = {});

  /// Runs `vessel --root <state root> ARGS...` like vessel(), but leaves it
  /// out of the failure report: for polling.
  CliResult unrecorded(const std::vector<std::string>& args);

  /// `vessel inspect REF`'s one object; a null json (and a test failure)
  /// when inspect fails. `record`: see unrecorded().
  nlohmann::json inspect(const std::string& ref, bool record = true);
  /// State.Status from inspect ("" if inspect fails); unrecorded.
  std::string status_of(const std::string& ref);
  /// What `logs REF` prints on stdout; unrecorded.
  std::string logs_of(const std::string& ref);
  /// `ls -a --format json`, parsed (an empty array on failure).
  nlohmann::json list_all(bool record = true);
  /// The full ids `ls -a --format json` shows.
  std::vector<std::string> all_ids();

  /// Polls `condition` every 100 ms until it holds or `timeout` passes;
  /// returns whether it held.
  static bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);
  /// Waits until `logs REF` (stdout and stderr) contains `text`.
  bool wait_for_log(const std::string& ref, std::string_view text,
                    std::chrono::milliseconds timeout = std::chrono::seconds(60));

  /// The processes (monitor, QEMU, virtiofsd) that belong to container
  /// `id`: they name its id or its runtime directory.
  std::vector<std::string> processes_of(const std::string& id);
  /// Expects that no process of container `id` is left, allowing its
  /// monitor a moment to finish exiting: it frees the container's lock
  /// (what stop, wait and rm wait for) before its last few milliseconds of
  /// teardown, which a loaded host may stretch.
  void expect_no_processes(const std::string& id);
  /// Expects that nothing of container `id` is left: no process, no
  /// run/<id12>, no containers/<id>, no entry in `ls -a`.
  void expect_gone(const std::string& id);
};

}  // namespace vessel::test
