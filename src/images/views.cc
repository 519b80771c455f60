#include "images/views.h"

#include <cstdio>
#include <ctime>
#include <map>

#include "image/reference.h"

namespace vessel::images {

using nlohmann::json;

namespace {

// "busybox:latest" and "busybox@sha256:..." for a canonical name.
void add_names(const ImageRecord& rec, const std::string& name, json& tags, json& digests) {
  auto ref = image::parse_reference(name);
  if (!ref.ok()) return;
  std::string familiar = ref->familiar();
  if (!ref->tag.empty() && !ref->digest) tags.push_back(familiar);
  std::string repo = familiar.substr(0, familiar.find_first_of("@"));
  if (!ref->tag.empty() && !ref->digest) repo = familiar.substr(0, familiar.rfind(':'));
  std::string d = repo + "@" + rec.manifest.str();
  for (const auto& x : digests)
    if (x == d) return;
  digests.push_back(d);
}

json object_of_keys(const std::vector<std::string>& keys) {
  json out = json::object();
  for (const auto& k : keys)
    out[k] = json::object();
  return out;
}

}  // namespace

Result<json> inspect_view(const ImageStore& store, const ImageRecord& rec,
                          const std::vector<std::string>& names) {
  VESSEL_ASSIGN_OR_RETURN(image::ImageConfig config, store.config(rec));
  VESSEL_ASSIGN_OR_RETURN(std::string manifest, store.manifest_bytes(rec));
  json layers = json::array(), diff_ids = json::array();
  for (const auto& l : rec.layers)
    layers.push_back(l.str());
  for (const auto& d : config.diff_ids)
    diff_ids.push_back(d.str());
  json tags = json::array(), digests = json::array();
  for (const auto& n : names.empty() ? std::vector<std::string>{rec.name} : names)
    add_names(rec, n, tags, digests);
  const auto& c = config.config;
  return json{
      {"Id", rec.config.str()},
      {"RepoTags", tags},
      {"RepoDigests", digests},
      {"Parent", ""},
      {"Comment", ""},
      {"Created", config.created.empty() ? "0001-01-01T00:00:00Z" : config.created},
      {"Architecture", config.architecture},
      {"Os", config.os},
      {"Size", rec.size},
      {"VirtualSize", rec.size},
      {"Config",
       {{"User", c.user},
        {"Env", c.env},
        {"Entrypoint", c.entrypoint},
        {"Cmd", c.cmd},
        {"WorkingDir", c.working_dir},
        {"StopSignal", c.stop_signal},
        {"Labels", c.labels},
        {"ExposedPorts", object_of_keys(c.exposed_ports)},
        {"Volumes", object_of_keys(c.volumes)}}},
      {"RootFS", {{"Type", "layers"}, {"Layers", diff_ids}}},
      {"Name", rec.name},
      {"Digest", rec.manifest.str()},
      {"Platform", rec.platform},
      {"Layers", layers},
      {"Manifest", json::parse(manifest, nullptr, false)},
  };
}

json list_view(const ImageStore& store, const std::vector<ImageRecord>& records) {
  std::map<std::string, json> by_id;
  std::vector<std::string> order;
  for (const auto& r : records) {
    std::string id = r.config.str();
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      json labels = json::object();
      int64_t created = 0;
      if (auto cfg = store.config(r); cfg.ok()) {
        labels = cfg->config.labels;
        created = unix_seconds(cfg->created);
      }
      it = by_id
               .emplace(id, json{{"Id", id},
                                 {"ParentId", ""},
                                 {"RepoTags", json::array()},
                                 {"RepoDigests", json::array()},
                                 {"Created", created},
                                 {"Size", r.size},
                                 {"VirtualSize", r.size},
                                 {"SharedSize", -1},
                                 {"Labels", labels},
                                 {"Containers", -1}})
               .first;
      order.push_back(id);
    }
    add_names(r, r.name, it->second["RepoTags"], it->second["RepoDigests"]);
  }
  json out = json::array();
  for (const auto& id : order)
    out.push_back(by_id[id]);
  return out;
}

Result<json> history_view(const ImageStore& store, const ImageRecord& rec,
                          const std::vector<std::string>& names) {
  VESSEL_ASSIGN_OR_RETURN(image::ImageConfig config, store.config(rec));
  json tags = json::array(), digests = json::array();
  for (const auto& n : names.empty() ? std::vector<std::string>{rec.name} : names)
    add_names(rec, n, tags, digests);
  json out = json::array();
  for (auto it = config.history.rbegin(); it != config.history.rend(); ++it) {
    bool newest = out.empty();
    out.push_back({{"Id", newest ? rec.config.str() : "<missing>"},
                   {"Created", unix_seconds(it->created)},
                   {"CreatedBy", it->created_by},
                   {"Tags", newest ? tags : json(nullptr)},
                   {"Size", 0},
                   {"Comment", it->comment}});
  }
  if (out.empty())  // no history: the image as one step
    out.push_back({{"Id", rec.config.str()},
                   {"Created", unix_seconds(config.created)},
                   {"CreatedBy", ""},
                   {"Tags", tags},
                   {"Size", rec.size},
                   {"Comment", ""}});
  return out;
}

int64_t unix_seconds(const std::string& text) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6)
    return 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::string_view rest = std::string_view(text).substr(static_cast<size_t>(consumed));
  if (!rest.empty() && rest[0] == '.') {  // fractions of a second: dropped
    size_t end = rest.find_first_not_of("0123456789", 1);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  int64_t offset = 0;
  if (rest == "Z" || rest == "z") {
    offset = 0;
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int h = 0, m = 0;
    if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &h, &m) != 2) return 0;
    offset = (rest[0] == '+' ? 1 : -1) * (h * 3600 + m * 60);
  } else {
    return 0;
  }
  time_t t = ::timegm(&tm);
  if (t == static_cast<time_t>(-1)) return 0;
  return static_cast<int64_t>(t) - offset;
}

}  // namespace vessel::images
