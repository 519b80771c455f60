#include "networks/views.h"

#include <time.h>

namespace vessel::networks {

using nlohmann::json;

namespace {

std::string rfc3339(int64_t ns) {
  time_t secs = static_cast<time_t>(ns / 1'000'000'000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json parse_ports(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_array() ? j : json::array();
}

}  // namespace

Result<json> network_view(Networks& networks, state::Store& store, const Network& n) {
  json containers = json::object();
  VESSEL_ASSIGN_OR_RETURN(auto eps, store.endpoints_on(n.name));
  VESSEL_ASSIGN_OR_RETURN(auto leases, store.leases(n.name));
  for (const auto& e : eps) {
    auto c = store.container(e.container);
    if (!c.ok()) continue;
    uint32_t ip = 0;
    for (const auto& l : leases)
      if (l.container == e.container) ip = l.ip;
    containers[e.container] = {
        {"Name", c->name},
        {"MacAddress", e.mac},
        {"IPv4Address",
         ip ? net::Ipv4{ip}.to_string() + "/" + std::to_string(n.subnet.prefix) : std::string()},
        {"IPv6Address", ""}};
  }
  (void)networks;
  return json{
      {"Name", n.name},
      {"Id", n.id},
      {"Created", rfc3339(n.created)},
      {"Scope", "local"},
      {"Driver", "bridge"},
      {"EnableIPv6", false},
      {"IPAM",
       {{"Driver", "default"},
        {"Config",
         json::array({{{"Subnet", n.subnet.to_string()}, {"Gateway", n.gateway.to_string()}}})}}},
      {"Internal", n.internal},
      {"Attachable", true},
      {"Containers", containers},
      {"Options", {{"com.docker.network.bridge.name", n.bridge}}},
      {"Labels", n.labels}};
}

json ports_view(const std::vector<net::PortMapping>& configured, const std::string& ports_json) {
  json out = json::object();
  for (const auto& m : configured)
    out[net::port_key(m.container_port, m.proto)] = nullptr;
  for (const auto& p : parse_ports(ports_json)) {
    if (!p.is_object()) continue;
    std::string key =
        std::to_string(p.value("container_port", 0)) + "/" + p.value("proto", std::string("tcp"));
    if (!out[key].is_array()) out[key] = json::array();
    out[key].push_back({{"HostIp", p.value("host_ip", std::string("0.0.0.0"))},
                        {"HostPort", std::to_string(p.value("host_port", 0))}});
  }
  return out;
}

Result<json> network_settings(Networks& networks, const std::string& id, const std::string& name,
                              const json& ports) {
  (void)name;
  VESSEL_ASSIGN_OR_RETURN(auto views, networks.endpoints_of(id));
  json nets = json::object();
  json out = {{"IPAddress", ""},  {"IPPrefixLen", 0}, {"Gateway", ""},
              {"MacAddress", ""}, {"Ports", ports},   {"Networks", json::object()}};
  bool first = true;
  for (const auto& v : views) {
    json aliases = json::parse(v.endpoint.aliases, nullptr, false);
    std::string ip = v.ip ? net::Ipv4{v.ip}.to_string() : "";
    json entry = {{"NetworkID", v.network.id},
                  {"IPAddress", ip},
                  {"IPPrefixLen", v.ip ? v.network.subnet.prefix : 0},
                  {"Gateway", v.ip ? v.network.gateway.to_string() : ""},
                  {"MacAddress", v.endpoint.mac},
                  {"Aliases", aliases.is_array() ? aliases : json::array()}};
    if (first) {
      out["IPAddress"] = entry["IPAddress"];
      out["IPPrefixLen"] = entry["IPPrefixLen"];
      out["Gateway"] = entry["Gateway"];
      out["MacAddress"] = entry["MacAddress"];
      first = false;
    }
    nets[v.network.name] = std::move(entry);
  }
  out["Networks"] = std::move(nets);
  return out;
}

std::vector<std::string> port_lines(const std::string& ports_json) {
  std::vector<std::string> out;
  for (const auto& p : parse_ports(ports_json)) {
    if (!p.is_object()) continue;
    out.push_back(std::to_string(p.value("container_port", 0)) + "/" +
                  p.value("proto", std::string("tcp")) + " -> " +
                  p.value("host_ip", std::string("0.0.0.0")) + ":" +
                  std::to_string(p.value("host_port", 0)));
  }
  return out;
}

}  // namespace vessel::networks
