#include "sys/host_cgroup.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>

#include "base/strings.h"
#include "sys/fs.h"
#include "sys/systemd_scope.h"

namespace vessel::sys {
namespace {

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// The path of this process's cgroup in the hierarchy whose /proc/self/cgroup
// line has `controllers` ("memory", "cpu,cpuacct"; "" for v2's "0::").
std::string own_path(const std::string& self_cgroup, std::string_view controller, bool v2) {
  for (std::string_view line : split(self_cgroup, '\n')) {
    auto first = line.find(':');
    if (first == std::string_view::npos) continue;
    auto second = line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    std::string_view ctrls = line.substr(first + 1, second - first - 1);
    std::string_view path = line.substr(second + 1);
    if (v2) {
      if (line.substr(0, first) == "0" && ctrls.empty()) return std::string(path);
      continue;
    }
    for (std::string_view c : split(ctrls, ','))
      if (c == controller) return std::string(path);
  }
  return "/";
}

std::string join(const std::string& a, const std::string& b) {
  std::string r = a;
  if (b != "/") r += b;
  return r;
}

Status write_value(const std::string& file, const std::string& value) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, open_fd(file, O_WRONLY | O_CLOEXEC));
  if (::write(fd.get(), value.data(), value.size()) < 0)
    return Error::from_errno(errno, "write '" + value + "' to '" + file + "'");
  return ok_status();
}

// Moves this process into the cgroup directory `dir`. A write of a PID to
// cgroup.procs write-locks cgroup_threadgroup_rwsem, whose
// percpu_down_write() first waits for an RCU grace period (7-15 ms on these
// hosts, on the start's critical path twice: in and out). The kernel skips
// that lock for one case: the writer moving only itself, "0" written to a
// v1 hierarchy's `tasks` (cgroup_procs_write_start(): "If the thread is
// `current` ... we can skip the global lock"). For a process of one thread
// that is the whole process (0.1 ms here); a process with more threads,
// or a v2 hierarchy (no `tasks`), takes the locked path.
Status move_self(const std::string& dir, CgroupVersion version) {
  if (version == CgroupVersion::kV1 && thread_count() == 1) {
    if (write_value(dir + "/tasks", "0").ok()) return ok_status();
  }
  return write_value(dir + "/cgroup.procs", std::to_string(::getpid()));
}

// Empty cgroups beside `dir` that a killed monitor (or one whose VM was
// still dying when it was reconciled) left: removed when older than a
// minute, so a sibling just made by a monitor about to move in is spared.
// rmdir refuses any cgroup that has a process in it.
void sweep_stale_siblings(const std::string& dir) {
  std::string parent = dir.substr(0, dir.rfind('/'));
  auto names = list_dir(parent);
  if (!names.ok()) return;
  time_t now = ::time(nullptr);
  for (const auto& n : *names) {
    std::string path = parent + "/" + n;
    if (path == dir) continue;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || now - st.st_mtime < 60) continue;
    ::rmdir(path.c_str());
  }
}

// A cgroup's (and a scope's) name: one path component, not hidden.
Status check_name(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.')
    return Error(ErrorCode::kInvalidArgument, "host cgroup: invalid name '" + name + "'");
  return ok_status();
}

std::vector<std::string>& escape_files() {
  static std::vector<std::string> files;
  return files;
}

}  // namespace

const std::vector<std::string>& outliving_child_cgroups() {
  return escape_files();
}

CgroupVersion cgroup_version(const std::string& fs_root) {
  struct statfs fs;
  if (::statfs(fs_root.c_str(), &fs) != 0) return CgroupVersion::kNone;
  if (fs.f_type == CGROUP2_SUPER_MAGIC) return CgroupVersion::kV2;
  if (exists(fs_root + "/memory") || exists(fs_root + "/pids")) return CgroupVersion::kV1;
  return CgroupVersion::kNone;
}

Result<HostCgroupPlan> plan_host_cgroup(const std::string& name, const HostLimits& limits,
                                        CgroupVersion version, const std::string& fs_root,
                                        const std::string& self_cgroup) {
  VESSEL_TRY(check_name(name));
  HostCgroupPlan p;
  p.version = version;
  switch (version) {
    case CgroupVersion::kNone:
      return Error(ErrorCode::kUnavailable,
                   "host cgroup: no cgroup filesystem at '" + fs_root + "'");
    case CgroupVersion::kV2: {
      std::string slice = fs_root + "/vessel.slice";
      std::string dir = slice + "/vessel-" + name + ".scope";
      p.make = {slice, dir};
      // Controllers reach a cgroup only through its parents' subtree_control.
      p.settings.emplace_back(fs_root + "/cgroup.subtree_control", "+memory +pids +cpu");
      p.settings.emplace_back(slice + "/cgroup.subtree_control", "+memory +pids +cpu");
      if (limits.memory_max) {
        p.settings.emplace_back(dir + "/memory.max", std::to_string(limits.memory_max));
        p.settings.emplace_back(dir + "/memory.swap.max", "0");
      }
      if (limits.pids_max)
        p.settings.emplace_back(dir + "/pids.max", std::to_string(limits.pids_max));
      if (limits.cpu_weight)
        p.settings.emplace_back(dir + "/cpu.weight", std::to_string(limits.cpu_weight));
      p.dirs = {dir};
      p.origins = {join(fs_root, own_path(self_cgroup, "", true))};
      p.memory_dir = dir;
      break;
    }
    case CgroupVersion::kV1: {
      struct Controller {
        const char* name;
        const char* mount;
      };
      for (const Controller c :
           {Controller{"memory", "memory"}, Controller{"pids", "pids"}, Controller{"cpu", "cpu"}}) {
        std::string hierarchy = fs_root + "/" + c.mount;
        if (!exists(hierarchy)) continue;
        std::string origin = join(hierarchy, own_path(self_cgroup, c.name, false));
        std::string parent = origin + "/vessel";
        std::string dir = parent + "/" + name;
        p.make.push_back(parent);
        p.make.push_back(dir);
        std::string ctl = c.name;
        if (ctl == "memory" && limits.memory_max) {
          p.settings.emplace_back(dir + "/memory.limit_in_bytes",
                                  std::to_string(limits.memory_max));
          p.memory_dir = dir;
        } else if (ctl == "memory") {
          p.memory_dir = dir;
        }
        if (ctl == "pids" && limits.pids_max)
          p.settings.emplace_back(dir + "/pids.max", std::to_string(limits.pids_max));
        if (ctl == "cpu" && limits.cpu_weight)
          p.settings.emplace_back(dir + "/cpu.shares", std::to_string(std::max<uint64_t>(
                                                           2, limits.cpu_weight * 1024 / 100)));
        p.dirs.push_back(dir);
        p.origins.push_back(origin);
      }
      if (p.dirs.empty())
        return Error(ErrorCode::kUnavailable,
                     "host cgroup: no memory, pids or cpu hierarchy under '" + fs_root + "'");
      break;
    }
  }
  return p;
}

HostCgroupPlan plan_systemd_cgroup(const std::string& unit, const std::string& slice,
                                   CgroupVersion version, const std::string& fs_root,
                                   const std::string& self_before) {
  HostCgroupPlan p;
  p.version = version;
  p.systemd_unit = unit;
  // A top-level slice's units sit at /<slice>/<unit> in every hierarchy.
  std::string path = "/" + slice + "/" + unit;
  if (version == CgroupVersion::kV2) {
    p.dirs = {fs_root + path};
    if (!self_before.empty()) p.origins = {join(fs_root, own_path(self_before, "", true))};
    p.memory_dir = p.dirs[0];
    return p;
  }
  for (const char* c : {"memory", "pids", "cpu"}) {
    std::string hierarchy = fs_root + "/" + c;
    if (!exists(hierarchy)) continue;
    p.dirs.push_back(hierarchy + path);
    if (!self_before.empty()) p.origins.push_back(join(hierarchy, own_path(self_before, c, false)));
    if (std::string_view(c) == "memory") p.memory_dir = p.dirs.back();
  }
  return p;
}

Result<HostCgroup> HostCgroup::enter(const std::string& name, const HostLimits& limits,
                                     const std::string& fs_root) {
  VESSEL_ASSIGN_OR_RETURN(std::string self, read_file("/proc/self/cgroup", 1 << 16));
  if (fs_root != "/sys/fs/cgroup" || !systemd_manages_cgroups())
    return enter(name, limits, fs_root, self);

  // systemd's delegation rules: a unit of our own, made by systemd.
  CgroupVersion version = cgroup_version(fs_root);
  if (version == CgroupVersion::kNone)
    return Error(ErrorCode::kUnavailable, "host cgroup: no cgroup filesystem at '" + fs_root + "'");
  VESSEL_TRY(check_name(name));
  ScopeRequest q;
  q.unit = "vessel-" + name + ".scope";
  q.slice = "vessel.slice";
  q.description = "Vessel VM " + name;
  q.memory_max = limits.memory_max;
  q.tasks_max = limits.pids_max;
  q.cpu_weight = limits.cpu_weight;
  // A scope of the same name is a monitor of this VM that is exiting (the
  // lock it held is ours now): systemd collects it once it is empty.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (true) {
    Status started = start_scope(q, ::getpid());
    if (started.ok()) break;
    if (started.error().message().find("already exists") == std::string::npos ||
        std::chrono::steady_clock::now() > deadline)
      return started.error().wrap("host cgroup");
    ::usleep(20'000);
  }
  // Where this process was is known only in the host's cgroup namespace
  // (in another, /proc/self/cgroup is relative to its root): elsewhere the
  // monitor stays in the scope until it exits, and so do its daemons.
  struct stat mine, init;
  bool host_ns = ::stat("/proc/self/ns/cgroup", &mine) != 0 ||
                 ::stat("/proc/1/ns/cgroup", &init) != 0 || mine.st_ino == init.st_ino;
  HostCgroupPlan plan =
      plan_systemd_cgroup(q.unit, q.slice, version, fs_root, host_ns ? self : std::string());
  for (const auto& d : plan.dirs)
    if (!exists(d)) return Error(ErrorCode::kInternal, "host cgroup: systemd made no '" + d + "'");
  escape_files().clear();
  for (const auto& o : plan.origins)
    escape_files().push_back(o + "/cgroup.procs");
  return HostCgroup(std::move(plan));
}

Result<HostCgroup> HostCgroup::enter(const std::string& name, const HostLimits& limits,
                                     const std::string& fs_root, const std::string& self) {
  VESSEL_ASSIGN_OR_RETURN(HostCgroupPlan plan,
                          plan_host_cgroup(name, limits, cgroup_version(fs_root), fs_root, self));
  for (const auto& d : plan.make) {
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST)
      return Error::from_errno(errno, "host cgroup: create '" + d + "'");
  }
  for (const auto& d : plan.dirs)
    sweep_stale_siblings(d);
  for (const auto& [file, value] : plan.settings) {
    Status st = write_value(file, value);
    // Enabling a controller that is on already, or one the kernel lacks
    // (swap accounting off), is not a failure; a limit that does not
    // take is.
    if (!st.ok() && (std::string_view(file).ends_with("subtree_control") ||
                     std::string_view(file).ends_with("swap.max")))
      continue;
    if (!st.ok()) {
      remove_host_cgroups(plan.dirs);
      return st.error().wrap("host cgroup");
    }
  }
  for (const auto& d : plan.dirs) {
    Status st = move_self(d, plan.version);
    if (!st.ok()) {
      HostCgroup partial(plan);
      (void)partial.leave();
      return st.error().wrap("host cgroup: enter");
    }
  }
  escape_files().clear();
  for (const auto& o : plan.origins)
    escape_files().push_back(o + "/cgroup.procs");
  return HostCgroup(std::move(plan));
}

void HostCgroup::move_out() {
  if (moved_out_) return;
  moved_out_ = true;
  escape_files().clear();
  for (size_t i = 0; i < plan_.dirs.size() && i < plan_.origins.size(); ++i)
    (void)move_self(plan_.origins[i], plan_.version);
}

Status HostCgroup::leave() {
  move_out();
  Status result = ok_status();
  for (size_t i = 0; i < plan_.dirs.size(); ++i) {
    if (!plan_.systemd_unit.empty()) continue;  // systemd's to remove, once empty
    if (::rmdir(plan_.dirs[i].c_str()) != 0 && errno != ENOENT && result.ok())
      result = Error::from_errno(errno, "host cgroup: remove '" + plan_.dirs[i] + "'");
  }
  plan_.dirs.clear();
  return result;
}

Result<uint64_t> HostCgroup::memory_current() const {
  if (plan_.memory_dir.empty()) return Error(ErrorCode::kUnavailable, "no memory cgroup");
  std::string file =
      plan_.memory_dir +
      (plan_.version == CgroupVersion::kV2 ? "/memory.current" : "/memory.usage_in_bytes");
  VESSEL_ASSIGN_OR_RETURN(std::string text, read_file(file, 4096));
  auto v = parse_u64(trim(text));
  if (!v) return Error(ErrorCode::kInternal, "'" + file + "': not a number");
  return *v;
}

Result<uint64_t> HostCgroup::memory_unreclaimable() const {
  if (plan_.memory_dir.empty()) return Error(ErrorCode::kUnavailable, "no memory cgroup");
  VESSEL_ASSIGN_OR_RETURN(std::string text, read_file(plan_.memory_dir + "/memory.stat", 1 << 16));
  std::string_view anon = plan_.version == CgroupVersion::kV2 ? "anon" : "rss";
  uint64_t total = 0;
  for (std::string_view line : split(text, '\n')) {
    auto space = line.find(' ');
    if (space == std::string_view::npos) continue;
    std::string_view key = line.substr(0, space);
    if (key == anon || key == "shmem") total += parse_u64(trim(line.substr(space + 1))).value_or(0);
  }
  return total;
}

void remove_host_cgroups(const std::vector<std::string>& dirs) {
  for (const auto& d : dirs)
    ::rmdir(d.c_str());
}

int thread_count() {
  auto text = read_file("/proc/self/status", 1 << 16);
  if (!text.ok()) return 0;
  for (std::string_view line : split(*text, '\n')) {
    if (!line.starts_with("Threads:")) continue;
    return static_cast<int>(parse_u64(trim(line.substr(8))).value_or(0));
  }
  return 0;
}

}  // namespace vessel::sys
