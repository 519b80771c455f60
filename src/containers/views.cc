#include "containers/views.h"

#include <string.h>

#include "networks/views.h"
#include "runtime/config.h"
#include "runtime/log_file.h"
#include "runtime/paths.h"
#include "runtime/runtime_dir.h"
#include "sys/fs.h"

namespace vessel::containers {

using nlohmann::json;
using state::RunState;

namespace {

// What the container's monitor bound for its published ports ("" when it
// is not running).
std::string ports_file(const std::string& root, const ContainerRecord& r) {
  auto content = sys::read_file(runtime::runtime_dir_of(root, r.id) + "/ports.json", 1 << 20);
  return content.ok() ? *content : "";
}

json bound_ports(const std::string& bound) {
  json j = bound.empty() ? json::array() : json::parse(bound, nullptr, false);
  return j.is_array() ? j : json::array();
}

}  // namespace

std::string iso_time(int64_t ns) {
  return ns ? runtime::format_timestamp(ns) : "0001-01-01T00:00:00Z";
}

std::string command_line(const runtime::ContainerConfig& c) {
  std::string out;
  for (const auto& a : c.argv)
    out += (out.empty() ? "" : " ") + a;
  return out;
}

json inspect_view(Containers& cs, const ContainerRecord& r) {
  const std::string& root = cs.root();
  auto cfg = runtime::config_from_json(r.config);
  runtime::ContainerConfig c = cfg.ok() ? *cfg : runtime::ContainerConfig{};
  const auto& s = r.state;
  bool paused = cs.paused(r);
  std::string dir = runtime::container_dir(root, r.id);
  json network_settings = json::object();
  {
    std::string bound = ports_file(root, r);
    json ports = bound.empty() ? json::object() : networks::ports_view(c.ports, bound);
    auto ns = networks::network_settings(cs.networks(), r.id, r.name, ports);
    if (ns.ok()) network_settings = std::move(*ns);
  }
  json mounts = json::array();
  for (const auto& m : c.mounts) {
    std::string source = m.source;
    if (m.type == runtime::MountSpec::Type::kVolume) source = cs.volume_data(m.source);
    json j = {{"Type", runtime::mount_type_name(m.type)},
              {"Source", m.type == runtime::MountSpec::Type::kTmpfs ? "" : source},
              {"Destination", m.target},
              {"RW", !m.read_only}};
    if (m.type == runtime::MountSpec::Type::kVolume) j["Name"] = m.source;
    if (!m.options.empty()) j["Options"] = m.options;
    mounts.push_back(j);
  }
  std::string restart = c.restart.to_string();
  return json{
      {"Id", r.id},
      {"Name", "/" + r.name},
      {"Created", iso_time(r.created)},
      {"Path", c.argv.empty() ? "" : c.argv[0]},
      {"Args", c.argv.size() > 1 ? std::vector<std::string>(c.argv.begin() + 1, c.argv.end())
                                 : std::vector<std::string>{}},
      {"Image", r.image_id},
      {"State",
       {{"Status", paused ? "paused" : state::state_name(s.status)},
        {"Running", s.status == RunState::kRunning},
        {"Paused", paused},
        {"Restarting", s.status == RunState::kRestarting},
        {"OOMKilled", s.oom_killed},
        {"Dead", false},
        {"Pid", s.monitor_pid},
        {"ExitCode", s.exit_code},
        {"Error", s.error},
        {"StartedAt", iso_time(s.started)},
        {"FinishedAt", iso_time(s.finished)}}},
      {"RestartCount", s.restart_count},
      {"LogPath", dir + "/container.log"},
      {"BootLogPath", dir + "/boot.log"},
      {"Config",
       {{"Hostname", c.hostname},
        {"User", c.user.empty() ? std::to_string(c.uid) + ":" + std::to_string(c.gid) : c.user},
        {"Tty", c.tty},
        {"OpenStdin", c.open_stdin},
        {"Env", c.env},
        {"Cmd", c.argv},
        {"Image", r.image},
        {"WorkingDir", c.workdir},
        {"Labels", c.labels},
        {"StopSignal",
         std::string("SIG") + (sigabbrev_np(c.stop_signal) ? sigabbrev_np(c.stop_signal) : "?")},
        {"StopTimeout", c.stop_timeout}}},
      {"HostConfig",
       {{"AutoRemove", c.auto_remove},
        {"ReadonlyRootfs", c.read_only},
        {"RestartPolicy",
         {{"Name", restart.substr(0, restart.find(':'))},
          {"MaximumRetryCount", c.restart.max_retries}}},
        // The limits the container runs under: a quota below its vCPUs,
        // a memory.max lowered while it ran (docker update).
        {"NanoCpus", c.cpu_millis ? int64_t{c.cpu_millis} * 1'000'000
                                  : static_cast<int64_t>(c.cpus) * 1'000'000'000},
        {"Memory", c.memory_limit_bytes && c.memory_limit_bytes < c.memory_bytes
                       ? c.memory_limit_bytes
                       : c.memory_bytes},
        {"PidsLimit", c.pids_limit},
        {"CapAdd", c.cap_add},
        {"CapDrop", c.cap_drop},
        {"SecurityOpt", c.no_new_privileges ? json::array({"no-new-privileges"}) : json::array()},
        // Docker's json-file in spirit (the logs endpoint reads the log);
        // docker-compose only shows the logs of containers that name a
        // driver.
        {"LogConfig", {{"Type", "json-file"}, {"Config", json::object()}}},
        {"NetworkMode", c.network_mode},
        {"PortBindings", networks::ports_view(c.ports, "")},
        {"Dns", c.dns},
        {"DnsSearch", c.dns_search},
        {"DnsOptions", c.dns_options},
        {"ExtraHosts", c.extra_hosts},
        {"Accel", c.accel.empty() ? "auto" : c.accel}}},
      {"NetworkSettings", network_settings},
      {"Rootfs",
       {{"Image", c.root_image},
        {"Directory", c.rootfs},
        {"WritableLayer", c.root_image.empty() || c.read_only ? ""
                          : c.root_disk                       ? dir + "/root.qcow2"
                                                              : dir + "/upper.img"}}},
      {"Mounts", mounts},
  };
}

json ls_view(Containers& cs, const ContainerRecord& r, int64_t now_ns) {
  auto c = runtime::config_from_json(r.config);
  std::string addrs, ports;
  if (auto views = cs.networks().endpoints_of(r.id); views.ok())
    for (const auto& v : *views)
      if (v.ip) addrs += (addrs.empty() ? "" : ",") + net::Ipv4{v.ip}.to_string();
  for (const auto& p : bound_ports(ports_file(cs.root(), r)))
    if (p.is_object())
      ports += (ports.empty() ? "" : ", ") + p.value("host_ip", std::string("0.0.0.0")) + ":" +
               std::to_string(p.value("host_port", 0)) + "->" +
               std::to_string(p.value("container_port", 0)) + "/" +
               p.value("proto", std::string("tcp"));
  return {{"ID", r.id},
          {"Image", r.image.empty() ? "(rootfs)" : r.image},
          {"Command", c.ok() ? command_line(*c) : ""},
          {"CreatedAt", iso_time(r.created)},
          {"State", cs.paused(r) ? "paused" : state::state_name(r.state.status)},
          {"Status", describe_status(r, now_ns)},
          {"ExitCode", r.state.exit_code},
          {"Names", r.name},
          {"Networks", c.ok() ? c->network_mode : ""},
          {"IPAddress", addrs},
          {"Ports", ports}};
}

json list_view(Containers& cs, const ContainerRecord& r, int64_t now_ns) {
  auto c = runtime::config_from_json(r.config);
  json ports = json::array();
  for (const auto& p : bound_ports(ports_file(cs.root(), r)))
    if (p.is_object())
      ports.push_back({{"IP", p.value("host_ip", std::string("0.0.0.0"))},
                       {"PrivatePort", p.value("container_port", 0)},
                       {"PublicPort", p.value("host_port", 0)},
                       {"Type", p.value("proto", std::string("tcp"))}});
  json nets = json::object();
  if (auto views = cs.networks().endpoints_of(r.id); views.ok())
    for (const auto& v : *views)
      nets[v.network.name] = {{"NetworkID", v.network.id},
                              {"IPAddress", v.ip ? net::Ipv4{v.ip}.to_string() : ""},
                              {"MacAddress", v.endpoint.mac}};
  json mounts = json::array();
  if (c.ok())
    for (const auto& m : c->mounts)
      mounts.push_back({{"Type", runtime::mount_type_name(m.type)},
                        {"Name", m.type == runtime::MountSpec::Type::kVolume ? m.source : ""},
                        {"Destination", m.target},
                        {"RW", !m.read_only}});
  // Docker's Status: "Up 5 seconds", "Exited (0) 3 seconds ago", "Created".
  std::string status;
  switch (r.state.status) {
    case RunState::kRunning:
      status = "Up " + describe_age(r.state.started, now_ns) + (cs.paused(r) ? " (Paused)" : "");
      break;
    case RunState::kRestarting:
      status = "Restarting (" + std::to_string(r.state.exit_code) + ") " +
               describe_age(r.state.finished, now_ns) + " ago";
      break;
    case RunState::kExited:
      status = "Exited (" + std::to_string(r.state.exit_code) + ") " +
               describe_age(r.state.finished, now_ns) + " ago";
      break;
    default:
      status = state::state_name(r.state.status);
      if (!status.empty()) status[0] = static_cast<char>(::toupper(status[0]));
  }
  return {{"Id", r.id},
          {"Names", json::array({"/" + r.name})},
          {"Image", r.image.empty() ? "(rootfs)" : r.image},
          {"ImageID", r.image_id},
          {"Command", c.ok() ? command_line(*c) : ""},
          {"Created", r.created / 1'000'000'000},
          {"Ports", ports},
          {"Labels", c.ok() ? json(c->labels) : json::object()},
          {"State", cs.paused(r) ? "paused" : state::state_name(r.state.status)},
          {"Status", status},
          {"HostConfig", {{"NetworkMode", c.ok() ? c->network_mode : "default"}}},
          {"NetworkSettings", {{"Networks", nets}}},
          {"Mounts", mounts}};
}

json volume_view(Containers& cs, const state::VolumeRecord& v) {
  json labels = json::parse(v.labels, nullptr, false);
  auto users = cs.store().volume_users(v.name);
  return {{"Name", v.name},
          {"Driver", "local"},
          {"Mountpoint", cs.volume_data(v.name)},
          {"CreatedAt", runtime::format_timestamp(v.created)},
          {"Labels", labels.is_object() ? labels : json::object()},
          {"Options", json::object()},
          {"Anonymous", v.anonymous},
          {"UsedBy", users.ok() ? json(*users) : json::array()},
          {"Scope", "local"}};
}

}  // namespace vessel::containers
