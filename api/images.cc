// /images/...: list, inspect, create (= pull, with Docker's JSON progress
// stream), tag, remove. The JSON comes from images/views.h.
#include <fcntl.h>
#include <unistd.h>

#include <mutex>
#include <set>
#include <thread>

#include "api/context.h"
#include "api/create_body.h"
#include "api/handlers.h"
#include "base/log.h"
#include "images/image_store.h"
#include "images/views.h"
#include "registry/auth.h"
#include "runtime/paths.h"
#include "state/store.h"
#include "sys/fs.h"

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

// GET /images/{name}/history.
Reply history(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto store, images::ImageStore::open(ctx.root()));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto found, lookup(store, req.param("name")));
  std::vector<std::string> names;
  for (const auto& r : found)
    names.push_back(r.name);
  VESSEL_ASSIGN_OR_RETURN_REPLY(json view, images::history_view(store, found[0], names));
  return json_reply(200, view);
}

// GET /images/{name}/get and /images/get?names=A&names=B: `docker save`,
// the archive vessel image save writes (an OCI layout with Docker's
// manifest.json, which docker load reads).
Reply save(Context& ctx, Request& req, Exchange& ex) {
  std::vector<std::string> names;
  if (!req.param("name").empty())
    names.push_back(req.param("name"));
  else if (auto it = req.query_all.find("names"); it != req.query_all.end())
    names = it->second;
  if (names.empty()) return error_reply(400, "bad parameter: names is required");
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto store, images::ImageStore::open(ctx.root()));
  std::vector<images::ImageRecord> records;
  for (const auto& n : names) {
    VESSEL_ASSIGN_OR_RETURN_REPLY(auto found, lookup(store, n));
    records.insert(records.end(), found.begin(), found.end());
  }
  Reply taken;
  taken.taken = true;
  if (!ex.begin_stream(200, "application/x-tar").ok()) return taken;
  // A failure after the headers can only be told by cutting the stream:
  // the client's tar reader then fails.
  if (auto s = store.save(records, ex.fd()); !s.ok())
    log::warn("save " + names[0] + ": " + s.error().to_string());
  return taken;
}

// POST /images/load: the body is a `docker save` archive or an OCI layout
// tar, streamed through a pipe into the image store's loader.
Reply load(Context& ctx, Request&, Exchange& ex) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto store, images::ImageStore::open(ctx.root()));
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return error_reply(Error::from_errno(errno, "pipe"));
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  Result<std::vector<images::ImageRecord>> loaded = std::vector<images::ImageRecord>{};
  std::thread loader([&] {
    loaded = store.load_archive(read_end.get(), "the request body");
    read_end.reset();  // a writer still sending gets EPIPE
  });
  Status body = ok_status();
  std::string chunk;
  while (true) {
    auto more = ex.read_body(chunk);
    if (!more.ok()) {
      body = more.error();
      break;
    }
    if (!*more) break;
    if (!sys::write_all(write_end.get(), chunk.data(), chunk.size()).ok()) break;  // loader ended
  }
  write_end.reset();
  loader.join();
  if (!body.ok()) return error_reply(body.error());
  if (!loaded.ok()) return error_reply(400, "load: " + loaded.error().to_string());
  std::string out;
  for (const auto& r : *loaded) {
    auto ref = image::parse_reference(r.name);
    std::string shown = ref.ok() ? ref->familiar() : r.name;
    out += progress_line({{"stream", "Loaded image: " + shown + "\n"}});
  }
  Reply r;
  r.body = out;
  return r;
}

// POST /images/prune: Vessel keeps no untagged images (a name removed is
// its image gone from the list), so this reclaims the space no name or
// container still needs, as vessel image prune does.
Reply prune(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto filters, parse_filters(req.arg("filters")));
  for (const auto& [k, v] : filters)
    if (k != "dangling" || v.size() != 1 || (v[0] != "true" && v[0] != "1"))
      return error_reply(
          400, "image prune: filter '" + k + "' is not supported by Vessel (only dangling=true)");
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto all, cs->store().containers());
  std::set<std::string> in_use;
  for (const auto& c : all)
    if (!c.image_id.empty()) in_use.insert(c.image_id);
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto store, images::ImageStore::open(ctx.root()));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto stats, store.prune(in_use));
  return json_reply(200, {{"ImagesDeleted", nullptr}, {"SpaceReclaimed", stats.bytes}});
}

// POST /images/{name}/push?tag=: Docker's JSON progress stream.
Reply push(Context& ctx, Request& req, Exchange& ex) {
  std::string name = req.param("name");
  std::string tag = req.arg("tag");
  if (!tag.empty()) name += ":" + tag;
  auto ref = image::parse_reference(name);
  if (!ref.ok()) return error_reply(400, ref.error().to_string());
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto creds, parse_registry_auth(req.header("x-registry-auth")));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto store, images::ImageStore::open(ctx.root()));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto found, store.find(*ref));
  if (!found)
    return error_reply(404, "An image does not exist locally with the tag: " + ref->familiar());
  images::PullOptions o;
  o.credentials = creds;
  Reply taken;
  taken.taken = true;
  if (!ex.begin_stream(200, "application/json").ok()) return taken;
  std::string repo = ref->familiar().substr(0, ref->familiar().rfind(':'));
  (void)ex.write(progress_line({{"status", "The push refers to repository [" + repo + "]"}}));
  std::mutex mu;
  o.progress = [&](const images::PullEvent& e) {
    std::lock_guard lock(mu);
    using K = images::PullEvent::Kind;
    std::string id = e.digest.short_hex();
    if (e.kind == K::kLayerStart)
      (void)ex.write(progress_line({{"status", "Pushing"},
                                    {"progressDetail", {{"current", 0}, {"total", e.total}}},
                                    {"id", id}}));
    else if (e.kind == K::kLayerDone)
      (void)ex.write(
          progress_line({{"status", "Pushed"}, {"progressDetail", json::object()}, {"id", id}}));
    else if (e.kind == K::kLayerCached)
      (void)ex.write(progress_line(
          {{"status", "Layer already exists"}, {"progressDetail", json::object()}, {"id", id}}));
  };
  if (auto s = store.push(*found, *ref, o); !s.ok()) {
    std::string m = s.error().to_string();
    (void)ex.write(progress_line({{"errorDetail", {{"message", m}}}, {"error", m}}));
    return taken;
  }
  auto manifest_bytes = store.manifest_bytes(*found);
  std::string manifest = manifest_bytes.ok() ? *manifest_bytes : "";
  std::string shown_tag = ref->tag.empty() ? "latest" : ref->tag;
  (void)ex.write(progress_line({{"status", shown_tag + ": digest: " + found->manifest.str() +
                                               " size: " + std::to_string(manifest.size())}}));
  (void)ex.write(progress_line(
      {{"progressDetail", json::object()},
       {"aux",
        {{"Tag", shown_tag}, {"Digest", found->manifest.str()}, {"Size", manifest.size()}}}}));
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
  r.add("POST", "/images/load", load, /*streams_body=*/true);
  r.add("GET", "/images/get", save);
  r.add("POST", "/images/prune", prune);
  r.add("GET", "/images/search", not_supported);
  r.add("GET", "/images/{name*}/json", inspect);
  r.add("GET", "/images/{name*}/history", history);
  r.add("GET", "/images/{name*}/get", save);
  r.add("POST", "/images/{name*}/tag", tag);
  r.add("POST", "/images/{name*}/push", push);
  r.add("DELETE", "/images/{name*}", remove);
}

}  // namespace vessel::api
