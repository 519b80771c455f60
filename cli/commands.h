// The `vessel` verbs: one file each, each a thin layer over libvessel.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>

#include "containers/containers.h"
#include "images/image_store.h"

namespace vessel::cli {

/// Options every command sees.
struct GlobalOptions {
  std::optional<std::string> root;  // --root
  bool debug = false;               // --debug
};

/// Exit codes scripts can rely on (Docker's conventions).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // a command failed
inline constexpr int kExitUsage = 125;  // bad flags, or vessel itself failed to run a container
inline constexpr int kExitCannotExec = 126;
inline constexpr int kExitNotFound = 127;

/// Registers a verb on `app`; the returned callback runs it after parsing
/// and yields the exit code.
using Runner = std::function<int()>;
Runner add_run(CLI::App& app, const GlobalOptions& global);
Runner add_image(CLI::App& app, const GlobalOptions& global);
Runner add_system(CLI::App& app, const GlobalOptions& global);
Runner add_registry(CLI::App& app, const GlobalOptions& global);
Runner add_container(CLI::App& app, const GlobalOptions& global);
Runner add_volume(CLI::App& app, const GlobalOptions& global);
Runner add_network(CLI::App& app, const GlobalOptions& global);
Runner add_copy(CLI::App& app, const GlobalOptions& global);  // cp, export
Runner add_machine(CLI::App& app, const GlobalOptions& global);

/// Attaches our stdio to a container's main process (whose monitor is
/// starting or running) until it exits, then waits for the monitor to finish
/// cleaning up. Returns the process's exit code (Docker's 125/126/127 when it
/// could not start). `verb` prefixes error messages.
int attach_container(containers::Containers& cs, const containers::ContainerRecord& r, bool tty,
                     bool interactive, const std::string& verb);

/// A time as inspect shows it (RFC 3339, nanoseconds); Docker's zero time for 0.
std::string iso_time(int64_t ns);

/// Applies `-e` flags to `env`: KEY=VALUE replaces KEY; a bare KEY takes
/// this process's value (and is skipped when unset), as Docker does.
void apply_env_flags(std::vector<std::string>& env, const std::vector<std::string>& flags);

/// Runs `spawn` in the running container (or machine) `r` through its
/// monitor, with our stdio attached unless `detach`, and returns its exit
/// code (126/127 when it could not start, 1 for Vessel's own failures).
int exec_process(containers::Containers& cs, const containers::ContainerRecord& r,
                 protocol::Spawn spawn, bool tty, bool interactive, bool detach,
                 const std::string& verb);

/// Flags shared by `image pull` and `run` (which pulls missing images).
struct PullFlags {
  std::string platform;
  std::string scheme = "auto";
  bool tls_verify = true;
  std::string progress = "auto";
  int max_concurrent_downloads = 3;
};
void add_pull_flags(CLI::App* cmd, PullFlags& flags);
/// Pulls `ref` into `store`, showing progress on stderr as `flags` say.
Result<images::ImageRecord> pull_image(images::ImageStore& store, const image::Reference& ref,
                                       const PullFlags& flags);

/// If `ref` names an image embedded in the build (vessel/busybox), loads it
/// into `store` and returns it; nullopt when there is no such embedded image.
Result<std::optional<images::ImageRecord>> load_embedded(images::ImageStore& store,
                                                         const image::Reference& ref);

/// An image found locally, embedded, or pulled, with its ext4 snapshot.
struct ResolvedImage {
  image::Reference ref;
  images::ImageRecord record;
  image::ImageConfig config;
  std::string snapshot;
  std::string root_base;  // ImageStore::root_base, when asked for
};
/// Finds image `name` in the store under `root`, loading an embedded one or
/// pulling it as `pull` says ("missing", "always" or "never"). A non-zero
/// `root_base_room` also gives its writable base with that much room.
Result<ResolvedImage> resolve_image(const std::string& root, const std::string& name,
                                    const std::string& pull, const PullFlags& flags,
                                    uint64_t root_base_room = 0);

/// Prints "vessel: <message>" to stderr.
void print_error(const std::string& message);

}  // namespace vessel::cli
