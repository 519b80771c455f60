#include "oci/spec.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

#include "base/strings.h"

namespace vessel::oci {
namespace {

using Json = nlohmann::json;

// config.json comes from the caller (containerd, Podman), which took much of
// it from an image, so it is read as untrusted input: every access checks
// the JSON type first (nlohmann::json never throws here), and sizes are
// bounded.
constexpr size_t kMaxSpecBytes = 4 << 20;
constexpr size_t kMaxItems = 4096;  // args, env, mounts, gids, ...

Error field_error(const std::string& field, const std::string& why) {
  return Error(ErrorCode::kInvalidArgument, field + ": " + why);
}

std::string join(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

// The member, or nullptr when absent or null (Go writes null for nil).
const Json* find(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::string> get_string(const Json& obj, const std::string& key, const std::string& path,
                               bool required, const std::string& fallback = "") {
  const Json* v = find(obj, key);
  if (!v) {
    if (required) return field_error(join(path, key), "missing");
    return fallback;
  }
  if (!v->is_string()) return field_error(join(path, key), "not a string");
  return v->get<std::string>();
}

Result<bool> get_bool(const Json& obj, const std::string& key, const std::string& path) {
  const Json* v = find(obj, key);
  if (!v) return false;
  if (!v->is_boolean()) return field_error(join(path, key), "not a boolean");
  return v->get<bool>();
}

// An integer in [min, max]; absent -> nullopt.
Result<std::optional<int64_t>> get_int(const Json& obj, const std::string& key,
                                       const std::string& path, int64_t min, int64_t max) {
  const Json* v = find(obj, key);
  if (!v) return std::optional<int64_t>();
  int64_t n;
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(max))
      return field_error(join(path, key), "out of range (at most " + std::to_string(max) + ")");
    n = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    n = v->get<int64_t>();
  } else {
    return field_error(join(path, key), "not an integer");
  }
  if (n < min || n > max)
    return field_error(join(path, key),
                       "out of range (" + std::to_string(min) + " to " + std::to_string(max) + ")");
  return std::optional<int64_t>(n);
}

// Like get_int, for unsigned 64-bit values (rlimits, byte counts).
Result<std::optional<uint64_t>> get_u64(const Json& obj, const std::string& key,
                                        const std::string& path) {
  const Json* v = find(obj, key);
  if (!v) return std::optional<uint64_t>();
  if (v->is_number_unsigned()) return std::optional<uint64_t>(v->get<uint64_t>());
  if (v->is_number_integer()) {
    int64_t n = v->get<int64_t>();
    if (n < 0) return field_error(join(path, key), "negative");
    return std::optional<uint64_t>(static_cast<uint64_t>(n));
  }
  return field_error(join(path, key), "not an integer");
}

Result<std::vector<std::string>> get_strings(const Json& obj, const std::string& key,
                                             const std::string& path) {
  std::vector<std::string> out;
  const Json* v = find(obj, key);
  if (!v) return out;
  if (!v->is_array()) return field_error(join(path, key), "not an array");
  if (v->size() > kMaxItems) return field_error(join(path, key), "too many items");
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string())
      return field_error(join(path, key) + "[" + std::to_string(i) + "]", "not a string");
    out.push_back((*v)[i].get<std::string>());
  }
  return out;
}

Result<const Json*> get_object(const Json& obj, const std::string& key, const std::string& path) {
  const Json* v = find(obj, key);
  if (v && !v->is_object()) return field_error(join(path, key), "not an object");
  return v;
}

Result<const Json*> get_array(const Json& obj, const std::string& key, const std::string& path) {
  const Json* v = find(obj, key);
  if (v && !v->is_array()) return field_error(join(path, key), "not an array");
  if (v && v->size() > kMaxItems) return field_error(join(path, key), "too many items");
  return v;
}

bool non_empty(const Json* v) {
  return v && !v->empty();
}

Result<Json> parse_json(std::string_view text, const std::string& what) {
  if (text.size() > kMaxSpecBytes)
    return Error(ErrorCode::kInvalidArgument,
                 what + ": larger than " + std::to_string(kMaxSpecBytes) + " bytes");
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error(ErrorCode::kInvalidArgument, what + ": not valid JSON");
  if (!j.is_object()) return Error(ErrorCode::kInvalidArgument, what + ": not a JSON object");
  return j;
}

// process.capabilities: five optional arrays of linux/capability.h names.
Result<protocol::Capabilities> capabilities_from(const Json& caps, const std::string& path,
                                                 std::vector<std::string>& ignored) {
  protocol::Capabilities out;
  struct Named {
    const char* key;
    uint64_t* set;
  };
  for (Named n : {Named{"bounding", &out.bounding}, Named{"effective", &out.effective},
                  Named{"permitted", &out.permitted}, Named{"inheritable", &out.inheritable},
                  Named{"ambient", &out.ambient}}) {
    VESSEL_ASSIGN_OR_RETURN(std::vector<std::string> names, get_strings(caps, n.key, path));
    for (size_t i = 0; i < names.size(); ++i) {
      auto number = protocol::capability_number(names[i]);
      if (!number)
        return field_error(join(path, n.key) + "[" + std::to_string(i) + "]",
                           "unknown capability '" + names[i] + "'");
      *n.set |= uint64_t{1} << *number;
    }
  }
  // runc raises an ambient capability only if it is permitted and
  // inheritable, and warns about the rest; `runc spec` itself lists ambient
  // capabilities without inheritable ones. The same here, said in the log.
  if (uint64_t skipped = out.ambient & ~(out.permitted & out.inheritable)) {
    std::string names;
    for (uint32_t c = 0; c <= protocol::kCapLast; ++c)
      if (skipped >> c & 1)
        names += std::string(names.empty() ? "" : ", ") + protocol::capability_name(c);
    ignored.push_back(join(path, "ambient") + ": " + names +
                      " not both permitted and inheritable, so not raised (as runc does)");
    out.ambient &= ~skipped;
  }
  return out;
}

Result<ResourceUpdate> resources_from(const Json& resources, const std::string& rp,
                                      std::vector<std::string>& ignored) {
  ResourceUpdate out;
  VESSEL_ASSIGN_OR_RETURN(const Json* memory, get_object(resources, "memory", rp));
  if (memory) {
    VESSEL_ASSIGN_OR_RETURN(out.memory_bytes,
                            get_int(*memory, "limit", rp + ".memory", -1, INT64_MAX));
    for (const char* k : {"reservation", "swap", "kernel", "kernelTCP", "swappiness"})
      if (find(*memory, k))
        ignored.push_back(rp + ".memory." + k + ": the VM has no swap; only limit applies");
  }
  VESSEL_ASSIGN_OR_RETURN(const Json* cpu, get_object(resources, "cpu", rp));
  if (cpu) {
    VESSEL_ASSIGN_OR_RETURN(out.cpu_quota_usec, get_int(*cpu, "quota", rp + ".cpu", -1, INT64_MAX));
    VESSEL_ASSIGN_OR_RETURN(out.cpu_period_usec, get_int(*cpu, "period", rp + ".cpu", 0, 1000000));
    for (const char* k : {"shares", "cpus", "mems", "realtimeRuntime", "realtimePeriod", "idle"})
      if (find(*cpu, k))
        ignored.push_back(rp + ".cpu." + k +
                          ": the VM's vCPUs are its own; only quota/period apply");
  }
  VESSEL_ASSIGN_OR_RETURN(const Json* pids, get_object(resources, "pids", rp));
  if (pids) {
    VESSEL_ASSIGN_OR_RETURN(out.pids, get_int(*pids, "limit", rp + ".pids", -1, INT64_MAX));
  }
  VESSEL_ASSIGN_OR_RETURN(const Json* hugepages, get_array(resources, "hugepageLimits", rp));
  if (non_empty(hugepages))
    return field_error(rp + ".hugepageLimits", "huge pages are not supported");
  VESSEL_ASSIGN_OR_RETURN(const Json* rdma, get_object(resources, "rdma", rp));
  if (non_empty(rdma)) return field_error(rp + ".rdma", "not supported");
  for (const char* k : {"devices", "blockIO", "network", "unified"})
    if (find(resources, k))
      ignored.push_back(rp + "." + k + ": the guest's devices and I/O are the VM's own");
  return out;
}

Result<Process> process_from(const Json& p, const std::string& path) {
  Process out;
  VESSEL_ASSIGN_OR_RETURN(out.args, get_strings(p, "args", path));
  if (out.args.empty() || out.args[0].empty())
    return field_error(join(path, "args"), "no command given");
  if (find(p, "commandLine")) return field_error(join(path, "commandLine"), "Windows only");
  VESSEL_ASSIGN_OR_RETURN(out.env, get_strings(p, "env", path));
  for (size_t i = 0; i < out.env.size(); ++i) {
    const auto& e = out.env[i];
    if (e.empty() || e[0] == '=' || e.find('=') == std::string::npos ||
        e.find('\0') != std::string::npos)
      return field_error(join(path, "env") + "[" + std::to_string(i) + "]",
                         "'" + e + "' is not KEY=VALUE");
  }
  VESSEL_ASSIGN_OR_RETURN(out.cwd, get_string(p, "cwd", path, true));
  if (out.cwd.empty() || out.cwd[0] != '/')
    return field_error(join(path, "cwd"), "'" + out.cwd + "' is not an absolute path");
  VESSEL_ASSIGN_OR_RETURN(out.terminal, get_bool(p, "terminal", path));
  VESSEL_ASSIGN_OR_RETURN(const Json* size, get_object(p, "consoleSize", path));
  if (size) {
    std::string sp = join(path, "consoleSize");
    VESSEL_ASSIGN_OR_RETURN(auto h, get_int(*size, "height", sp, 0, 65535));
    VESSEL_ASSIGN_OR_RETURN(auto w, get_int(*size, "width", sp, 0, 65535));
    out.rows = static_cast<uint16_t>(h.value_or(0));
    out.cols = static_cast<uint16_t>(w.value_or(0));
  }

  VESSEL_ASSIGN_OR_RETURN(const Json* user, get_object(p, "user", path));
  if (user) {
    std::string up = join(path, "user");
    VESSEL_ASSIGN_OR_RETURN(auto uid, get_int(*user, "uid", up, 0, UINT32_MAX - 1));
    VESSEL_ASSIGN_OR_RETURN(auto gid, get_int(*user, "gid", up, 0, UINT32_MAX - 1));
    out.uid = static_cast<uint32_t>(uid.value_or(0));
    out.gid = static_cast<uint32_t>(gid.value_or(0));
    VESSEL_ASSIGN_OR_RETURN(const Json* gids, get_array(*user, "additionalGids", up));
    if (gids)
      for (size_t i = 0; i < gids->size(); ++i) {
        const Json& g = (*gids)[i];
        if (!g.is_number_unsigned() || g.get<uint64_t>() >= UINT32_MAX)
          return field_error(join(up, "additionalGids") + "[" + std::to_string(i) + "]",
                             "not a group id");
        out.additional_gids.push_back(static_cast<uint32_t>(g.get<uint64_t>()));
      }
    VESSEL_ASSIGN_OR_RETURN(auto umask, get_int(*user, "umask", up, 0, 0777));
    // The guest's processes start with umask 022, which is what callers ask
    // for; anything else would be silently different.
    if (umask && *umask != 022) return field_error(join(up, "umask"), "only 0022 is supported");
    VESSEL_ASSIGN_OR_RETURN(std::string username, get_string(*user, "username", up, false));
    if (!username.empty()) return field_error(join(up, "username"), "Windows only");
  }

  VESSEL_ASSIGN_OR_RETURN(const Json* rlimits, get_array(p, "rlimits", path));
  if (rlimits)
    for (size_t i = 0; i < rlimits->size(); ++i) {
      std::string rp = join(path, "rlimits") + "[" + std::to_string(i) + "]";
      const Json& r = (*rlimits)[i];
      if (!r.is_object()) return field_error(rp, "not an object");
      VESSEL_ASSIGN_OR_RETURN(std::string type, get_string(r, "type", rp, true));
      std::string name = type;
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (name.rfind("rlimit_", 0) != 0) return field_error(rp, "unknown type '" + type + "'");
      name = name.substr(7);
      auto resource = protocol::rlimit_resource(name);
      if (!resource) return field_error(rp, "unknown type '" + type + "'");
      VESSEL_ASSIGN_OR_RETURN(auto soft, get_u64(r, "soft", rp));
      VESSEL_ASSIGN_OR_RETURN(auto hard, get_u64(r, "hard", rp));
      if (!soft || !hard) return field_error(rp, "soft and hard are both required");
      if (*soft > *hard) return field_error(rp, "soft limit above the hard one");
      out.rlimits.push_back({*resource, *soft, *hard});
      auto text = [](uint64_t v) {
        return v == protocol::kRlimInfinity ? std::string("-1") : std::to_string(v);
      };
      out.ulimits.push_back(name + "=" + text(*soft) + ":" + text(*hard));
    }

  VESSEL_ASSIGN_OR_RETURN(out.no_new_privileges, get_bool(p, "noNewPrivileges", path));
  VESSEL_ASSIGN_OR_RETURN(const Json* caps, get_object(p, "capabilities", path));
  if (caps) {
    VESSEL_ASSIGN_OR_RETURN(out.capabilities,
                            capabilities_from(*caps, join(path, "capabilities"), out.ignored));
  }
  // apparmorProfile, selinuxLabel, oomScoreAdj: type-checked here and
  // reported as ignored by parse_spec.
  VESSEL_TRY(get_string(p, "apparmorProfile", path, false));
  VESSEL_TRY(get_string(p, "selinuxLabel", path, false));
  VESSEL_TRY(get_int(p, "oomScoreAdj", path, -1000, 1000));
  VESSEL_ASSIGN_OR_RETURN(const Json* io, get_object(p, "ioPriority", path));
  if (io) return field_error(join(path, "ioPriority"), "not supported");
  VESSEL_ASSIGN_OR_RETURN(const Json* sched, get_object(p, "scheduler", path));
  if (sched) return field_error(join(path, "scheduler"), "not supported");
  return out;
}

// Mount types whose file system the guest makes for every container by
// itself (vessel-init: /proc, /sys, /dev, /dev/pts, /dev/shm, the cgroup
// v2 hierarchy; see docs/architecture.md "Boot path"). A spec that asks for
// them at their usual place gets the guest's.
bool guest_provides(const std::string& type, const std::string& dest) {
  static const std::set<std::pair<std::string, std::string>> kProvided = {
      {"proc", "/proc"},
      {"sysfs", "/sys"},
      {"tmpfs", "/dev"},
      {"devpts", "/dev/pts"},
      {"tmpfs", "/dev/shm"},
      {"shm", "/dev/shm"},
      {"mqueue", "/dev/mqueue"},
      {"cgroup", "/sys/fs/cgroup"},
      {"cgroup2", "/sys/fs/cgroup"},
  };
  return kProvided.count({type, dest}) > 0;
}

// Options of a bind mount we honour ("ro") or that describe what a bind
// mount into a VM of its own is anyway (propagation, no device nodes or
// setuid from a host directory mattering to the host).
const std::set<std::string>& bind_options() {
  static const std::set<std::string> kOptions = {
      "bind",  "rbind",   "ro",       "rw",         "rprivate", "private",     "rslave",
      "slave", "rshared", "shared",   "nosuid",     "nodev",    "noexec",      "suid",
      "dev",   "exec",    "relatime", "norelatime", "noatime",  "strictatime", "rro",
      "rrw",   "z",       "Z",        "nodiratime",
  };
  return kOptions;
}

Status map_mounts(const Json& root, Spec& spec) {
  VESSEL_ASSIGN_OR_RETURN(const Json* mounts, get_array(root, "mounts", ""));
  if (!mounts) return ok_status();
  for (size_t i = 0; i < mounts->size(); ++i) {
    std::string mp = "mounts[" + std::to_string(i) + "]";
    const Json& m = (*mounts)[i];
    if (!m.is_object()) return field_error(mp, "not an object");
    VESSEL_ASSIGN_OR_RETURN(std::string dest, get_string(m, "destination", mp, true));
    if (dest.empty() || dest[0] != '/')
      return field_error(mp + ".destination", "'" + dest + "' is not an absolute path");
    mp += " (" + dest + ")";
    VESSEL_ASSIGN_OR_RETURN(std::string type, get_string(m, "type", mp, false));
    VESSEL_ASSIGN_OR_RETURN(std::string source, get_string(m, "source", mp, false));
    VESSEL_ASSIGN_OR_RETURN(auto options, get_strings(m, "options", mp));
    if (find(m, "uidMappings") || find(m, "gidMappings"))
      return field_error(mp, "id-mapped mounts are not supported");
    bool bind = type == "bind" ||
                std::find(options.begin(), options.end(), "bind") != options.end() ||
                std::find(options.begin(), options.end(), "rbind") != options.end();
    // Normalise trailing slashes so "/dev/" is "/dev".
    while (dest.size() > 1 && dest.back() == '/')
      dest.pop_back();
    if (!bind && guest_provides(type, dest)) continue;
    bool read_only = std::find(options.begin(), options.end(), "ro") != options.end() ||
                     std::find(options.begin(), options.end(), "rro") != options.end();
    if (bind) {
      if (source.empty() || source[0] != '/')
        return field_error(mp + ".source",
                           "a bind mount needs an absolute host path (got '" + source + "')");
      for (const auto& o : options)
        if (!bind_options().count(o))
          return field_error(mp + ".options", "bind mount option '" + o + "' is not supported");
      runtime::MountSpec ms;
      ms.type = runtime::MountSpec::Type::kBind;
      ms.source = source;
      ms.target = dest;
      ms.read_only = read_only;
      spec.config.mounts.push_back(std::move(ms));
      continue;
    }
    if (type == "tmpfs") {
      // size= and mode= are made in the guest; the flags that only limit
      // what can be done in a tmpfs of the container's own are accepted.
      std::string kept;
      for (const auto& o : options) {
        if (o.rfind("size=", 0) == 0 || o.rfind("mode=", 0) == 0) {
          kept += (kept.empty() ? "" : ",") + o;
        } else if (!(o == "nosuid" || o == "nodev" || o == "noexec" || o == "rw" || o == "ro" ||
                     o == "strictatime" || o == "relatime" || o == "noatime" || o == "rprivate" ||
                     o == "private" || o == "tmpcopyup")) {
          return field_error(mp + ".options", "tmpfs option '" + o + "' is not supported");
        }
      }
      runtime::MountSpec ms;
      ms.type = runtime::MountSpec::Type::kTmpfs;
      ms.target = dest;
      ms.read_only = read_only;
      ms.options = kept;
      spec.config.mounts.push_back(std::move(ms));
      continue;
    }
    if (type.empty()) return field_error(mp + ".type", "missing (and not a bind mount)");
    return field_error(
        mp + ".type",
        "'" + type +
            "' is not supported here (Vessel makes proc, sysfs, devpts, "
            "mqueue and cgroup at their usual places, tmpfs anywhere, and bind mounts)");
  }
  return ok_status();
}

struct JoinedNamespace {
  std::string field, type, path;
};

Status map_linux(const Json& root, Spec& spec, std::vector<JoinedNamespace>& joined) {
  VESSEL_ASSIGN_OR_RETURN(const Json* lx, get_object(root, "linux", ""));
  if (!lx) return ok_status();
  const std::string lp = "linux";

  VESSEL_ASSIGN_OR_RETURN(const Json* namespaces, get_array(*lx, "namespaces", lp));
  if (namespaces) {
    for (size_t i = 0; i < namespaces->size(); ++i) {
      std::string np = "linux.namespaces[" + std::to_string(i) + "]";
      const Json& n = (*namespaces)[i];
      if (!n.is_object()) return field_error(np, "not an object");
      VESSEL_ASSIGN_OR_RETURN(std::string type, get_string(n, "type", np, true));
      VESSEL_ASSIGN_OR_RETURN(std::string path, get_string(n, "path", np, false));
      if (type == "network") {
        spec.netns_path = path;
      } else if (type == "pid" || type == "ipc" || type == "uts" || type == "mount" ||
                 type == "cgroup") {
        // The VM is all of these, of the container's own. Joining another
        // container's (a path) needs the same VM: a pod's containers join
        // their sandbox's pid, ipc and uts (checked once the annotations
        // are read).
        if (!path.empty()) joined.push_back({np, type, path});
      } else if (type == "user") {
        return field_error(np, "user namespaces are not supported");
      } else if (type == "time") {
        return field_error(np, "time namespaces are not supported");
      } else {
        return field_error(np, "unknown namespace type '" + type + "'");
      }
    }
  }
  VESSEL_ASSIGN_OR_RETURN(const Json* uidmap, get_array(*lx, "uidMappings", lp));
  VESSEL_ASSIGN_OR_RETURN(const Json* gidmap, get_array(*lx, "gidMappings", lp));
  if (non_empty(uidmap) || non_empty(gidmap))
    return field_error("linux.uidMappings", "user namespaces are not supported");

  VESSEL_ASSIGN_OR_RETURN(const Json* resources, get_object(*lx, "resources", lp));
  if (resources) {
    const std::string rp = "linux.resources";
    VESSEL_ASSIGN_OR_RETURN(ResourceUpdate r, resources_from(*resources, rp, spec.ignored));
    if (r.memory_bytes && *r.memory_bytes > 0) {
      if (*r.memory_bytes < (32 << 20))
        return field_error(rp + ".memory.limit", "at least 32 MiB is needed (got " +
                                                     std::to_string(*r.memory_bytes) + " bytes)");
      spec.config.memory_bytes = static_cast<uint64_t>(*r.memory_bytes);
    }
    if (r.cpu_quota_usec && *r.cpu_quota_usec > 0) {
      int64_t per = r.cpu_period_usec && *r.cpu_period_usec > 0 ? *r.cpu_period_usec : 100000;
      // Checked before multiplying: quota is up to INT64_MAX.
      if (*r.cpu_quota_usec / per >= 255)
        return field_error(rp + ".cpu.quota", "more than 255 CPUs");
      int64_t millis = (*r.cpu_quota_usec * 1000 + per - 1) / per;
      spec.config.cpu_millis = static_cast<uint32_t>(millis);
      spec.config.cpus = static_cast<unsigned>(std::max<int64_t>(1, (millis + 999) / 1000));
    }
    if (r.pids && *r.pids > 0) spec.config.pids_limit = static_cast<uint64_t>(*r.pids);
  }

  VESSEL_ASSIGN_OR_RETURN(const Json* devices, get_array(*lx, "devices", lp));
  if (non_empty(devices))
    return field_error("linux.devices", "host device nodes cannot be passed into the VM");
  VESSEL_ASSIGN_OR_RETURN(const Json* intel, get_object(*lx, "intelRdt", lp));
  if (intel) return field_error("linux.intelRdt", "not supported");
  VESSEL_ASSIGN_OR_RETURN(const Json* personality, get_object(*lx, "personality", lp));
  if (personality) return field_error("linux.personality", "not supported");
  VESSEL_ASSIGN_OR_RETURN(const Json* sysctl, get_object(*lx, "sysctl", lp));
  if (non_empty(sysctl)) {
    for (auto it = sysctl->begin(); it != sysctl->end(); ++it)
      if (!it.value().is_string()) return field_error("linux.sysctl." + it.key(), "not a string");
    spec.ignored.push_back("linux.sysctl: not applied in the guest yet");
  }
  for (const char* k : {"seccomp", "maskedPaths", "readonlyPaths", "cgroupsPath",
                        "rootfsPropagation", "mountLabel"})
    if (find(*lx, k))
      spec.ignored.push_back(std::string("linux.") + k +
                             ": the container's VM is its boundary (docs/kubernetes.md)");
  return ok_status();
}

}  // namespace

Result<Process> parse_process(std::string_view json, const std::string& where) {
  VESSEL_ASSIGN_OR_RETURN(Json j, parse_json(json, where));
  return process_from(j, where);
}

Result<ResourceUpdate> parse_resources(std::string_view json, std::vector<std::string>& ignored) {
  VESSEL_ASSIGN_OR_RETURN(Json j, parse_json(json, "resources"));
  return resources_from(j, "resources", ignored);
}

protocol::Capabilities process_capabilities(const Process& p) {
  constexpr uint64_t kAll = protocol::kAllCapabilities;
  return p.capabilities.value_or(protocol::Capabilities{kAll, kAll, kAll, 0, 0});
}

Result<Spec> parse_spec_text(std::string_view json, const std::string& bundle) {
  VESSEL_ASSIGN_OR_RETURN(Json j, parse_json(json, "config.json"));
  Spec spec;
  VESSEL_ASSIGN_OR_RETURN(std::string version, get_string(j, "ociVersion", "", true));
  if (version.rfind("1.", 0) != 0) return field_error("ociVersion", "'" + version + "' is not 1.x");

  VESSEL_ASSIGN_OR_RETURN(const Json* root, get_object(j, "root", ""));
  if (!root) return field_error("root", "missing");
  VESSEL_ASSIGN_OR_RETURN(std::string root_path, get_string(*root, "path", "root", true));
  if (root_path.empty()) return field_error("root.path", "empty");
  if (root_path[0] != '/') root_path = bundle + "/" + root_path;
  spec.config.rootfs = root_path;
  VESSEL_ASSIGN_OR_RETURN(spec.config.read_only, get_bool(*root, "readonly", "root"));

  VESSEL_ASSIGN_OR_RETURN(const Json* process, get_object(j, "process", ""));
  if (!process) return field_error("process", "missing (create needs a process)");
  VESSEL_ASSIGN_OR_RETURN(spec.process, process_from(*process, "process"));
  const Process& p = spec.process;
  auto& c = spec.config;
  c.argv = p.args;
  c.env = p.env;
  c.workdir = p.cwd;
  c.uid = p.uid;
  c.gid = p.gid;
  c.groups = p.additional_gids;
  c.tty = p.terminal;
  c.ulimits = p.ulimits;
  c.no_new_privileges = p.no_new_privileges;
  c.capabilities = process_capabilities(p);
  spec.ignored.insert(spec.ignored.end(), p.ignored.begin(), p.ignored.end());
  for (const char* k : {"apparmorProfile", "selinuxLabel"})
    if (find(*process, k))
      spec.ignored.push_back(std::string("process.") + k +
                             ": a host security label; the VM is the boundary");
  if (find(*process, "oomScoreAdj"))
    spec.ignored.push_back("process.oomScoreAdj: the VM's own OOM killer picks within it");

  VESSEL_ASSIGN_OR_RETURN(c.hostname, get_string(j, "hostname", "", false));
  if (c.hostname.size() > 64) return field_error("hostname", "longer than 64 characters");
  VESSEL_ASSIGN_OR_RETURN(std::string domain, get_string(j, "domainname", "", false));
  if (!domain.empty()) return field_error("domainname", "not supported");

  VESSEL_TRY(map_mounts(j, spec));
  std::vector<JoinedNamespace> joined;
  VESSEL_TRY(map_linux(j, spec, joined));

  VESSEL_ASSIGN_OR_RETURN(const Json* hooks, get_object(j, "hooks", ""));
  if (hooks)
    for (auto it = hooks->begin(); it != hooks->end(); ++it)
      if (!it.value().is_null() && !it.value().empty())
        return field_error("hooks." + it.key(), "hooks are not supported");
  VESSEL_ASSIGN_OR_RETURN(const Json* annotations, get_object(j, "annotations", ""));
  if (annotations) {
    if (annotations->size() > kMaxItems) return field_error("annotations", "too many items");
    for (auto it = annotations->begin(); it != annotations->end(); ++it) {
      if (!it.value().is_string()) return field_error("annotations." + it.key(), "not a string");
      spec.annotations[it.key()] = it.value().get<std::string>();
    }
  }
  for (const char* k : {"windows", "solaris", "vm", "zos"})
    if (find(j, k)) return field_error(k, "not supported on Linux");
  spec.pod = pod_annotations(spec.annotations);
  for (const auto& n : joined) {
    bool pod_shares = n.type == "pid" || n.type == "ipc" || n.type == "uts";
    if (spec.pod.sandbox_id.empty() || !pod_shares)
      return field_error(n.field, "joining an existing " + n.type + " namespace ('" + n.path +
                                      "') is not supported: each container has its own VM" +
                                      (pod_shares ? " (or its pod's)" : ""));
  }

  // The network is the VM's own: lo only (see the runtime for a path).
  c.network_mode = "none";
  c.labels = spec.annotations;
  return spec;
}

PodAnnotations pod_annotations(const std::map<std::string, std::string>& a) {
  auto get = [&](const char* cri, const char* crio) -> std::string {
    if (auto it = a.find(cri); it != a.end()) return it->second;
    if (auto it = a.find(crio); it != a.end()) return it->second;
    return "";
  };
  PodAnnotations p;
  std::string type = get("io.kubernetes.cri.container-type", "io.kubernetes.cri-o.ContainerType");
  p.sandbox = type == "sandbox";
  // containerd names the sandbox as its own sandbox: that is no member.
  if (!p.sandbox)
    p.sandbox_id = get("io.kubernetes.cri.sandbox-id", "io.kubernetes.cri-o.SandboxID");
  return p;
}

Result<uint64_t> pod_memory(const std::map<std::string, std::string>& a) {
  for (const char* key : {"io.vessel.pod-memory", "io.kubernetes.cri.sandbox-memory"}) {
    auto it = a.find(key);
    if (it == a.end()) continue;
    auto v = parse_u64(it->second);
    if (!v)
      return field_error(std::string("annotations.") + key,
                         "'" + it->second + "' is not a number of bytes");
    if (*v == 0) continue;  // the CRI's: the pod's containers set no limit
    if (*v < (64ull << 20))
      return field_error(std::string("annotations.") + key,
                         "a pod's VM needs at least 64 MiB (got " + it->second + " bytes)");
    return *v;
  }
  return kPodMemoryDefault;
}

Result<Spec> parse_spec(std::string_view json, const std::string& bundle) {
  VESSEL_ASSIGN_OR_RETURN(Spec spec, parse_spec_text(json, bundle));
  struct stat st;
  if (::stat(spec.config.rootfs.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return field_error("root.path", "'" + spec.config.rootfs + "' does not exist");
    return Error::from_errno(errno, "root.path '" + spec.config.rootfs + "'");
  }
  if (!S_ISDIR(st.st_mode))
    return field_error("root.path", "'" + spec.config.rootfs + "' is not a directory");
  return spec;
}

std::string default_spec() {
  Json spec = {
      {"ociVersion", kOciVersion},
      {"process",
       {{"terminal", true},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", {"sh"}},
        {"env", {std::string("PATH=") + runtime::kDefaultPath, "TERM=xterm"}},
        {"cwd", "/"},
        {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}}}},
      {"root", {{"path", "rootfs"}, {"readonly", false}}},
      {"hostname", "vessel"},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev/pts"}, {"type", "devpts"}, {"source", "devpts"}},
        {{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"}}}},
      {"linux",
       {{"namespaces",
         {{{"type", "pid"}},
          {{"type", "network"}},
          {{"type", "ipc"}},
          {{"type", "uts"}},
          {{"type", "mount"}}}}}},
  };
  return spec.dump(1, '\t') + "\n";
}

}  // namespace vessel::oci
