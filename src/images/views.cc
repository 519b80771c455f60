#include "images/views.h"

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
      {"Created", "0001-01-01T00:00:00Z"},
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
      if (auto cfg = store.config(r); cfg.ok()) labels = cfg->config.labels;
      it = by_id
               .emplace(id, json{{"Id", id},
                                 {"ParentId", ""},
                                 {"RepoTags", json::array()},
                                 {"RepoDigests", json::array()},
                                 {"Created", 0},
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

}  // namespace vessel::images
