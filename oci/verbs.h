// vessel-runtime's verbs: argument parsing and printing only; the lifecycle
// is oci::Runtime's (src/oci/runtime.h).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace vessel::ocirt {

/// runc's global flags (containerd's shim, conmon and CRI-O pass them
/// before the verb).
struct Global {
  std::string root = "/run/vessel-runtime";
  std::string log;
  std::string log_format = "text";
  bool debug = false;
  bool systemd_cgroup = false;  // accepted: the container's cgroups are in its VM
};

/// A verb's body: its exit status.
using Verb = std::function<int()>;

/// Adds the verbs to `app`; the returned map says which to run.
void add_verbs(CLI::App& app, const Global& global, std::vector<std::pair<CLI::App*, Verb>>& out);

/// Logs `message` at error level (to --log, and to stderr as runc does).
void report_error(const std::string& message);
/// Errors also go to stderr (when --log is a file).
void set_log_to_file(bool on);

}  // namespace vessel::ocirt
