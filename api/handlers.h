// The handlers of the API, one file per resource; each adds its routes.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <stop_token>

#include "api/router.h"
#include "containers/containers.h"

namespace vessel::api {

void add_system_routes(Router& r);     // system.cc: _ping, version, info, events, system/df
void add_container_routes(Router& r);  // containers.cc
void add_archive_routes(Router& r);    // archive.cc: archive (docker cp), export
void add_exec_routes(Router& r);       // exec.cc
void add_image_routes(Router& r);      // images.cc
void add_volume_routes(Router& r);     // volumes.cc
void add_network_routes(Router& r);    // networks.cc

/// One event in Docker's shape (API 1.41: the old status/id/from fields
/// beside Type/Action/Actor), at Unix time `ns`.
nlohmann::json event(const std::string& type, const std::string& action, const std::string& id,
                     nlohmann::json attributes, int64_t ns);
/// A container event's attributes: image, name and its labels.
nlohmann::json container_attributes(const containers::ContainerRecord& r);

/// Publishes container events (create, start, die, destroy) in `ctx` as
/// the state store shows them changing, polled every 200 ms (monitors,
/// not this service, run the containers), until `stop`. It starts with the
/// events the records still show (each container's create, last start and
/// last die), oldest first, so /events?since= has a history from before
/// the service started too.
void watch_container_events(Context& ctx, std::stop_token stop);

/// The container {id} of the request (name, id or unique prefix), with
/// the containers layer it was found in; Docker's 404 "No such container"
/// otherwise.
struct FoundContainer {
  std::unique_ptr<containers::Containers> cs;
  containers::ContainerRecord r;
};
Result<FoundContainer> find_container(Context& ctx, const Request& req);

}  // namespace vessel::api
