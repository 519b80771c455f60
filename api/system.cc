// /_ping, /version, /info, /system/df: what clients ask first.
#include <sys/utsname.h>
#include <unistd.h>

#include <thread>

#include "api/context.h"
#include "api/handlers.h"
#include "images/image_store.h"
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

Reply unsupported(Context&, Request& req, Exchange&) {
  return error_reply(501, "'" + req.method + " " + req.path + "' is not supported by Vessel " +
                              "(see docs/docker-api.md)");
}

Reply swarm(Context&, Request&, Exchange&) {
  return error_reply(503, "This node is not a swarm manager. Vessel does not support swarm mode.");
}

}  // namespace

void add_system_routes(Router& r) {
  r.add("GET", "/_ping", ping);
  r.add("GET", "/version", version);
  r.add("GET", "/info", info);
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
