// /images/...: list, inspect, create (= pull, with Docker's JSON progress
// stream), tag, remove. The JSON comes from images/views.h.
#include <mutex>
#include <set>

#include "api/context.h"
#include "api/handlers.h"
#include "images/image_store.h"
#include "images/views.h"
#include "runtime/paths.h"
#include "state/store.h"

namespace vessel::api {

using nlohmann::json;

namespace {

// An image by name, or by (a prefix of) its id ("sha256:..." or hex), as
// Docker accepts; every record with that id when found by id.
Result<std::vector<images::ImageRecord>> lookup(images::ImageStore& store,
                                                const std::string& name) {
  std::string hex = name.rfind("sha256:", 0) == 0 ? name.substr(7) : name;
  bool hexish = hex.size() >= 4 && hex.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (!hexish || name.rfind("sha256:", 0) != 0) {
    if (auto ref = image::parse_reference(name); ref.ok()) {
      VESSEL_ASSIGN_OR_RETURN(auto found, store.find(*ref));
      if (found) return std::vector<images::ImageRecord>{*found};
    }
  }
  if (hexish) {
    VESSEL_ASSIGN_OR_RETURN(auto all, store.list());
    std::vector<images::ImageRecord> out;
    std::set<std::string> ids;
    for (const auto& r : all)
      if (r.config.hex().rfind(hex, 0) == 0) {
        out.push_back(r);
        ids.insert(r.config.hex());
      }
    if (ids.size() > 1)
      return Error(ErrorCode::kInvalidArgument, "image id '" + name + "' is ambiguous");
    if (!out.empty()) return out;
  }
  return Error(ErrorCode::kNotFound, "No such image: " + name);
}

Reply list(Context& ctx, Request&, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto store, images::ImageStore::open(ctx.root()));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto all, store.list());
  return json_reply(200, images::list_view(store, all));
}

Reply inspect(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto store, images::ImageStore::open(ctx.root()));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto found, lookup(store, req.param("name")));
  // Every name of the same image, for RepoTags.
  std::vector<std::string> names;
  if (auto all = store.list(); all.ok())
    for (const auto& r : *all)
      if (r.config == found[0].config) names.push_back(r.name);
  VESSEL_ASSIGN_OR_RETURN_REPLY(json view, images::inspect_view(store, found[0], names));
  return json_reply(200, view);
}

Reply tag(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto store, images::ImageStore::open(ctx.root()));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto found, lookup(store, req.param("name")));
  std::string target = req.arg("repo");
  if (target.empty()) return error_reply(400, "tag: repo is required");
  if (!req.arg("tag").empty()) target += ":" + req.arg("tag");
  auto ref = image::parse_reference(target);
  if (!ref.ok()) return error_reply(400, ref.error().to_string());
  if (auto s = store.tag(found[0], *ref); !s.ok()) return error_reply(s.error());
  return Reply{201, "application/json", "", {}, false};
}

Reply remove(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto store, images::ImageStore::open(ctx.root()));
  std::string name = req.param("name");
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto found, lookup(store, name));
  bool force = req.flag("force");
  if (!force) {
    VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
    VESSEL_ASSIGN_OR_RETURN_REPLY(auto all, cs->store().containers());
    for (const auto& c : all)
      for (const auto& r : found)
        if (c.image_id == r.manifest.str())
          return error_reply(409, "conflict: unable to remove repository reference \"" + name +
                                      "\" (must force) - container " + c.id.substr(0, 12) +
                                      " is using its referenced image " + r.config.short_hex());
  }
  json out = json::array();
  for (const auto& r : found) {
    auto ref = image::parse_reference(r.name);
    if (!ref.ok()) continue;
    if (auto s = store.remove(*ref); !s.ok()) return error_reply(s.error());
    out.push_back({{"Untagged", ref->familiar()}});
  }
  return json_reply(200, out);
}

std::string progress_line(const json& j) {
  return dump_json(j) + "\r\n";
}

Reply create(Context& ctx, Request& req, Exchange& ex) {
  std::string from = req.arg("fromImage");
  if (from.empty())
    return error_reply(501,
                       "importing images (fromSrc) is not supported by Vessel; use "
                       "`vessel image load` (see docs/docker-api.md)");
  std::string tag = req.arg("tag");
  std::string name = from;
  if (!tag.empty()) name += (tag.rfind("sha256:", 0) == 0 ? "@" : ":") + tag;
  auto ref = image::parse_reference(name);
  if (!ref.ok()) return error_reply(400, ref.error().to_string());
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto store, images::ImageStore::open(ctx.root()));
  images::PullOptions o;
  if (auto platform = req.arg("platform"); !platform.empty()) {
    auto p = image::parse_platform(platform);
    if (!p.ok()) return error_reply(400, p.error().to_string());
    o.platform = *p;
  }
  Reply taken;
  taken.taken = true;
  if (!ex.begin_stream(200, "application/json").ok()) return taken;
  std::string shown_tag = ref->digest ? ref->digest->str() : ref->tag;
  // Docker names the repository's path: "Pulling from library/busybox".
  (void)ex.write(progress_line({{"status", "Pulling from " + ref->repository}, {"id", shown_tag}}));
  std::mutex mu;
  o.progress = [&](const images::PullEvent& e) {
    std::lock_guard lock(mu);
    std::string id = e.digest.short_hex();
    json j;
    using K = images::PullEvent::Kind;
    switch (e.kind) {
      case K::kResolved:
        return;
      case K::kLayerStart:
        j = {{"status", "Pulling fs layer"}, {"progressDetail", json::object()}, {"id", id}};
        break;
      case K::kLayerBytes:
        j = {{"status", "Downloading"},
             {"progressDetail", {{"current", e.bytes}, {"total", e.total}}},
             {"id", id}};
        break;
      case K::kLayerDone:
        j = {{"status", "Pull complete"}, {"progressDetail", json::object()}, {"id", id}};
        break;
      case K::kLayerCached:
        j = {{"status", "Already exists"}, {"progressDetail", json::object()}, {"id", id}};
        break;
      case K::kUnpacking:
        j = {{"status", "Extracting"}, {"progressDetail", json::object()}, {"id", id}};
        break;
    }
    (void)ex.write(progress_line(j));
  };
  bool had = false;
  if (auto before = store.find(*ref); before.ok() && *before) had = true;
  Result<images::ImageRecord> pulled = Error(ErrorCode::kNotFound, "");
  // An image embedded in the build comes from the build, not a registry.
  std::string layout = ref->registry == image::kDockerHubRegistry && !ref->digest
                           ? runtime::embedded_image_layout(ref->repository)
                           : "";
  if (!layout.empty()) {
    auto loaded = store.load_layout(layout, ref->repository);
    if (loaded.ok()) {
      auto found = store.find(*ref);
      if (found.ok() && *found)
        pulled = **found;
      else
        pulled = Error(ErrorCode::kNotFound, "the build embeds no '" + ref->familiar() + "'");
    } else {
      pulled = loaded.error();
    }
  } else {
    pulled = store.pull(*ref, o);
  }
  if (!pulled.ok()) {
    std::string m = pulled.error().to_string();
    (void)ex.write(progress_line({{"errorDetail", {{"message", m}}}, {"error", m}}));
    return taken;
  }
  int64_t now = state::now_ns();
  ctx.publish({{"status", "pull"},
               {"id", ref->familiar()},
               {"Type", "image"},
               {"Action", "pull"},
               {"Actor", {{"ID", ref->familiar()}, {"Attributes", {{"name", ref->familiar()}}}}},
               {"scope", "local"},
               {"time", now / 1'000'000'000},
               {"timeNano", now}});
  (void)ex.write(progress_line({{"status", "Digest: " + pulled->manifest.str()}}));
  (void)ex.write(
      progress_line({{"status", std::string(had ? "Status: Image is up to date for "
                                                : "Status: Downloaded newer image for ") +
                                    ref->familiar()}}));
  return taken;
}

Reply not_supported(Context&, Request& req, Exchange&) {
  return error_reply(501, "'" + req.method + " " + req.path +
                              "' is not supported by Vessel yet (see docs/docker-api.md)");
}

}  // namespace

void add_image_routes(Router& r) {
  r.add("GET", "/images/json", list);
  r.add("POST", "/images/create", create);
  r.add("POST", "/images/load", not_supported);
  r.add("GET", "/images/get", not_supported);
  r.add("POST", "/images/prune", not_supported);
  r.add("GET", "/images/search", not_supported);
  r.add("GET", "/images/{name*}/json", inspect);
  r.add("GET", "/images/{name*}/history", not_supported);
  r.add("GET", "/images/{name*}/get", not_supported);
  r.add("POST", "/images/{name*}/tag", tag);
  r.add("POST", "/images/{name*}/push", not_supported);
  r.add("DELETE", "/images/{name*}", remove);
}

}  // namespace vessel::api
