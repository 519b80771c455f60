// The runtime directory of a running container: <root>/run/<id12>/, holding
// the monitor's socket, QEMU's and virtiofsd's sockets, and a lock file the
// monitor holds for as long as it lives. A free lock means the monitor is
// gone (killed, crashed): its QEMU and virtiofsd died with it
// (PR_SET_PDEATHSIG), and the directory is garbage.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "sys/fs.h"

namespace vessel::runtime {

/// <root>/run/<first 12 characters of id>.
std::string runtime_dir_of(const std::string& root, const std::string& id);
/// The monitor's socket in it.
std::string monitor_socket_of(const std::string& root, const std::string& id);

class RuntimeDir {
 public:
  /// Creates the directory with its lock held; kAlreadyExists if a live
  /// owner holds it. A stale one (free lock) is replaced. `maintenance`:
  /// the owner boots the VM only to reach its files (a copy from or into a
  /// stopped container), marked so from the directory's first appearance.
  static Result<RuntimeDir> create(const std::string& root, const std::string& id,
                                   bool maintenance = false);
  RuntimeDir(RuntimeDir&&) = default;
  RuntimeDir& operator=(RuntimeDir&&) = default;
  /// Removes the directory (the lock goes with it).
  ~RuntimeDir();
  const std::string& path() const { return path_; }

 private:
  RuntimeDir(std::string path, sys::FileLock lock)
      : path_(std::move(path)), lock_(std::move(lock)) {}
  std::string path_;
  std::optional<sys::FileLock> lock_;
};

/// Records the host cgroups of id's VM (sys::HostCgroup::dirs()) in its
/// runtime directory, so that whoever finds the owner dead removes them.
Status record_host_cgroups(const std::string& dir, const std::vector<std::string>& cgroups);

/// True while the owner of id's runtime directory (its monitor) lives.
bool owner_alive(const std::string& root, const std::string& id);

/// True while a maintenance monitor owns it (RuntimeDir::create's
/// `maintenance`): the VM is up for a copy, the container is not running.
bool in_maintenance(const std::string& root, const std::string& id);

/// owner_alive and not in_maintenance: the container runs (or starts, or
/// waits to restart).
bool running_owner(const std::string& root, const std::string& id);

/// Removes id's runtime directory if its owner is dead; true if none is left.
bool remove_if_stale(const std::string& root, const std::string& id);

/// Removes the runtime directories of every dead owner under <root>/run.
void remove_stale_runtime_dirs(const std::string& root);

}  // namespace vessel::runtime
