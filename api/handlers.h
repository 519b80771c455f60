// The handlers of the API, one file per resource; each adds its routes.
#pragma once

#include "api/router.h"

namespace vessel::api {

void add_system_routes(Router& r);     // system.cc: _ping, version, info, events, system/df
void add_container_routes(Router& r);  // containers.cc
void add_exec_routes(Router& r);       // exec.cc
void add_image_routes(Router& r);      // images.cc
void add_volume_routes(Router& r);     // volumes.cc
void add_network_routes(Router& r);    // networks.cc

}  // namespace vessel::api
