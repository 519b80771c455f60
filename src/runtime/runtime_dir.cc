#include "runtime/runtime_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include "base/log.h"
#include "base/strings.h"
#include "runtime/paths.h"
#include "sys/host_cgroup.h"

namespace vessel::runtime {

std::string runtime_dir_of(const std::string& root, const std::string& id) {
  return run_dir(root) + "/" + id.substr(0, 12);
}

std::string monitor_socket_of(const std::string& root, const std::string& id) {
  return runtime_dir_of(root, id) + "/monitor.sock";
}

namespace {
constexpr const char* kMaintenanceMarker = "/maintenance";
}  // namespace

Result<RuntimeDir> RuntimeDir::create(const std::string& root, const std::string& id,
                                      bool maintenance) {
  VESSEL_TRY(sys::make_dirs(run_dir(root), 0700));
  std::string dir = runtime_dir_of(root, id);
  if (!remove_if_stale(root, id))
    return Error(ErrorCode::kAlreadyExists, "container " + id.substr(0, 12) + " is running");
  // The lock is taken under a private temporary name, then the directory is
  // renamed into place, so nobody sees it unlocked.
  std::string tmp = run_dir(root) + "/." + id.substr(0, 12) + "." + std::to_string(::getpid());
  (void)sys::remove_tree(tmp);
  if (::mkdir(tmp.c_str(), 0700) != 0) return Error::from_errno(errno, "mkdir '" + tmp + "'");
  auto lock = sys::FileLock::acquire(tmp + "/lock");
  Status marked = ok_status();
  if (lock.ok() && maintenance) marked = sys::write_file_atomic(tmp + kMaintenanceMarker, "", 0600);
  if (!marked.ok()) {
    (void)sys::remove_tree(tmp);
    return marked.error();
  }
  if (!lock.ok() || ::rename(tmp.c_str(), dir.c_str()) != 0) {
    int e = errno;
    (void)sys::remove_tree(tmp);
    if (!lock.ok()) return lock.error();
    return Error::from_errno(e, "create runtime directory '" + dir + "'");
  }
  return RuntimeDir(dir, std::move(*lock));
}

RuntimeDir::~RuntimeDir() {
  if (path_.empty() || !lock_) return;
  // Unlink everything first, then drop the lock: a concurrent check sees
  // either a held lock or no directory.
  if (auto s = sys::remove_tree(path_); !s.ok()) log::warn(s.error().to_string());
}

bool owner_alive(const std::string& root, const std::string& id) {
  auto lock = sys::FileLock::try_acquire(runtime_dir_of(root, id) + "/lock");
  return lock.ok() && !lock->has_value();
}

bool in_maintenance(const std::string& root, const std::string& id) {
  return owner_alive(root, id) &&
         ::access((runtime_dir_of(root, id) + kMaintenanceMarker).c_str(), F_OK) == 0;
}

bool running_owner(const std::string& root, const std::string& id) {
  if (!owner_alive(root, id)) return false;
  return ::access((runtime_dir_of(root, id) + kMaintenanceMarker).c_str(), F_OK) != 0;
}

Status record_host_cgroups(const std::string& dir, const std::vector<std::string>& cgroups) {
  std::string text;
  for (const auto& c : cgroups)
    text += c + "\n";
  return sys::write_file_atomic(dir + "/cgroups", text, 0600);
}

namespace {
// The host cgroups a dead monitor recorded: empty now that its processes
// are gone (rmdir refuses one that is not).
void remove_recorded_cgroups(const std::string& dir) {
  auto text = sys::read_file(dir + "/cgroups", 1 << 16);
  if (!text.ok()) return;
  std::vector<std::string> dirs;
  for (std::string_view line : split(*text, '\n'))
    if (starts_with(line, "/sys/fs/cgroup/")) dirs.emplace_back(line);
  sys::remove_host_cgroups(dirs);
}
}  // namespace

bool remove_if_stale(const std::string& root, const std::string& id) {
  std::string dir = runtime_dir_of(root, id);
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) return true;
  auto lock = sys::FileLock::try_acquire(dir + "/lock");
  if (lock.ok() && !lock->has_value()) return false;  // held: alive
  log::debug("removing runtime files of a dead monitor: " + dir);
  remove_recorded_cgroups(dir);
  if (auto s = sys::remove_tree(dir); !s.ok()) {
    log::warn(s.error().to_string());
    return false;
  }
  return true;
}

void remove_stale_runtime_dirs(const std::string& root) {
  std::string dir = run_dir(root);
  auto names = sys::list_dir(dir);
  if (!names.ok()) return;
  for (const auto& name : *names) {
    std::string path = dir + "/" + name;
    if (name[0] == '.') {
      // Not yet renamed into place: its creator may be between mkdir and
      // taking the lock. Only an old one is abandoned.
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0 || ::time(nullptr) - st.st_mtime < 60) continue;
      (void)sys::remove_tree(path);
      continue;
    }
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    auto lock = sys::FileLock::try_acquire(path + "/lock");
    if (lock.ok() && !lock->has_value()) continue;
    log::debug("removing runtime files of a dead monitor: " + path);
    remove_recorded_cgroups(path);
    if (auto s = sys::remove_tree(path); !s.ok()) log::warn(s.error().to_string());
  }
}

}  // namespace vessel::runtime
