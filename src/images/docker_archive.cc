#include "images/docker_archive.h"

#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "image/manifest.h"
#include "image/text.h"

namespace vessel::images {
namespace {

using Json = nlohmann::json;

Error bad(std::string_view field, std::string_view why) {
  return Error(ErrorCode::kProtocol, "manifest.json: " + std::string(field) +
                                         (field.empty() ? "" : ": ") + std::string(why));
}

Result<std::string> path_at(const Json& v, const std::string& field) {
  if (!v.is_string()) return bad(field, "not a string");
  auto p = normalize_archive_path(v.get_ref<const std::string&>());
  if (!p.ok()) return bad(field, p.error().message());
  return p;
}

}  // namespace

Result<std::string> normalize_archive_path(std::string_view path) {
  auto fail = [&](const char* why) {
    return Error(ErrorCode::kProtocol, "'" + image::detail::printable(path) + "': " + why);
  };
  if (path.empty()) return fail("empty path");
  if (path.size() > kMaxDockerArchivePath) return fail("path too long");
  if (path.find('\0') != std::string_view::npos) return fail("path has a NUL byte");
  if (path.front() == '/') return fail("absolute path");
  std::string out;
  for (const std::string& comp : split(path, '/')) {
    if (comp == ".") continue;
    if (comp.empty()) return fail("empty path component");
    if (comp == "..") return fail("path leaves the archive");
    out += (out.empty() ? "" : "/") + comp;
  }
  if (out.empty()) return fail("path names the archive's root");
  return out;
}

Result<std::vector<DockerArchiveImage>> parse_docker_archive_manifest(std::string_view bytes) {
  if (bytes.size() > kMaxDockerArchiveManifestBytes)
    return bad("", "larger than " + std::to_string(kMaxDockerArchiveManifestBytes) + " bytes");
  Json j = Json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("", "not valid JSON");
  if (!j.is_array()) return bad("", "not a JSON array");
  if (j.empty()) return bad("", "lists no image");
  if (j.size() > kMaxDockerArchiveImages)
    return bad("", "more than " + std::to_string(kMaxDockerArchiveImages) + " images");
  std::vector<DockerArchiveImage> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const Json& e = j[i];
    std::string at = "[" + std::to_string(i) + "]";
    if (!e.is_object()) return bad(at, "not an object");
    DockerArchiveImage img;
    auto config = e.find("Config");
    if (config == e.end()) return bad(at + ".Config", "missing");
    VESSEL_ASSIGN_OR_RETURN(img.config, path_at(*config, at + ".Config"));

    auto tags = e.find("RepoTags");
    if (tags != e.end() && !tags->is_null()) {
      if (!tags->is_array()) return bad(at + ".RepoTags", "not an array");
      if (tags->size() > 1000) return bad(at + ".RepoTags", "more than 1000 names");
      for (size_t t = 0; t < tags->size(); ++t) {
        const Json& tag = (*tags)[t];
        std::string field = at + ".RepoTags[" + std::to_string(t) + "]";
        if (!tag.is_string()) return bad(field, "not a string");
        if (tag.get_ref<const std::string&>().size() > 512) return bad(field, "too long");
        img.repo_tags.push_back(tag.get<std::string>());
      }
    }

    auto layers = e.find("Layers");
    if (layers == e.end() || layers->is_null()) return bad(at + ".Layers", "missing");
    if (!layers->is_array()) return bad(at + ".Layers", "not an array");
    if (layers->size() > image::kMaxLayers)
      return bad(at + ".Layers", "more than " + std::to_string(image::kMaxLayers) + " layers");
    for (size_t l = 0; l < layers->size(); ++l) {
      VESSEL_ASSIGN_OR_RETURN(std::string p,
                              path_at((*layers)[l], at + ".Layers[" + std::to_string(l) + "]"));
      img.layers.push_back(std::move(p));
    }
    out.push_back(std::move(img));
  }
  return out;
}

}  // namespace vessel::images
