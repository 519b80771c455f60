#include "api/create_body.h"

#include <cmath>

#include "agent/capabilities.h"
#include "net/port_spec.h"
#include "runtime/mounts.h"

namespace vessel::api {

using nlohmann::json;

namespace {

Error bad(const std::string& field, const std::string& what) {
  return Error(ErrorCode::kInvalidArgument, field + ": " + what);
}

const json* field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::string> get_string(const json& obj, const char* key, const std::string& path) {
  const json* v = field(obj, key);
  if (!v) return std::string();
  if (!v->is_string()) return bad(path + key, "expected a string");
  std::string s = v->get<std::string>();
  if (s.find('\0') != std::string::npos) return bad(path + key, "contains a NUL byte");
  return s;
}

Result<bool> get_bool(const json& obj, const char* key, const std::string& path) {
  const json* v = field(obj, key);
  if (!v) return false;
  if (!v->is_boolean()) return bad(path + key, "expected true or false");
  return v->get<bool>();
}

Result<int64_t> get_int(const json& obj, const char* key, const std::string& path) {
  const json* v = field(obj, key);
  if (!v) return int64_t{0};
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_unsigned() && v->get<uint64_t>() <= INT64_MAX)
    return static_cast<int64_t>(v->get<uint64_t>());
  if (v->is_number_float() && std::isfinite(v->get<double>()) &&
      std::floor(v->get<double>()) == v->get<double>() && std::fabs(v->get<double>()) < 9e18)
    return static_cast<int64_t>(v->get<double>());
  return bad(path + key, "expected an integer");
}

// A list of strings; Docker also takes a single string for Cmd/Entrypoint.
Result<std::optional<std::vector<std::string>>> get_strings(const json& obj, const char* key,
                                                            const std::string& path,
                                                            bool single_ok = false) {
  const json* v = field(obj, key);
  if (!v) return std::optional<std::vector<std::string>>();
  std::vector<std::string> out;
  if (single_ok && v->is_string()) {
    out.push_back(v->get<std::string>());
  } else {
    if (!v->is_array()) return bad(path + key, "expected a list of strings");
    if (v->size() > 4096) return bad(path + key, "too many entries (at most 4096)");
    for (const auto& x : *v) {
      if (!x.is_string()) return bad(path + key, "expected a list of strings");
      out.push_back(x.get<std::string>());
    }
  }
  for (const auto& s : out)
    if (s.find('\0') != std::string::npos) return bad(path + key, "contains a NUL byte");
  return std::optional<std::vector<std::string>>(std::move(out));
}

Result<std::map<std::string, std::string>> get_map(const json& obj, const char* key,
                                                   const std::string& path) {
  std::map<std::string, std::string> out;
  const json* v = field(obj, key);
  if (!v) return out;
  if (!v->is_object()) return bad(path + key, "expected an object of strings");
  for (auto& [k, x] : v->items()) {
    if (!x.is_string()) return bad(path + key + "." + k, "expected a string");
    out[k] = x.get<std::string>();
  }
  return out;
}

Error unsupported(const std::string& what) {
  return Error(ErrorCode::kInvalidArgument,
               what +
                   " is not supported by Vessel (each container is its own VM; see "
                   "docs/docker-api.md)");
}

// HostConfig fields Vessel has no way to honour: refused when set (clients
// send them zero, empty or null when unset) rather than silently not
// applied. Each with the docker flag that sets it.
struct Unhonoured {
  const char* field;
  const char* flag;
};
constexpr Unhonoured kUnhonoured[] = {
    {"CpuShares", "--cpu-shares"},
    {"CpusetCpus", "--cpuset-cpus"},
    {"CpusetMems", "--cpuset-mems"},
    {"CpuRealtimePeriod", "--cpu-rt-period"},
    {"CpuRealtimeRuntime", "--cpu-rt-runtime"},
    {"CpuCount", "--cpu-count"},
    {"CpuPercent", "--cpu-percent"},
    {"BlkioWeight", "--blkio-weight"},
    {"BlkioWeightDevice", "--blkio-weight-device"},
    {"BlkioDeviceReadBps", "--device-read-bps"},
    {"BlkioDeviceWriteBps", "--device-write-bps"},
    {"BlkioDeviceReadIOps", "--device-read-iops"},
    {"BlkioDeviceWriteIOps", "--device-write-iops"},
    {"IOMaximumIOps", "--io-maxiops"},
    {"IOMaximumBandwidth", "--io-maxbandwidth"},
    {"KernelMemory", "--kernel-memory"},
    {"KernelMemoryTCP", "--kernel-memory-tcp"},
    {"MemoryReservation", "--memory-reservation"},
    {"OomKillDisable", "--oom-kill-disable"},
    {"OomScoreAdj", "--oom-score-adj"},
    {"CgroupParent", "--cgroup-parent"},
    {"DeviceCgroupRules", "--device-cgroup-rule"},
    {"DeviceRequests", "--gpus"},
    {"Links", "--link"},
    {"VolumesFrom", "--volumes-from"},
    {"GroupAdd", "--group-add"},
    {"Sysctls", "--sysctl"},
    {"StorageOpt", "--storage-opt"},
};

Status read_host_config(const json& hc, CreateSpec& out) {
  const std::string p = "HostConfig.";
  if (!hc.is_object()) return bad("HostConfig", "expected an object");
  auto& c = out.config;
  for (const auto& u : kUnhonoured)
    if (auto it = hc.find(u.field); it != hc.end() && is_set(*it))
      return unsupported(p + u.field + " (" + u.flag + ")");
  // The guest's /dev/shm is Docker's default size (guest/container.cc).
  VESSEL_ASSIGN_OR_RETURN(int64_t shm, get_int(hc, "ShmSize", p));
  if (shm != 0 && shm != (64 << 20))
    return unsupported(p + "ShmSize (--shm-size) other than 64 MiB, the size of /dev/shm,");
  // What each container is anyway: its own cgroup namespace, its VM.
  for (auto [key, same] :
       {std::pair{"Isolation", "default"}, {"CgroupnsMode", "private"}, {"Runtime", "runc"}}) {
    VESSEL_ASSIGN_OR_RETURN(std::string v, get_string(hc, key, p));
    if (!v.empty() && v != same) return unsupported(p + key + " '" + v + "'");
  }
  // Refused rather than ignored: a container would silently not get them.
  if (const json* d = field(hc, "Devices"); d && !(d->is_array() && d->empty()))
    return unsupported("HostConfig.Devices (--device)");
  // Capabilities and no_new_privs apply to every process in the guest, as
  // `vessel run --cap-add/--cap-drop/--security-opt` does.
  VESSEL_ASSIGN_OR_RETURN(auto cap_add, get_strings(hc, "CapAdd", p));
  VESSEL_ASSIGN_OR_RETURN(auto cap_drop, get_strings(hc, "CapDrop", p));
  c.cap_add = cap_add.value_or(std::vector<std::string>{});
  c.cap_drop = cap_drop.value_or(std::vector<std::string>{});
  for (const auto& [key, names] : {std::pair{"CapAdd", &c.cap_add}, {"CapDrop", &c.cap_drop}})
    for (const auto& name : *names)
      if (auto cap = agent::parse_capability(name); !cap.ok()) return cap.error().wrap(p + key);
  // --privileged as far as capabilities go: the VM has no host devices to
  // give (Devices is refused above) and applies no seccomp or AppArmor
  // profile to lift.
  VESSEL_ASSIGN_OR_RETURN(bool privileged, get_bool(hc, "Privileged", p));
  if (privileged) c.cap_add.push_back("ALL");
  VESSEL_ASSIGN_OR_RETURN(auto security_opts, get_strings(hc, "SecurityOpt", p));
  for (const auto& o : security_opts.value_or(std::vector<std::string>{}))
    if (auto s = agent::apply_security_opt(o, c.no_new_privileges); !s.ok())
      return s.error().wrap(p + "SecurityOpt");
  for (const char* mode : {"PidMode", "IpcMode", "UTSMode", "UsernsMode"}) {
    VESSEL_ASSIGN_OR_RETURN(std::string m, get_string(hc, mode, p));
    if (m == "host" || m.rfind("container:", 0) == 0) return unsupported(p + mode + " '" + m + "'");
  }
  VESSEL_ASSIGN_OR_RETURN(std::string network_mode, get_string(hc, "NetworkMode", p));
  if (network_mode == "host" || network_mode.rfind("container:", 0) == 0)
    return unsupported("HostConfig.NetworkMode '" + network_mode + "' (--network " + network_mode +
                       ")");
  if (!network_mode.empty() && network_mode != "default" && network_mode != "bridge")
    out.attachments.push_back({network_mode, "", "", {}});

  VESSEL_ASSIGN_OR_RETURN(auto binds, get_strings(hc, "Binds", p));
  for (const auto& b : binds.value_or(std::vector<std::string>{})) {
    auto m = runtime::parse_volume_flag(b);
    if (!m.ok()) return m.error().wrap(p + "Binds '" + b + "'");
    c.mounts.push_back(std::move(*m));
  }
  if (const json* mounts = field(hc, "Mounts")) {
    if (!mounts->is_array()) return bad(p + "Mounts", "expected a list");
    for (const auto& m : *mounts) {
      if (!m.is_object()) return bad(p + "Mounts", "expected a list of objects");
      VESSEL_ASSIGN_OR_RETURN(std::string type, get_string(m, "Type", p + "Mounts[]."));
      VESSEL_ASSIGN_OR_RETURN(std::string source, get_string(m, "Source", p + "Mounts[]."));
      VESSEL_ASSIGN_OR_RETURN(std::string target, get_string(m, "Target", p + "Mounts[]."));
      VESSEL_ASSIGN_OR_RETURN(bool ro, get_bool(m, "ReadOnly", p + "Mounts[]."));
      for (const std::string& s : {type, source, target})
        if (s.find(',') != std::string::npos)
          return bad(p + "Mounts", "'" + s + "': commas are not supported");
      std::string spec = "type=" + type + ",target=" + target;
      if (!source.empty()) spec += ",source=" + source;
      if (ro) spec += ",readonly";
      auto ms = runtime::parse_mount_flag(spec);
      if (!ms.ok()) return ms.error().wrap(p + "Mounts");
      c.mounts.push_back(std::move(*ms));
    }
  }
  VESSEL_ASSIGN_OR_RETURN(auto tmpfs, get_map(hc, "Tmpfs", p));
  for (const auto& [dst, opts] : tmpfs) {
    auto m = runtime::parse_tmpfs_flag(opts.empty() ? dst : dst + ":" + opts);
    if (!m.ok()) return m.error().wrap(p + "Tmpfs");
    c.mounts.push_back(std::move(*m));
  }
  VESSEL_ASSIGN_OR_RETURN(int64_t memory, get_int(hc, "Memory", p));
  if (memory < 0) return bad(p + "Memory", "must not be negative");
  if (memory > 0 && memory < (6 << 20)) return bad(p + "Memory", "the minimum is 6 MiB");
  if (memory > 0) c.memory_bytes = static_cast<uint64_t>(memory);
  VESSEL_ASSIGN_OR_RETURN(int64_t nano, get_int(hc, "NanoCpus", p));
  if (nano < 0 || nano > 255'000'000'000) return bad(p + "NanoCpus", "expected 0 < cpus <= 255");
  // --cpu-quota/--cpu-period: the share of a CPU they make, as --cpus
  // (applied with the default 100 ms period).
  VESSEL_ASSIGN_OR_RETURN(int64_t quota, get_int(hc, "CpuQuota", p));
  VESSEL_ASSIGN_OR_RETURN(int64_t period, get_int(hc, "CpuPeriod", p));
  if (period != 0 && (period < 1000 || period > 1'000'000))
    return bad(p + "CpuPeriod", "expected 1000 to 1000000 microseconds");
  if (quota > 0) {
    if (nano > 0) return bad(p + "CpuQuota", "conflicts with NanoCpus (--cpus): give one of them");
    if (quota < 1000) return bad(p + "CpuQuota", "expected at least 1000 microseconds");
    nano = quota * 1'000'000'000 / (period ? period : 100'000);
    if (nano > 255'000'000'000) return bad(p + "CpuQuota", "more than 255 CPUs");
  }
  if (nano > 0) {
    c.cpus = static_cast<unsigned>((nano + 999'999'999) / 1'000'000'000);
    if (nano % 1'000'000'000) c.cpu_millis = static_cast<uint32_t>(nano / 1'000'000);
  }
  VESSEL_ASSIGN_OR_RETURN(int64_t pids, get_int(hc, "PidsLimit", p));
  if (pids > 0) c.pids_limit = static_cast<uint64_t>(pids);
  VESSEL_ASSIGN_OR_RETURN(c.auto_remove, get_bool(hc, "AutoRemove", p));
  VESSEL_ASSIGN_OR_RETURN(c.read_only, get_bool(hc, "ReadonlyRootfs", p));
  VESSEL_ASSIGN_OR_RETURN(out.publish_all, get_bool(hc, "PublishAllPorts", p));
  if (const json* rp = field(hc, "RestartPolicy")) {
    if (!rp->is_object()) return bad(p + "RestartPolicy", "expected an object");
    VESSEL_ASSIGN_OR_RETURN(std::string name, get_string(*rp, "Name", p + "RestartPolicy."));
    VESSEL_ASSIGN_OR_RETURN(int64_t max, get_int(*rp, "MaximumRetryCount", p + "RestartPolicy."));
    if (name.empty()) name = "no";
    if (name == "on-failure" && max > 0) name += ":" + std::to_string(max);
    auto policy = runtime::parse_restart_policy(name);
    if (!policy.ok()) return policy.error().wrap(p + "RestartPolicy");
    c.restart = *policy;
  }
  if (const json* pb = field(hc, "PortBindings")) {
    if (!pb->is_object()) return bad(p + "PortBindings", "expected an object");
    for (auto& [port, bindings] : pb->items()) {
      std::vector<std::pair<std::string, std::string>> list;
      if (bindings.is_array() && !bindings.empty()) {
        for (const auto& b : bindings) {
          if (!b.is_object()) return bad(p + "PortBindings." + port, "expected objects");
          VESSEL_ASSIGN_OR_RETURN(std::string ip, get_string(b, "HostIp", p + "PortBindings."));
          VESSEL_ASSIGN_OR_RETURN(std::string hp, get_string(b, "HostPort", p + "PortBindings."));
          list.emplace_back(ip, hp);
        }
      } else if (bindings.is_null() || bindings.is_array()) {
        list.emplace_back("", "");
      } else {
        return bad(p + "PortBindings." + port, "expected a list");
      }
      for (const auto& [ip, hp] : list) {
        std::string spec = port;
        if (!ip.empty())
          spec = ip + ":" + hp + ":" + port;
        else if (!hp.empty())
          spec = hp + ":" + port;
        auto maps = net::parse_publish(spec);
        if (!maps.ok()) return maps.error().wrap(p + "PortBindings '" + port + "'");
        c.ports.insert(c.ports.end(), maps->begin(), maps->end());
      }
    }
  }
  VESSEL_ASSIGN_OR_RETURN(auto dns, get_strings(hc, "Dns", p));
  c.dns = dns.value_or(std::vector<std::string>{});
  VESSEL_ASSIGN_OR_RETURN(auto dns_search, get_strings(hc, "DnsSearch", p));
  c.dns_search = dns_search.value_or(std::vector<std::string>{});
  VESSEL_ASSIGN_OR_RETURN(auto dns_options, get_strings(hc, "DnsOptions", p));
  c.dns_options = dns_options.value_or(std::vector<std::string>{});
  VESSEL_ASSIGN_OR_RETURN(auto hosts, get_strings(hc, "ExtraHosts", p));
  c.extra_hosts = hosts.value_or(std::vector<std::string>{});
  if (const json* ul = field(hc, "Ulimits")) {
    if (!ul->is_array()) return bad(p + "Ulimits", "expected a list");
    for (const auto& u : *ul) {
      if (!u.is_object()) return bad(p + "Ulimits", "expected a list of objects");
      VESSEL_ASSIGN_OR_RETURN(std::string name, get_string(u, "Name", p + "Ulimits[]."));
      VESSEL_ASSIGN_OR_RETURN(int64_t soft, get_int(u, "Soft", p + "Ulimits[]."));
      VESSEL_ASSIGN_OR_RETURN(int64_t hard, get_int(u, "Hard", p + "Ulimits[]."));
      c.ulimits.push_back(name + "=" + std::to_string(soft) + ":" + std::to_string(hard));
    }
  }
  return ok_status();
}

}  // namespace

bool is_set(const json& v) {
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get<std::string>().empty();
  if (v.is_array() || v.is_object()) return !v.empty();
  return v.is_boolean() && v.get<bool>();
}

Result<networks::Attachment> parse_endpoint_config(const json& ep, const std::string& network,
                                                   const std::string& p) {
  networks::Attachment a{network == "bridge" ? networks::kDefaultNetwork : network, "", "", {}};
  if (ep.is_null()) return a;
  if (!ep.is_object()) return bad(p.substr(0, p.size() - 1), "expected an object");
  VESSEL_ASSIGN_OR_RETURN(auto aliases, get_strings(ep, "Aliases", p));
  a.aliases = aliases.value_or(std::vector<std::string>{});
  VESSEL_ASSIGN_OR_RETURN(a.mac, get_string(ep, "MacAddress", p));
  if (const json* ipam = field(ep, "IPAMConfig")) {
    if (!ipam->is_object()) return bad(p + "IPAMConfig", "expected an object");
    VESSEL_ASSIGN_OR_RETURN(a.ip, get_string(*ipam, "IPv4Address", p + "IPAMConfig."));
  }
  return a;
}

Result<std::optional<registry::Credentials>> parse_registry_auth(const std::string& header) {
  if (header.empty()) return std::optional<registry::Credentials>();
  std::string b = header;
  for (auto& c : b)
    c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (b.size() % 4)
    b += '=';
  auto text = registry::base64_decode(b);
  json j = text ? json::parse(*text, nullptr, false) : json();
  if (!j.is_object()) return Error(ErrorCode::kInvalidArgument, "invalid X-Registry-Auth header");
  std::string user = j.value("username", ""), pass = j.value("password", "");
  if (user.empty() && pass.empty()) return std::optional<registry::Credentials>();
  return std::optional<registry::Credentials>(registry::Credentials{user, pass});
}

Result<CreateSpec> parse_create_body(const json& body) {
  CreateSpec out;
  if (!body.is_object()) return bad("body", "expected a JSON object");
  auto& c = out.config;
  VESSEL_ASSIGN_OR_RETURN(out.image, get_string(body, "Image", ""));
  if (out.image.empty())
    return Error(ErrorCode::kInvalidArgument, "Config.Image: an image is required");
  VESSEL_ASSIGN_OR_RETURN(c.hostname, get_string(body, "Hostname", "Config."));
  VESSEL_ASSIGN_OR_RETURN(c.tty, get_bool(body, "Tty", "Config."));
  VESSEL_ASSIGN_OR_RETURN(c.open_stdin, get_bool(body, "OpenStdin", "Config."));
  VESSEL_ASSIGN_OR_RETURN(auto env, get_strings(body, "Env", "Config."));
  c.env = env.value_or(std::vector<std::string>{});
  for (const auto& e : c.env)
    if (e.empty() || e[0] == '=') return bad("Config.Env", "'" + e + "': expected KEY=VALUE");
  VESSEL_ASSIGN_OR_RETURN(out.cmd, get_strings(body, "Cmd", "Config.", true));
  VESSEL_ASSIGN_OR_RETURN(out.entrypoint, get_strings(body, "Entrypoint", "Config.", true));
  VESSEL_ASSIGN_OR_RETURN(std::string workdir, get_string(body, "WorkingDir", "Config."));
  if (!workdir.empty()) {
    if (workdir[0] != '/') return bad("Config.WorkingDir", "'" + workdir + "' is not absolute");
    c.workdir = workdir;
    out.workdir_set = true;
  }
  VESSEL_ASSIGN_OR_RETURN(std::string user, get_string(body, "User", "Config."));
  if (!user.empty()) {
    c.user = user;  // the handler turns numeric ones into uid/gid
    out.user_set = true;
  }
  VESSEL_ASSIGN_OR_RETURN(c.labels, get_map(body, "Labels", "Config."));
  VESSEL_ASSIGN_OR_RETURN(std::string stop_signal, get_string(body, "StopSignal", "Config."));
  if (!stop_signal.empty()) {
    auto sig = runtime::parse_signal(stop_signal);
    if (!sig.ok()) return sig.error().wrap("Config.StopSignal");
    c.stop_signal = *sig;
    out.stop_signal_set = true;
  }
  if (field(body, "StopTimeout")) {
    VESSEL_ASSIGN_OR_RETURN(int64_t t, get_int(body, "StopTimeout", "Config."));
    if (t < 0 || t > 86400) return bad("Config.StopTimeout", "expected 0 to 86400 seconds");
    c.stop_timeout = static_cast<int>(t);
  }
  if (const json* hc = field(body, "HostConfig")) VESSEL_TRY(read_host_config(*hc, out));
  // Anonymous volumes, where nothing of HostConfig is mounted already
  // (docker-compose lists a service's volumes here too).
  if (const json* vols = field(body, "Volumes")) {
    if (!vols->is_object()) return bad("Config.Volumes", "expected an object");
    for (auto& [target, ignored] : vols->items()) {
      (void)ignored;
      auto m = runtime::parse_volume_flag(target);
      if (!m.ok()) return m.error().wrap("Config.Volumes");
      bool covered = false;
      for (const auto& existing : c.mounts)
        covered = covered || existing.target == m->target;
      if (!covered) c.mounts.push_back(std::move(*m));
    }
  }
  if (const json* nc = field(body, "NetworkingConfig")) {
    if (!nc->is_object()) return bad("NetworkingConfig", "expected an object");
    if (const json* eps = field(*nc, "EndpointsConfig")) {
      if (!eps->is_object()) return bad("NetworkingConfig.EndpointsConfig", "expected an object");
      for (auto& [name, ep] : eps->items()) {
        if (!ep.is_null() && !ep.is_object())
          return bad("NetworkingConfig.EndpointsConfig." + name, "expected an object");
        VESSEL_ASSIGN_OR_RETURN(
            networks::Attachment a,
            parse_endpoint_config(ep, name, "NetworkingConfig.EndpointsConfig." + name + "."));
        bool merged = false;
        for (auto& existing : out.attachments)
          if (existing.network == a.network) {
            existing = a;
            merged = true;
          }
        if (!merged) out.attachments.push_back(std::move(a));
      }
    }
  }
  return out;
}

}  // namespace vessel::api
