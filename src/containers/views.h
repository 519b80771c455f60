// Docker-shaped JSON views of containers and volumes, built here once for
// every front end: `vessel inspect`, `vessel ls --format json`, `vessel
// volume inspect` and the Docker Engine API (api/) render the same objects,
// so the two never drift. Networks have theirs in networks/views.h.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "containers/containers.h"

namespace vessel::containers {

/// A time as inspect shows it (RFC 3339, nanoseconds); Docker's zero time
/// ("0001-01-01T00:00:00Z") for 0.
std::string iso_time(int64_t ns);

/// The container's main command line, its argv joined by spaces.
std::string command_line(const runtime::ContainerConfig& c);

/// Docker's container object (`docker inspect`, GET /containers/{id}/json):
/// Id, Name ("/name"), Created, Path, Args, Image, State {Status, Running,
/// ..., ExitCode, StartedAt, FinishedAt}, Config, HostConfig,
/// NetworkSettings, Mounts, plus Vessel's Rootfs and BootLogPath.
nlohmann::json inspect_view(Containers& cs, const ContainerRecord& r);

/// One row of `vessel ls --format json` (ID, Image, Command, CreatedAt,
/// State, Status, ExitCode, Names, Networks, IPAddress, Ports).
nlohmann::json ls_view(Containers& cs, const ContainerRecord& r, int64_t now_ns);

/// One entry of Docker's container list (GET /containers/json): Id, Names
/// ["/name"], Image, ImageID, Command, Created (Unix seconds), Ports
/// [{IP, PrivatePort, PublicPort, Type}], Labels, State, Status,
/// HostConfig {NetworkMode}, NetworkSettings {Networks}, Mounts.
nlohmann::json list_view(Containers& cs, const ContainerRecord& r, int64_t now_ns);

/// Docker's volume object: Name, Driver "local", Mountpoint, CreatedAt,
/// Labels, Scope, Options, plus Vessel's Anonymous and UsedBy.
nlohmann::json volume_view(Containers& cs, const state::VolumeRecord& v);

}  // namespace vessel::containers
