// /volumes/...: create, list, inspect, remove, prune (host directories the
// containers layer manages; the JSON comes from containers/views.h).
#include "api/context.h"
#include "api/handlers.h"
#include "containers/views.h"

namespace vessel::api {

using nlohmann::json;

namespace {

Reply create(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(json body, parse_body(req));
  std::string name, driver;
  if (auto it = body.find("Name"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return error_reply(400, "Name: expected a string");
    name = it->get<std::string>();
  }
  if (auto it = body.find("Driver"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return error_reply(400, "Driver: expected a string");
    driver = it->get<std::string>();
  }
  if (!driver.empty() && driver != "local")
    return error_reply(400,
                       "volume driver '" + driver + "' is not supported by Vessel (only local)");
  if (auto it = body.find("DriverOpts");
      it != body.end() && !it->is_null() && !(it->is_object() && it->empty()))
    return error_reply(400, "DriverOpts are not supported by Vessel");
  std::map<std::string, std::string> labels;
  if (auto it = body.find("Labels"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return error_reply(400, "Labels: expected an object of strings");
    for (auto& [k, v] : it->items()) {
      if (!v.is_string()) return error_reply(400, "Labels." + k + ": expected a string");
      labels[k] = v.get<std::string>();
    }
  }
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  // Docker: creating an existing volume returns it.
  if (!name.empty())
    if (auto v = cs->volume(name); v.ok()) return json_reply(201, containers::volume_view(*cs, *v));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto v, cs->create_volume(name, labels));
  return json_reply(201, containers::volume_view(*cs, v));
}

Reply list(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto filters, parse_filters(req.arg("filters")));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto vols, cs->volumes());
  json out = json::array();
  for (const auto& v : vols) {
    json view = containers::volume_view(*cs, v);
    bool ok = true;
    for (const auto& [k, values] : filters) {
      if (values.empty()) continue;
      bool any = false;
      for (const auto& x : values) {
        if (k == "name")
          any = any || v.name.find(x) != std::string::npos;
        else if (k == "dangling")
          any = any || ((x == "true" || x == "1") == view["UsedBy"].empty());
        else if (k == "label") {
          auto eq = x.find('=');
          const json& labels = view["Labels"];
          auto it = labels.find(x.substr(0, eq));
          any = any || (it != labels.end() && (eq == std::string::npos || *it == x.substr(eq + 1)));
        } else if (k == "driver")
          any = any || x == "local";
        else
          return error_reply(400, "invalid filter '" + k + "'");
      }
      ok = ok && any;
    }
    if (ok) out.push_back(view);
  }
  return json_reply(200, {{"Volumes", out}, {"Warnings", json::array()}});
}

Reply inspect(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  auto v = cs->volume(req.param("name"));
  if (!v.ok())
    return v.error().code() == ErrorCode::kNotFound
               ? error_reply(404, "get " + req.param("name") + ": no such volume")
               : error_reply(v.error());
  return json_reply(200, containers::volume_view(*cs, *v));
}

Reply remove(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  std::string name = req.param("name");
  auto s = cs->remove_volume(name);
  if (!s.ok()) {
    if (s.error().code() == ErrorCode::kNotFound) {
      if (req.flag("force")) return Reply{204, "application/json", "", {}, false};
      return error_reply(404, "get " + name + ": no such volume");
    }
    if (s.error().code() == ErrorCode::kFailedPrecondition)
      return error_reply(409, "remove " + name + ": volume is in use - " + s.error().message());
    return error_reply(s.error());
  }
  return Reply{204, "application/json", "", {}, false};
}

Reply prune(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto filters, parse_filters(req.arg("filters")));
  bool all = false;
  for (const auto& v : filters["all"])
    all = all || v == "true" || v == "1";
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto pruned, cs->prune_volumes(all));
  return json_reply(200, {{"VolumesDeleted", pruned.first}, {"SpaceReclaimed", pruned.second}});
}

}  // namespace

void add_volume_routes(Router& r) {
  r.add("POST", "/volumes/create", create);
  r.add("GET", "/volumes", list);
  r.add("POST", "/volumes/prune", prune);
  r.add("GET", "/volumes/{name}", inspect);
  r.add("DELETE", "/volumes/{name}", remove);
}

}  // namespace vessel::api
