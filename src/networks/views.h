// Docker-shaped JSON views of networks and of a container's network
// settings, built here once for every front end (`vessel network inspect`,
// `vessel inspect`, `--format json`, the Docker API to come).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "net/port_spec.h"
#include "networks/networks.h"

namespace vessel::networks {

/// Docker's network object: Name, Id, Created, Driver ("bridge"), Internal,
/// IPAM.Config[{Subnet, Gateway}], Options (the bridge name), Labels, and
/// Containers {id: {Name, MacAddress, IPv4Address}} for those holding an
/// address now (running).
Result<nlohmann::json> network_view(Networks& networks, state::Store& store, const Network& n);

/// The published ports of a running container as its monitor bound them
/// (<runtime dir>/ports.json), in Docker's shape: {"80/tcp": [{"HostIp",
/// "HostPort"}]}; every configured port appears, with null when not bound.
nlohmann::json ports_view(const std::vector<net::PortMapping>& configured,
                          const std::string& ports_json);

/// Docker's NetworkSettings of container `id`: IPAddress, IPPrefixLen,
/// Gateway, MacAddress (of its first network), Ports, and Networks {name:
/// {NetworkID, IPAddress, IPPrefixLen, Gateway, MacAddress, Aliases}}.
Result<nlohmann::json> network_settings(Networks& networks, const std::string& id,
                                        const std::string& name, const nlohmann::json& ports);

/// Each bound port as `vessel port` prints it: "80/tcp -> 0.0.0.0:8080".
std::vector<std::string> port_lines(const std::string& ports_json);

}  // namespace vessel::networks
