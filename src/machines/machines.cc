#include "machines/machines.h"

#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "base/strings.h"
#include "monitor/client.h"
#include "runtime/runtime_dir.h"
#include "sys/fs.h"

namespace vessel::machines {
namespace {

using runtime::ContainerConfig;
using runtime::MountSpec;

Error invalid(const std::string& message) {
  return Error(ErrorCode::kInvalidArgument, message);
}

std::string mib(uint64_t bytes) {
  return std::to_string(bytes >> 20) + " MiB";
}

std::optional<User> from_passwd(const passwd* pw) {
  if (!pw) return std::nullopt;
  return User{pw->pw_name, pw->pw_uid, pw->pw_gid, pw->pw_dir ? pw->pw_dir : "",
              pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh"};
}

// An existing host directory, as an absolute path without symlinks.
Result<std::string> host_dir(const std::string& path, const std::string& what) {
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) return Error::from_errno(errno, what + " '" + path + "'");
  struct stat st;
  if (::stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
    return invalid(what + " '" + path + "' is not a directory");
  return std::string(real);
}

std::string default_file(const std::string& root) {
  return root + "/machines/default";
}

Result<uint64_t> parse_memory(const std::string& text) {
  auto bytes = parse_size(text);
  if (!bytes) return invalid("invalid memory '" + text + "' (expected e.g. 2g or 1536m)");
  if (*bytes < kMinMemory)
    return invalid("memory " + text + " is too small: a machine needs at least " + mib(kMinMemory));
  return *bytes;
}

Result<unsigned> parse_cpus(const std::string& text) {
  auto n = parse_u64(text);
  if (!n || *n < 1 || *n > 255) return invalid("invalid cpus '" + text + "' (expected 1 to 255)");
  return static_cast<unsigned>(*n);
}

Result<std::vector<MountSpec>> parse_mount_list(const std::string& text) {
  std::vector<MountSpec> out;
  if (text.empty() || text == "none") return out;
  for (const auto& item : split(text, ',')) {
    VESSEL_ASSIGN_OR_RETURN(MountSpec m, parse_mount(item));
    out.push_back(std::move(m));
  }
  VESSEL_TRY(runtime::check_mounts(out));
  return out;
}

MountSpec home_bind(const std::string& dir) {
  MountSpec m;
  m.type = MountSpec::Type::kBind;
  m.source = dir;
  m.target = dir;
  return m;
}

}  // namespace

Result<std::optional<User>> invoking_user() {
  if (::geteuid() == 0) {
    const char* sudo_user = ::getenv("SUDO_USER");
    if (!sudo_user || !*sudo_user || std::string(sudo_user) == "root") return std::optional<User>();
    auto u = from_passwd(::getpwnam(sudo_user));
    if (!u) return invalid("SUDO_USER '" + std::string(sudo_user) + "' is not a user of this host");
    return u;
  }
  auto u = from_passwd(::getpwuid(::getuid()));
  if (!u) return invalid("the calling user (uid " + std::to_string(::getuid()) + ") has no name");
  return u;
}

Result<User> parse_user(const std::string& spec) {
  auto parts = split(spec, ':');
  auto bad = [&] {
    return invalid("invalid --user '" + spec + "' (expected NAME or NAME:UID:GID)");
  };
  if (parts.size() != 1 && parts.size() != 3) return bad();
  const std::string& name = parts[0];
  if (name.empty() || name.size() > 32 || name == "root") return bad();
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
      return bad();
  if (parts.size() == 1) {
    auto u = from_passwd(::getpwnam(name.c_str()));
    if (!u) return invalid("user '" + name + "' is not a user of this host: give NAME:UID:GID");
    if (u->uid == 0) return invalid("--user: the machine has root already; name another user");
    return *u;
  }
  auto uid = parse_u64(parts[1]), gid = parse_u64(parts[2]);
  if (!uid || !gid || *uid == 0 || *uid > 0xfffffffe || *gid > 0xfffffffe) return bad();
  User u{name, static_cast<uint32_t>(*uid), static_cast<uint32_t>(*gid), "/home/" + name,
         "/bin/bash"};
  if (auto host = from_passwd(::getpwnam(name.c_str())); host && host->uid == u.uid) {
    u.home = host->home;
    u.shell = host->shell;
  }
  return u;
}

Result<MountSpec> parse_mount(const std::string& text) {
  auto parts = split(text, ':');
  auto bad = [&] {
    return invalid("invalid mount '" + text + "' (expected HOST:GUEST[:ro], absolute paths)");
  };
  if (parts.size() < 2 || parts.size() > 3) return bad();
  if (parts.size() == 3 && parts[2] != "ro" && parts[2] != "rw") return bad();
  if (parts[0].empty() || parts[0][0] != '/' || parts[1].empty() || parts[1][0] != '/')
    return bad();
  MountSpec m;
  m.type = MountSpec::Type::kBind;
  VESSEL_ASSIGN_OR_RETURN(m.source, host_dir(parts[0], "mount source"));
  m.target = parts[1];
  m.read_only = parts.size() == 3 && parts[2] == "ro";
  return m;
}

const MountSpec* home_mount(const ContainerConfig& c) {
  if (!c.machine.share_home) return nullptr;
  for (const auto& m : c.mounts)
    if (m.type == MountSpec::Type::kBind && m.target == c.machine.home) return &m;
  return nullptr;
}

Status apply_pending(ContainerConfig& c) {
  auto& pending = c.machine.pending;
  if (auto it = pending.find("cpus"); it != pending.end()) {
    VESSEL_ASSIGN_OR_RETURN(c.cpus, parse_cpus(it->second));
  }
  if (auto it = pending.find("memory"); it != pending.end()) {
    VESSEL_ASSIGN_OR_RETURN(c.memory_bytes, parse_memory(it->second));
  }
  if (auto it = pending.find("disk"); it != pending.end()) {
    auto bytes = parse_size(it->second);
    if (!bytes) return invalid("invalid disk '" + it->second + "'");
    c.machine.disk_bytes = std::max(c.machine.disk_bytes, *bytes);
  }
  // The home first: `mounts` replaces the other mounts, the home stays.
  if (auto it = pending.find("home"); it != pending.end()) {
    if (const MountSpec* old = home_mount(c)) {
      std::string target = old->target;
      std::erase_if(c.mounts, [&](const MountSpec& m) { return m.target == target; });
    }
    if (it->second == "none") {
      c.machine.share_home = false;
    } else {
      VESSEL_ASSIGN_OR_RETURN(std::string dir, host_dir(it->second, "home directory"));
      c.machine.share_home = true;
      c.machine.home = dir;
      c.mounts.insert(c.mounts.begin(), home_bind(dir));
    }
  }
  if (auto it = pending.find("mounts"); it != pending.end()) {
    VESSEL_ASSIGN_OR_RETURN(auto mounts, parse_mount_list(it->second));
    std::optional<MountSpec> home;
    if (const MountSpec* h = home_mount(c)) home = *h;
    c.mounts = std::move(mounts);
    if (home) c.mounts.insert(c.mounts.begin(), *home);
  }
  VESSEL_TRY(runtime::check_mounts(c.mounts));
  pending.clear();
  return ok_status();
}

Result<std::unique_ptr<Machines>> Machines::open(const std::string& root) {
  VESSEL_ASSIGN_OR_RETURN(auto cs, containers::Containers::open(root));
  return std::unique_ptr<Machines>(new Machines(std::move(cs)));
}

Result<ContainerRecord> Machines::create(const CreateOptions& o) {
  std::string name = o.name.empty() ? "default" : o.name;
  VESSEL_TRY(containers::validate_name(name));
  if (o.cpus < 1 || o.cpus > 255)
    return invalid("invalid --cpus " + std::to_string(o.cpus) + " (expected 1 to 255)");
  if (o.memory_bytes < kMinMemory)
    return invalid("--memory " + std::to_string(o.memory_bytes) +
                   " bytes is too small: a machine needs at least " + mib(kMinMemory));
  struct stat st;
  if (::stat(o.snapshot.c_str(), &st) != 0)
    return Error::from_errno(errno, "image snapshot '" + o.snapshot + "'");
  if (o.disk_bytes < static_cast<uint64_t>(st.st_size))
    return invalid("--disk " + mib(o.disk_bytes) + " is smaller than the image (" +
                   mib(static_cast<uint64_t>(st.st_size)) + ")");
  ContainerConfig c;
  c.root_image = o.snapshot;
  c.image = o.image;
  c.image_id = o.image_id;
  c.hostname = name;
  c.cpus = o.cpus;
  c.memory_bytes = o.memory_bytes;
  c.accel = o.accel;
  c.kernel = o.kernel;
  c.initrd = o.initrd;
  c.ports = o.ports;
  c.stop_timeout = 60;
  c.boot_timeout_seconds = 120;
  c.machine.enabled = true;
  c.machine.disk_bytes = o.disk_bytes;
  c.machine.autostart = o.autostart;
  c.argv = {c.machine.init};
  std::string home;
  if (!o.no_home && (o.user || !o.home.empty())) {
    std::string wanted = o.home.empty() ? o.user->home : o.home;
    VESSEL_ASSIGN_OR_RETURN(home, host_dir(wanted, "home directory"));
  }
  if (o.user) {
    c.machine.user = o.user->name;
    c.machine.uid = o.user->uid;
    c.machine.gid = o.user->gid;
    c.machine.shell = o.user->shell;
    c.machine.home = home.empty() ? o.user->home : home;
  } else {
    c.machine.home = home;
  }
  c.machine.share_home = !home.empty();
  if (!home.empty()) c.mounts.push_back(home_bind(home));
  c.mounts.insert(c.mounts.end(), o.mounts.begin(), o.mounts.end());
  VESSEL_TRY(runtime::check_mounts(c.mounts));
  return cs_->create(std::move(c), name, o.networks);
}

Result<ContainerRecord> Machines::find(const std::string& ref) {
  if (!ref.empty()) return cs_->find(ref, containers::kMachine);
  std::string name = default_name();
  if (!name.empty()) return cs_->find(name, containers::kMachine);
  VESSEL_ASSIGN_OR_RETURN(auto all, list());
  if (all.size() == 1) return all.front();
  return invalid(all.empty() ? "there is no machine: create one with `vessel machine create IMAGE`"
                             : "no machine named and no default machine: name one, or set one "
                               "with `vessel machine set-default NAME`");
}

Result<std::vector<ContainerRecord>> Machines::list() {
  return cs_->list(containers::kMachine);
}

Result<bool> Machines::start(const ContainerRecord& record, bool debug) {
  VESSEL_ASSIGN_OR_RETURN(ContainerRecord r, cs_->reconcile(record));
  if (runtime::owner_alive(root(), r.id)) return false;
  // Pending settings become the configuration; the disk file grows (the
  // guest grows its filesystem at boot).
  VESSEL_TRY(cs_->store().update_container(r.id, [&](ContainerRecord& cur) -> Status {
    VESSEL_ASSIGN_OR_RETURN(ContainerConfig c, runtime::config_from_json(cur.config));
    if (c.machine.pending.empty()) return ok_status();
    VESSEL_TRY(apply_pending(c));
    cur.config = runtime::to_json(c);
    return ok_status();
  }));
  VESSEL_ASSIGN_OR_RETURN(r, cs_->find(r.id, containers::kMachine));
  VESSEL_ASSIGN_OR_RETURN(ContainerConfig c, runtime::config_from_json(r.config));
  struct stat st;
  if (::stat(c.root_image.c_str(), &st) != 0)
    return Error::from_errno(errno, "the machine's disk '" + c.root_image + "'");
  if (static_cast<uint64_t>(st.st_size) < c.machine.disk_bytes &&
      ::truncate(c.root_image.c_str(), static_cast<off_t>(c.machine.disk_bytes)) != 0)
    return Error::from_errno(errno, "grow the machine's disk to " + mib(c.machine.disk_bytes));
  VESSEL_ASSIGN_OR_RETURN(auto launch, cs_->start(r, false, debug));
  if (!launch) return false;
  VESSEL_ASSIGN_OR_RETURN(auto report, monitor::wait_started(*launch));
  if (!report.ok) return Error(ErrorCode::kFailedPrecondition, report.message);
  return true;
}

Status Machines::stop(const ContainerRecord& r, std::chrono::seconds timeout) {
  // Returns once the monitor has gone (the VM powered off or was forced).
  return cs_->stop(r, 0, static_cast<int>(timeout.count()));
}

Status Machines::remove(const ContainerRecord& r, bool force) {
  if (!force && runtime::owner_alive(root(), r.id))
    return Error(ErrorCode::kFailedPrecondition,
                 "machine " + r.name + " is running: stop it first, or use -f");
  VESSEL_TRY(cs_->remove(r, force));
  if (default_name() == r.name) ::unlink(default_file(root()).c_str());
  return ok_status();
}

Result<bool> Machines::set(const ContainerRecord& record,
                           const std::vector<std::string>& settings) {
  if (settings.empty()) return invalid("no setting given (expected KEY=VALUE...)");
  VESSEL_ASSIGN_OR_RETURN(ContainerConfig current, runtime::config_from_json(record.config));
  // Validate everything before anything is stored.
  std::map<std::string, std::string> pending;
  std::optional<bool> autostart;
  for (const auto& s : settings) {
    auto eq = s.find('=');
    std::string key = s.substr(0, eq);
    if (eq == std::string::npos) return invalid("invalid setting '" + s + "' (expected KEY=VALUE)");
    std::string value = s.substr(eq + 1);
    if (key == "cpus") {
      VESSEL_TRY(parse_cpus(value));
    } else if (key == "memory") {
      VESSEL_TRY(parse_memory(value));
    } else if (key == "disk") {
      auto bytes = parse_size(value);
      if (!bytes) return invalid("invalid disk '" + value + "' (expected e.g. 32g)");
      if (*bytes < current.machine.disk_bytes)
        return invalid("disk " + value + " is smaller than the disk (" +
                       mib(current.machine.disk_bytes) + "): a disk only grows");
    } else if (key == "home") {
      if (value != "none") {
        VESSEL_ASSIGN_OR_RETURN(value, host_dir(value, "home directory"));
      }
    } else if (key == "mounts") {
      VESSEL_TRY(parse_mount_list(value));
    } else if (key == "autostart") {
      if (value != "true" && value != "false")
        return invalid("invalid autostart '" + value + "' (expected true or false)");
      autostart = value == "true";
      continue;
    } else {
      std::string known;
      for (const char* k : kSettings)
        known += std::string(known.empty() ? "" : ", ") + k;
      return invalid("unknown setting '" + key + "' (settings: " + known + ")");
    }
    pending[key] = value;
  }
  // Together, the pending settings must make a valid configuration.
  ContainerConfig trial = current;
  for (const auto& [k, v] : pending)
    trial.machine.pending[k] = v;
  VESSEL_TRY(apply_pending(trial));
  VESSEL_TRY(cs_->store().update_container(record.id, [&](ContainerRecord& cur) -> Status {
    VESSEL_ASSIGN_OR_RETURN(ContainerConfig c, runtime::config_from_json(cur.config));
    for (const auto& [k, v] : pending)
      c.machine.pending[k] = v;
    if (autostart) c.machine.autostart = *autostart;
    cur.config = runtime::to_json(c);
    return ok_status();
  }));
  return !pending.empty() && runtime::owner_alive(root(), record.id);
}

std::string Machines::default_name() {
  auto text = sys::read_file(default_file(root()), 4096);
  if (!text.ok()) return "";
  std::string name = *text;
  while (!name.empty() && (name.back() == '\n' || name.back() == ' '))
    name.pop_back();
  return name;
}

Status Machines::set_default(const std::string& name) {
  VESSEL_TRY(sys::make_dirs(root() + "/machines", 0700));
  return sys::write_file_atomic(default_file(root()), name + "\n");
}

}  // namespace vessel::machines
