// /networks/...: list, inspect, create, remove, prune, connect and
// disconnect (of containers that are not running). Docker's "bridge"
// (the network containers join by default) is Vessel's "default".
#include "api/context.h"
#include "api/create_body.h"
#include "api/handlers.h"
#include "networks/views.h"

namespace vessel::api {

using nlohmann::json;

namespace {

std::string vessel_name(const std::string& docker_name) {
  return docker_name == "bridge" ? networks::kDefaultNetwork : docker_name;
}

// By name, id or unique id prefix.
Result<networks::Network> find(containers::Containers& cs, const std::string& ref) {
  auto& nets = cs.networks();
  if (auto n = nets.get(vessel_name(ref)); n.ok()) return n;
  VESSEL_ASSIGN_OR_RETURN(auto all, nets.list());
  std::optional<networks::Network> found;
  for (const auto& n : all)
    if (!ref.empty() && n.id.rfind(ref, 0) == 0) {
      if (found) return Error(ErrorCode::kInvalidArgument, "network " + ref + " is ambiguous");
      found = n;
    }
  if (!found) return Error(ErrorCode::kNotFound, "network " + ref + " not found");
  return *found;
}

Reply list(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto filters, parse_filters(req.arg("filters")));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  (void)cs->list("");  // dead monitors give their addresses back first
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto all, cs->networks().list());
  json out = json::array();
  for (const auto& n : all) {
    bool ok = true;
    for (const auto& [k, values] : filters) {
      if (values.empty()) continue;
      bool any = false;
      for (const auto& v : values) {
        if (k == "name")
          any = any || n.name.find(vessel_name(v)) != std::string::npos;
        else if (k == "id")
          any = any || n.id.rfind(v, 0) == 0;
        else if (k == "label") {
          auto eq = v.find('=');
          auto it = n.labels.find(v.substr(0, eq));
          any = any || (it != n.labels.end() &&
                        (eq == std::string::npos || it->second == v.substr(eq + 1)));
        } else if (k == "driver")
          any = any || v == "bridge";
        else
          return error_reply(400, "invalid filter '" + k + "'");
      }
      ok = ok && any;
    }
    if (!ok) continue;
    VESSEL_ASSIGN_OR_RETURN_REPLY(json view,
                                  networks::network_view(cs->networks(), cs->store(), n));
    out.push_back(view);
  }
  return json_reply(200, out);
}

Reply inspect(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  (void)cs->list("");
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto n, find(*cs, req.param("id")));
  VESSEL_ASSIGN_OR_RETURN_REPLY(json view, networks::network_view(cs->networks(), cs->store(), n));
  return json_reply(200, view);
}

Reply create(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(json body, parse_body(req));
  networks::CreateOptions o;
  auto str = [&](const json& obj, const char* k, std::string& out) -> bool {
    auto it = obj.find(k);
    if (it == obj.end() || it->is_null()) return true;
    if (!it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  if (!str(body, "Name", o.name) || o.name.empty())
    return error_reply(400, "Name: a network name is required");
  std::string driver;
  if (!str(body, "Driver", driver)) return error_reply(400, "Driver: expected a string");
  if (!driver.empty() && driver != "bridge")
    return error_reply(400,
                       "network driver '" + driver + "' is not supported by Vessel (only bridge)");
  if (auto it = body.find("Internal"); it != body.end() && it->is_boolean())
    o.internal = it->get<bool>();
  if (auto it = body.find("EnableIPv6"); it != body.end() && it->is_boolean() && it->get<bool>())
    return error_reply(400, "IPv6 networks are not supported by Vessel");
  if (auto it = body.find("Labels"); it != body.end() && it->is_object())
    for (auto& [k, v] : it->items())
      if (v.is_string()) o.labels[k] = v.get<std::string>();
  if (auto ipam = body.find("IPAM"); ipam != body.end() && ipam->is_object()) {
    if (auto cfg = ipam->find("Config"); cfg != ipam->end() && cfg->is_array()) {
      if (cfg->size() > 1) return error_reply(400, "IPAM.Config: Vessel takes one subnet");
      if (cfg->size() == 1 && (*cfg)[0].is_object()) {
        if (!str((*cfg)[0], "Subnet", o.subnet) || !str((*cfg)[0], "Gateway", o.gateway))
          return error_reply(400, "IPAM.Config: expected strings");
      }
    }
  }
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  if (auto existing = cs->networks().get(o.name); existing.ok())
    return error_reply(409, "network with name " + o.name + " already exists");
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto n, cs->networks().create(o));
  return json_reply(201, {{"Id", n.id}, {"Warning", ""}});
}

Reply remove(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  (void)cs->list("");
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto n, find(*cs, req.param("id")));
  if (n.name == networks::kDefaultNetwork)
    return error_reply(403, "bridge is a pre-defined network and cannot be removed");
  if (auto s = cs->networks().remove(n.name); !s.ok()) return error_reply(s.error());
  return Reply{204, "application/json", "", {}, false};
}

Reply prune(Context& ctx, Request&, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  (void)cs->list("");
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto removed, cs->networks().prune());
  return json_reply(200, {{"NetworksDeleted", removed}});
}

// The container a connect or disconnect body names; Docker's 404.
Result<containers::ContainerRecord> body_container(containers::Containers& cs, const json& body) {
  auto it = body.find("Container");
  if (it == body.end() || !it->is_string() || it->get<std::string>().empty())
    return Error(ErrorCode::kInvalidArgument, "Container: a container is required");
  std::string ref = it->get<std::string>();
  auto r = cs.find(ref);
  if (!r.ok() && r.error().code() == ErrorCode::kNotFound)
    return Error(ErrorCode::kNotFound, "No such container: " + ref);
  return r;
}

// POST /networks/{id}/connect, /disconnect: a container that is not
// running (a VM cannot take or lose a NIC while it runs: 409 then).
Reply connect(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(json body, parse_body(req));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto n, find(*cs, req.param("id")));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto r, body_container(*cs, body));
  json ep = body.contains("EndpointConfig") ? body["EndpointConfig"] : json();
  auto a = parse_endpoint_config(ep, n.name, "EndpointConfig.");
  if (!a.ok()) return error_reply(400, a.error().to_string());
  if (auto s = cs->connect_network(r, *a); !s.ok()) return error_reply(s.error());
  return json_reply(200, json::object());
}

Reply disconnect(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(json body, parse_body(req));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto n, find(*cs, req.param("id")));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto r, body_container(*cs, body));
  if (auto s = cs->disconnect_network(r, n.name); !s.ok()) return error_reply(s.error());
  return json_reply(200, json::object());
}

}  // namespace

void add_network_routes(Router& r) {
  r.add("GET", "/networks", list);
  r.add("POST", "/networks/create", create);
  r.add("POST", "/networks/prune", prune);
  r.add("GET", "/networks/{id}", inspect);
  r.add("DELETE", "/networks/{id}", remove);
  r.add("POST", "/networks/{id}/connect", connect);
  r.add("POST", "/networks/{id}/disconnect", disconnect);
}

}  // namespace vessel::api
