#include "runtime/config.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "agent/capabilities.h"
#include "agent/ulimit.h"
#include "base/strings.h"

namespace vessel::runtime {
namespace {

using nlohmann::json;

bool has_env(const std::vector<std::string>& env, std::string_view key) {
  return std::any_of(env.begin(), env.end(), [&](const std::string& e) {
    return e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=';
  });
}

constexpr std::pair<RestartPolicy::Kind, const char*> kRestartNames[] = {
    {RestartPolicy::Kind::kNo, "no"},
    {RestartPolicy::Kind::kOnFailure, "on-failure"},
    {RestartPolicy::Kind::kAlways, "always"},
    {RestartPolicy::Kind::kUnlessStopped, "unless-stopped"},
};

json mounts_json(const std::vector<MountSpec>& mounts) {
  json out = json::array();
  for (const auto& m : mounts)
    out.push_back({{"type", mount_type_name(m.type)},
                   {"source", m.source},
                   {"target", m.target},
                   {"read_only", m.read_only},
                   {"options", m.options}});
  return out;
}

Result<std::vector<MountSpec>> mounts_from_json(const json& j) {
  std::vector<MountSpec> out;
  for (const auto& e : j) {
    MountSpec m;
    std::string type = e.at("type").get<std::string>();
    if (type == "bind")
      m.type = MountSpec::Type::kBind;
    else if (type == "volume")
      m.type = MountSpec::Type::kVolume;
    else if (type == "tmpfs")
      m.type = MountSpec::Type::kTmpfs;
    else
      return Error(ErrorCode::kInvalidArgument, "unknown mount type '" + type + "'");
    m.source = e.at("source").get<std::string>();
    m.target = e.at("target").get<std::string>();
    m.read_only = e.at("read_only").get<bool>();
    m.options = e.at("options").get<std::string>();
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

std::string RestartPolicy::to_string() const {
  for (auto [k, name] : kRestartNames)
    if (k == kind)
      return kind == Kind::kOnFailure && max_retries > 0
                 ? std::string(name) + ":" + std::to_string(max_retries)
                 : name;
  return "no";
}

Result<RestartPolicy> parse_restart_policy(const std::string& text) {
  auto colon = text.find(':');
  std::string name = text.substr(0, colon);
  RestartPolicy p;
  bool known = false;
  for (auto [k, n] : kRestartNames)
    if (name == n) {
      p.kind = k;
      known = true;
    }
  auto bad = [&] {
    return Error(ErrorCode::kInvalidArgument,
                 "invalid restart policy '" + text +
                     "' (expected no, on-failure[:max-retries], always or unless-stopped)");
  };
  if (!known) return bad();
  if (colon != std::string::npos) {
    auto n = parse_u64(text.substr(colon + 1));
    if (p.kind != RestartPolicy::Kind::kOnFailure || !n || *n > 1'000'000) return bad();
    p.max_retries = static_cast<int>(*n);
  }
  return p;
}

Result<int> parse_signal(const std::string& text) {
  if (auto n = parse_u64(text)) {
    if (*n >= 1 && *n < static_cast<uint64_t>(NSIG)) return static_cast<int>(*n);
  } else {
    std::string name;
    for (char c : text)
      name += static_cast<char>(::toupper(static_cast<unsigned char>(c)));
    if (name.rfind("SIG", 0) == 0) name = name.substr(3);
    for (int s = 1; s < NSIG; ++s) {
      const char* abbrev = ::sigabbrev_np(s);
      if (abbrev && name == abbrev) return s;
    }
  }
  return Error(ErrorCode::kInvalidArgument, "invalid signal '" + text + "'");
}

Status prepare_config(ContainerConfig& c, const std::string& id) {
  if (c.argv.empty() || c.argv[0].empty())
    return Error(ErrorCode::kInvalidArgument, "no command given");
  if (c.rootfs.empty() == c.root_image.empty())
    return Error(ErrorCode::kInvalidArgument, "give either a root directory or a root image");
  if (c.root_disk && (c.root_image.empty() || c.read_only || c.machine.enabled))
    c.root_disk = false;  // a read-only root or a machine's disk is used as it is
  if (c.workdir.empty() || c.workdir[0] != '/')
    return Error(ErrorCode::kInvalidArgument,
                 "working directory '" + c.workdir + "' is not an absolute path");
  if (c.cpus < 1 || c.cpus > 255)
    return Error(ErrorCode::kInvalidArgument,
                 "invalid cpus " + std::to_string(c.cpus) + " (expected 1 to 255)");
  if (c.memory_bytes < (32ull << 20))
    return Error(ErrorCode::kInvalidArgument, "memory must be at least 32 MiB");
  for (const auto& u : c.ulimits)
    VESSEL_TRY(agent::parse_ulimit(u));
  VESSEL_TRY(agent::docker_capabilities(c.cap_add, c.cap_drop));
  if (c.stop_timeout < -1)
    return Error(ErrorCode::kInvalidArgument, "invalid stop timeout (expected seconds >= 0)");
  if (c.hostname.empty()) c.hostname = id.substr(0, 12);
  if (c.hostname.size() > 64)
    return Error(ErrorCode::kInvalidArgument, "hostname '" + c.hostname + "' is too long");
  for (const auto& e : c.env)
    if (e.empty() || e[0] == '=' || e.find('=') == std::string::npos)
      return Error(ErrorCode::kInvalidArgument, "invalid environment variable '" + e + "'");
  std::vector<std::string> env;
  if (!has_env(c.env, "PATH")) env.push_back(std::string("PATH=") + kDefaultPath);
  env.push_back("HOSTNAME=" + c.hostname);
  if (c.tty && !has_env(c.env, "TERM")) env.push_back("TERM=xterm");
  // With a user name the guest sets HOME from the container's passwd.
  if (!has_env(c.env, "HOME") && c.user.empty())
    env.push_back(c.uid == 0 ? "HOME=/root" : "HOME=/");
  env.insert(env.end(), c.env.begin(), c.env.end());
  c.env = std::move(env);
  return ok_status();
}

std::string to_json(const ContainerConfig& c) {
  json j = {
      {"version", 1},
      {"rootfs", c.rootfs},
      {"root_image", c.root_image},
      {"root_disk", c.root_disk},
      {"writable_bytes", c.writable_bytes},
      {"read_only", c.read_only},
      {"image", c.image},
      {"image_id", c.image_id},
      {"mounts", mounts_json(c.mounts)},
      {"argv", c.argv},
      {"env", c.env},
      {"workdir", c.workdir},
      {"uid", c.uid},
      {"gid", c.gid},
      {"groups", c.groups},
      {"user", c.user},
      {"tty", c.tty},
      {"open_stdin", c.open_stdin},
      {"hostname", c.hostname},
      {"cpus", c.cpus},
      {"memory_bytes", c.memory_bytes},
      {"memory_limit_bytes", c.memory_limit_bytes},
      {"pids_limit", c.pids_limit},
      {"memory_reclaim", c.memory_reclaim},
      {"cpu_millis", c.cpu_millis},
      {"ulimits", c.ulimits},
      {"cap_add", c.cap_add},
      {"cap_drop", c.cap_drop},
      {"no_new_privileges", c.no_new_privileges},
      {"accel", c.accel},
      {"kernel", c.kernel},
      {"initrd", c.initrd},
      {"restart", c.restart.to_string()},
      {"stop_signal", c.stop_signal},
      {"stop_timeout", c.stop_timeout},
      {"auto_remove", c.auto_remove},
      {"labels", c.labels},
      {"boot_timeout_seconds", c.boot_timeout_seconds},
      {"network_mode", c.network_mode},
      {"netns_path", c.netns_path},
      {"pod_role", c.pod_role},
      {"no_process", c.no_process},
      {"pod_sandbox", c.pod_sandbox},
      {"pod_dir", c.pod_dir},
      {"dns", c.dns},
      {"dns_search", c.dns_search},
      {"dns_options", c.dns_options},
      {"extra_hosts", c.extra_hosts},
  };
  json ports = json::array();
  for (const auto& p : c.ports)
    ports.push_back({{"host_ip", p.host_ip},
                     {"host_port", p.host_port},
                     {"container_port", p.container_port},
                     {"proto", net::proto_name(p.proto)}});
  j["ports"] = std::move(ports);
  if (c.capabilities) {
    const protocol::Capabilities& k = *c.capabilities;
    j["capabilities"] = {{"bounding", k.bounding},
                         {"effective", k.effective},
                         {"permitted", k.permitted},
                         {"inheritable", k.inheritable},
                         {"ambient", k.ambient}};
  }
  if (c.machine.enabled) {
    const MachineConfig& m = c.machine;
    j["machine"] = {{"user", m.user},
                    {"uid", m.uid},
                    {"gid", m.gid},
                    {"home", m.home},
                    {"shell", m.shell},
                    {"share_home", m.share_home},
                    {"init", m.init},
                    {"disk_bytes", m.disk_bytes},
                    {"autostart", m.autostart},
                    {"pending", m.pending}};
  }
  return j.dump();
}

Result<ContainerConfig> config_from_json(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("version", 0) != 1)
    return Error(ErrorCode::kInvalidArgument, "container configuration is not valid");
  try {
    ContainerConfig c;
    c.rootfs = j.at("rootfs").get<std::string>();
    c.root_image = j.at("root_image").get<std::string>();
    c.root_disk = j.value("root_disk", false);  // absent before it existed
    c.writable_bytes = j.at("writable_bytes").get<uint64_t>();
    c.read_only = j.at("read_only").get<bool>();
    c.image = j.at("image").get<std::string>();
    c.image_id = j.at("image_id").get<std::string>();
    VESSEL_ASSIGN_OR_RETURN(c.mounts, mounts_from_json(j.at("mounts")));
    c.argv = j.at("argv").get<std::vector<std::string>>();
    c.env = j.at("env").get<std::vector<std::string>>();
    c.workdir = j.at("workdir").get<std::string>();
    c.uid = j.at("uid").get<uint32_t>();
    c.gid = j.at("gid").get<uint32_t>();
    c.groups = j.at("groups").get<std::vector<uint32_t>>();
    c.user = j.at("user").get<std::string>();
    c.tty = j.at("tty").get<bool>();
    c.open_stdin = j.at("open_stdin").get<bool>();
    c.hostname = j.at("hostname").get<std::string>();
    c.cpus = j.at("cpus").get<unsigned>();
    c.memory_bytes = j.at("memory_bytes").get<uint64_t>();
    c.pids_limit = j.at("pids_limit").get<uint64_t>();
    c.cpu_millis = j.at("cpu_millis").get<uint32_t>();
    c.ulimits = j.at("ulimits").get<std::vector<std::string>>();
    c.accel = j.at("accel").get<std::string>();
    c.kernel = j.at("kernel").get<std::string>();
    c.initrd = j.at("initrd").get<std::string>();
    VESSEL_ASSIGN_OR_RETURN(c.restart, parse_restart_policy(j.at("restart").get<std::string>()));
    c.stop_signal = j.at("stop_signal").get<int>();
    c.stop_timeout = j.at("stop_timeout").get<int>();
    c.auto_remove = j.at("auto_remove").get<bool>();
    c.labels = j.at("labels").get<std::map<std::string, std::string>>();
    c.boot_timeout_seconds = j.at("boot_timeout_seconds").get<int>();
    // Networking fields came later: absent in older configurations.
    c.network_mode = j.value("network_mode", std::string("default"));
    c.netns_path = j.value("netns_path", std::string());
    c.pod_role = j.value("pod_role", std::string());  // pods came later
    c.pod_sandbox = j.value("pod_sandbox", std::string());
    c.no_process = j.value("no_process", false);
    c.pod_dir = j.value("pod_dir", std::string());
    c.memory_reclaim = j.value("memory_reclaim", true);                 // came later
    c.memory_limit_bytes = j.value("memory_limit_bytes", uint64_t{0});  // came later
    c.dns = j.value("dns", std::vector<std::string>{});
    c.dns_search = j.value("dns_search", std::vector<std::string>{});
    c.dns_options = j.value("dns_options", std::vector<std::string>{});
    c.extra_hosts = j.value("extra_hosts", std::vector<std::string>{});
    // Capabilities came later: absent in older configurations (which then
    // get Docker's default set).
    c.cap_add = j.value("cap_add", std::vector<std::string>{});
    c.cap_drop = j.value("cap_drop", std::vector<std::string>{});
    c.no_new_privileges = j.value("no_new_privileges", false);
    if (j.contains("capabilities")) {
      const json& k = j.at("capabilities");
      c.capabilities = protocol::Capabilities{
          k.at("bounding").get<uint64_t>(), k.at("effective").get<uint64_t>(),
          k.at("permitted").get<uint64_t>(), k.at("inheritable").get<uint64_t>(),
          k.at("ambient").get<uint64_t>()};
    }
    if (j.contains("ports")) {
      for (const auto& p : j.at("ports")) {
        net::PortMapping m;
        m.host_ip = p.at("host_ip").get<std::string>();
        m.host_port = p.at("host_port").get<uint16_t>();
        m.container_port = p.at("container_port").get<uint16_t>();
        m.proto = p.at("proto").get<std::string>() == "udp" ? net::Proto::kUdp : net::Proto::kTcp;
        c.ports.push_back(m);
      }
    }
    if (j.contains("machine")) {
      const json& m = j.at("machine");
      MachineConfig& mc = c.machine;
      mc.enabled = true;
      mc.user = m.at("user").get<std::string>();
      mc.uid = m.at("uid").get<uint32_t>();
      mc.gid = m.at("gid").get<uint32_t>();
      mc.home = m.at("home").get<std::string>();
      mc.shell = m.at("shell").get<std::string>();
      mc.share_home = m.at("share_home").get<bool>();
      mc.init = m.at("init").get<std::string>();
      mc.disk_bytes = m.at("disk_bytes").get<uint64_t>();
      mc.autostart = m.at("autostart").get<bool>();
      mc.pending = m.at("pending").get<std::map<std::string, std::string>>();
    }
    return c;
  } catch (const json::exception& e) {
    return Error(ErrorCode::kInvalidArgument,
                 std::string("container configuration is not valid: ") + e.what());
  }
}

}  // namespace vessel::runtime
