// /_ping, /version, /info, /system/df: what clients ask first.
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "api/context.h"
#include "api/handlers.h"
#include "base/strings.h"
#include "containers/views.h"
#include "images/image_store.h"
#include "images/views.h"
#include "runtime/config.h"
#include "state/store.h"

namespace vessel::api {

using nlohmann::json;

namespace {

constexpr const char* kVesselVersion = "0.1.0";

std::string kernel_release() {
  utsname u{};
  return ::uname(&u) == 0 ? u.release : "";
}

Reply ping(Context&, Request&, Exchange&) {
  Reply r;
  r.content_type = "text/plain; charset=utf-8";
  r.body = "OK";
  r.headers = {{"Cache-Control", "no-cache, no-store, must-revalidate"},
               {"Pragma", "no-cache"},
               {"Builder-Version", "1"}};
  return r;
}

Reply version(Context&, Request&, Exchange&) {
  json details = {{"ApiVersion", kApiVersion},
                  {"MinAPIVersion", kMinApiVersion},
                  {"Os", "linux"},
                  {"Arch", "amd64"},
                  {"KernelVersion", kernel_release()}};
  return json_reply(
      200,
      {{"Platform", {{"Name", "Vessel"}}},
       {"Components",
        json::array({{{"Name", "Engine"}, {"Version", kVesselVersion}, {"Details", details}}})},
       {"Version", kVesselVersion},
       {"ApiVersion", kApiVersion},
       {"MinAPIVersion", kMinApiVersion},
       {"GitCommit", ""},
       {"GoVersion", ""},
       {"Os", "linux"},
       {"Arch", "amd64"},
       {"KernelVersion", kernel_release()},
       {"BuildTime", ""}});
}

Reply info(Context& ctx, Request&, Exchange&) {
  auto cs = ctx.containers();
  if (!cs.ok()) return error_reply(cs.error());
  auto all = (*cs)->list();
  if (!all.ok()) return error_reply(all.error());
  int running = 0, stopped = 0;
  for (const auto& r : *all)
    (r.state.status == state::RunState::kRunning || r.state.status == state::RunState::kRestarting
         ? running
         : stopped)++;
  size_t images = 0;
  if (auto store = images::ImageStore::open(ctx.root()); store.ok())
    if (auto list = store->list(); list.ok()) images = list->size();
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return json_reply(200, {{"ID", "vessel"},
                          {"Containers", all->size()},
                          {"ContainersRunning", running},
                          {"ContainersPaused", 0},
                          {"ContainersStopped", stopped},
                          {"Images", images},
                          {"Driver", "vessel-ext4"},
                          {"DriverStatus", json::array()},
                          {"MemoryLimit", true},
                          {"SwapLimit", false},
                          {"CpuCfsPeriod", true},
                          {"CpuCfsQuota", true},
                          {"IPv4Forwarding", true},
                          {"Debug", false},
                          {"NFd", 0},
                          {"NGoroutines", 0},
                          {"SystemTime", ""},
                          {"LoggingDriver", "json-file"},
                          {"CgroupDriver", "none"},
                          {"CgroupVersion", "2"},
                          {"NEventsListener", 0},
                          {"KernelVersion", kernel_release()},
                          {"OperatingSystem", "Vessel (one VM per container)"},
                          {"OSVersion", ""},
                          {"OSType", "linux"},
                          {"Architecture", "x86_64"},
                          {"IndexServerAddress", "https://index.docker.io/v1/"},
                          {"RegistryConfig", nullptr},
                          {"NCPU", std::thread::hardware_concurrency()},
                          {"MemTotal", static_cast<int64_t>(pages) * page},
                          {"DockerRootDir", ctx.root()},
                          {"Name", host},
                          {"Labels", json::array()},
                          {"ExperimentalBuild", false},
                          {"ServerVersion", kVesselVersion},
                          {"Runtimes", {{"vessel", {{"path", "vessel"}}}}},
                          {"DefaultRuntime", "vessel"},
                          {"Swarm",
                           {{"NodeID", ""},
                            {"NodeAddr", ""},
                            {"LocalNodeState", "inactive"},
                            {"ControlAvailable", false},
                            {"Error", ""},
                            {"RemoteManagers", nullptr}}},
                          {"LiveRestoreEnabled", true},
                          {"Isolation", ""},
                          {"InitBinary", ""},
                          {"SecurityOptions", json::array({"name=vm"})},
                          {"Warnings", json::array()}});
}

// Seconds (Docker also takes RFC 3339; only numbers here) -> ns; 0 if absent.
Result<int64_t> time_arg(const Request& req, const char* key) {
  std::string v = req.arg(key);
  if (v.empty()) return int64_t{0};
  size_t dot = v.find('.');
  auto secs = parse_u64(v.substr(0, dot));
  if (!secs)
    return Error(ErrorCode::kInvalidArgument,
                 std::string("invalid ") + key + " '" + v + "' (expected Unix seconds)");
  return static_cast<int64_t>(*secs) * 1'000'000'000;
}

json die_event(const state::ContainerRecord& r, int code, int64_t ns) {
  json a = container_attributes(r);
  a["exitCode"] = std::to_string(code);
  return event("container", "die", r.id, a, ns);
}

// /events: what watch_container_events and this service published, from
// the request on, or from `since` (of what is still kept: the last
// Context::kEventHistory events); `until` ends the stream.
Reply events(Context& ctx, Request& req, Exchange& ex) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto filters, parse_filters(req.arg("filters")));
  VESSEL_ASSIGN_OR_RETURN_REPLY(int64_t until, time_arg(req, "until"));
  VESSEL_ASSIGN_OR_RETURN_REPLY(int64_t since, time_arg(req, "since"));
  for (const auto& [k, values] : filters)
    if (k != "type" && k != "event" && k != "container" && k != "image" && k != "label")
      return error_reply(400, "invalid filter '" + k + "'");
  auto wanted = [&](const json& e) {
    int64_t t = e["timeNano"].get<int64_t>();
    if ((since && t < since) || (until && t > until)) return false;
    for (const auto& [k, values] : filters) {
      if (values.empty()) continue;
      bool any = false;
      const json& attrs = e["Actor"]["Attributes"];
      for (const auto& v : values) {
        if (k == "type") any = any || e["Type"] == v;
        if (k == "event") any = any || e["Action"] == v;
        if (k == "container")
          any = any || (e["Type"] == "container" &&
                        (attrs.value("name", "") == v ||
                         e["Actor"]["ID"].get<std::string>().rfind(v, 0) == 0));
        if (k == "image")
          any = any || attrs.value("image", "") == v || attrs.value("name", "") == v;
        if (k == "label") {
          auto eq = v.find('=');
          auto it = attrs.find(v.substr(0, eq));
          any = any || (it != attrs.end() && it->is_string() &&
                        (eq == std::string::npos || *it == v.substr(eq + 1)));
        }
      }
      if (!any) return false;
    }
    return true;
  };
  Reply taken;
  taken.taken = true;
  if (!ex.begin_stream(200, "application/json").ok()) return taken;
  // since=0 is a time too (the start of history).
  uint64_t seq = !req.arg("since").empty() ? 0 : ctx.event_count();
  while (true) {
    for (const auto& e : ctx.events_after(seq, &seq))
      if (wanted(e) && !ex.write(dump_json(e) + "\n").ok()) return taken;
    if (until && state::now_ns() > until) return taken;
    if (ex.client_gone()) return taken;
    ctx.await_event(seq, std::chrono::milliseconds(200));
  }
}

// /system/df: images, containers and volumes with their sizes (Vessel does
// not measure writable layers or volume contents: SizeRw 0, Size -1).
Reply disk_usage(Context& ctx, Request&, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto store, images::ImageStore::open(ctx.root()));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto records, store.list());
  json imgs = images::list_view(store, records);
  int64_t layers = 0;
  for (const auto& i : imgs)
    layers += i.value("Size", int64_t{0});
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto all, cs->list());
  json ctrs = json::array();
  int64_t now = state::now_ns();
  for (const auto& r : all) {
    json c = containers::list_view(*cs, r, now);
    c["SizeRw"] = 0;
    c["SizeRootFs"] = 0;
    ctrs.push_back(c);
  }
  for (auto& i : imgs) {
    int n = 0;
    for (const auto& r : all)
      for (const auto& rec : records)
        if (rec.config.str() == i["Id"] && rec.manifest.str() == r.image_id) ++n;
    i["Containers"] = n;
  }
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto vols, cs->volumes());
  json vs = json::array();
  for (const auto& v : vols) {
    json j = containers::volume_view(*cs, v);
    j["UsageData"] = {{"Size", -1}, {"RefCount", j["UsedBy"].size()}};
    vs.push_back(j);
  }
  return json_reply(200, {{"LayersSize", layers},
                          {"Images", imgs},
                          {"Containers", ctrs},
                          {"Volumes", vs},
                          {"BuildCache", json::array()}});
}

Reply unsupported(Context&, Request& req, Exchange&) {
  return error_reply(501, "'" + req.method + " " + req.path + "' is not supported by Vessel " +
                              "(see docs/docker-api.md)");
}

Reply swarm(Context&, Request&, Exchange&) {
  return error_reply(503, "This node is not a swarm manager. Vessel does not support swarm mode.");
}

}  // namespace

json event(const std::string& type, const std::string& action, const std::string& id,
           json attributes, int64_t ns) {
  json e = {{"Type", type},
            {"Action", action},
            {"Actor", {{"ID", id}, {"Attributes", std::move(attributes)}}},
            {"scope", "local"},
            {"time", ns / 1'000'000'000},
            {"timeNano", ns}};
  if (type == "container") {
    e["status"] = action;
    e["id"] = id;
    e["from"] = e["Actor"]["Attributes"].value("image", "");
  }
  return e;
}

json container_attributes(const state::ContainerRecord& r) {
  json a = {{"image", r.image}, {"name", r.name}};
  if (auto c = runtime::config_from_json(r.config); c.ok())
    for (const auto& [k, v] : c->labels)
      a[k] = v;
  return a;
}

void watch_container_events(Context& ctx, std::stop_token stop) {
  std::unique_ptr<containers::Containers> cs;
  while (!cs && !stop.stop_requested()) {
    if (auto opened = ctx.containers(); opened.ok())
      cs = std::move(*opened);
    else
      std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  auto snapshot = [&]() -> std::optional<std::map<std::string, state::ContainerRecord>> {
    auto all = cs->list();
    if (!all.ok()) return std::nullopt;  // busy: next round
    std::map<std::string, state::ContainerRecord> out;
    for (auto& r : *all)
      out.emplace(r.id, std::move(r));
    return out;
  };
  std::map<std::string, state::ContainerRecord> known;
  if (cs) {
    // The history the records still hold.
    known = snapshot().value_or(std::map<std::string, state::ContainerRecord>{});
    std::vector<json> past;
    for (const auto& [id, r] : known) {
      past.push_back(event("container", "create", id, container_attributes(r), r.created));
      if (r.state.started)
        past.push_back(event("container", "start", id, container_attributes(r), r.state.started));
      if (r.state.finished && r.state.finished >= r.state.started)
        past.push_back(die_event(r, r.state.exit_code, r.state.finished));
    }
    std::stable_sort(past.begin(), past.end(), [](const json& a, const json& b) {
      return a["timeNano"].get<int64_t>() < b["timeNano"].get<int64_t>();
    });
    for (auto& e : past)
      ctx.publish(std::move(e));
  }
  std::set<std::string> deferred;
  while (cs && !stop.stop_requested()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto current = snapshot();
    if (!current) continue;
    auto& now = *current;
    std::vector<json> out;
    for (const auto& [id, r] : now) {
      auto it = known.find(id);
      if (it == known.end()) {
        out.push_back(event("container", "create", id, container_attributes(r), r.created));
        if (r.state.started)
          out.push_back(event("container", "start", id, container_attributes(r), r.state.started));
        continue;
      }
      const auto& before = it->second.state;
      if (r.state.started != before.started && r.state.started)
        out.push_back(event("container", "start", id, container_attributes(r), r.state.started));
      if (r.state.finished != before.finished && r.state.finished)
        out.push_back(die_event(r, r.state.exit_code, r.state.finished));
    }
    for (const auto& [id, r] : known)
      if (!now.count(id)) {
        // A wait may hear the exit code a moment after the record goes:
        // give it one more round.
        if (r.state.status == state::RunState::kRunning && ctx.heard_exit(id) < 0 &&
            deferred.insert(id).second) {
          now.emplace(id, r);
          continue;
        }
        deferred.erase(id);
        if (r.state.status == state::RunState::kRunning) {
          // Removed (--rm) before we saw it exit: the exit code is what a
          // wait on it heard from the monitor, if one did.
          int code = ctx.heard_exit(id);
          out.push_back(die_event(r, code < 0 ? 0 : code, state::now_ns()));
        }
        out.push_back(event("container", "destroy", id, container_attributes(r), state::now_ns()));
      }
    known = std::move(now);
    std::stable_sort(out.begin(), out.end(), [](const json& a, const json& b) {
      return a["timeNano"].get<int64_t>() < b["timeNano"].get<int64_t>();
    });
    for (auto& e : out)
      ctx.publish(std::move(e));
  }
}

void add_system_routes(Router& r) {
  r.add("GET", "/_ping", ping);
  r.add("GET", "/version", version);
  r.add("GET", "/info", info);
  r.add("GET", "/events", events);
  r.add("GET", "/system/df", disk_usage);
  for (const char* p : {"/swarm", "/nodes", "/services", "/tasks", "/secrets", "/configs"}) {
    r.add("GET", p, swarm);
    r.add("POST", std::string(p) + "/{rest*}", swarm);
    r.add("GET", std::string(p) + "/{rest*}", swarm);
  }
  r.add("POST", "/swarm", swarm);
  r.add("POST", "/build", unsupported);
  r.add("POST", "/commit", unsupported);
  r.add("POST", "/session", unsupported);
  r.add("GET", "/plugins", unsupported);
}

}  // namespace vessel::api
