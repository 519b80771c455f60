#include "image/manifest.h"

#include <algorithm>

#include "image/json_fields.h"
#include "image/text.h"

namespace vessel::image {
namespace {

using detail::field_error;
using detail::Json;
namespace mt = media_types;

constexpr size_t kMaxPlatformField = 64;

// RFC 6838 restricted-name "/" restricted-name, as the OCI descriptor
// schema's mediaType pattern.
bool well_formed_media_type(std::string_view s) {
  auto restricted_name = [](std::string_view n) {
    if (n.empty() || n.size() > 127) return false;
    auto alnum = [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    if (!alnum(n.front())) return false;
    for (char c : n)
      if (!alnum(c) && std::string_view("!#$&^_.+-").find(c) == std::string_view::npos)
        return false;
    return true;
  };
  const size_t slash = s.find('/');
  if (slash == std::string_view::npos) return false;
  return restricted_name(s.substr(0, slash)) && restricted_name(s.substr(slash + 1));
}

Result<std::string> media_type_field(const Json& obj, std::string_view path) {
  VESSEL_ASSIGN_OR_RETURN(std::string m, detail::require_string(obj, "mediaType", path));
  if (!well_formed_media_type(m))
    return field_error(detail::join(path, "mediaType"),
                       "malformed media type '" + detail::printable(m) + "'");
  return m;
}

Result<Platform> platform_field(const Json& v, std::string_view path) {
  if (!v.is_object()) return field_error(path, "expected an object");
  Platform p;
  VESSEL_ASSIGN_OR_RETURN(p.os, detail::require_string(v, "os", path));
  VESSEL_ASSIGN_OR_RETURN(p.architecture, detail::require_string(v, "architecture", path));
  VESSEL_ASSIGN_OR_RETURN(auto variant, detail::optional_string(v, "variant", path));
  if (variant) p.variant = *variant;
  // Only checked for size and emptiness: odd values ("unknown") are legal
  // and simply never match. os.version/os.features are ignored.
  for (auto [name, value] : {std::pair<const char*, const std::string*>{"os", &p.os},
                             {"architecture", &p.architecture},
                             {"variant", &p.variant}}) {
    if (value->size() > kMaxPlatformField)
      return field_error(detail::join(path, name), "longer than 64 bytes");
  }
  if (p.os.empty()) return field_error(detail::join(path, "os"), "empty");
  if (p.architecture.empty()) return field_error(detail::join(path, "architecture"), "empty");
  return p;
}

Result<Descriptor> descriptor(const Json& v, std::string_view path) {
  if (!v.is_object()) return field_error(path, "expected an object");
  VESSEL_ASSIGN_OR_RETURN(std::string media_type, media_type_field(v, path));
  VESSEL_ASSIGN_OR_RETURN(Digest digest, detail::require_digest(v, "digest", path));
  Descriptor d{.media_type = std::move(media_type), .digest = std::move(digest)};
  VESSEL_ASSIGN_OR_RETURN(d.size, detail::require_int(v, "size", path, 0, kMaxBlobSize));
  if (const Json* p = detail::find(v, "platform")) {
    VESSEL_ASSIGN_OR_RETURN(d.platform, platform_field(*p, detail::join(path, "platform")));
  }
  VESSEL_ASSIGN_OR_RETURN(d.annotations,
                          detail::string_map(v, "annotations", path, kMaxAnnotations));
  VESSEL_ASSIGN_OR_RETURN(d.urls, detail::string_array(v, "urls", path, kMaxUrls));
  return d;
}

Result<std::vector<Descriptor>> descriptor_array(const Json& obj, std::string_view key,
                                                 size_t max_count) {
  const Json* v = detail::find(obj, key);
  if (!v) return field_error(key, "missing");
  if (!v->is_array()) return field_error(key, "expected an array");
  if (v->size() > max_count)
    return field_error(key, "more than " + std::to_string(max_count) + " entries");
  std::vector<Descriptor> out;
  out.reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i) {
    VESSEL_ASSIGN_OR_RETURN(Descriptor d, descriptor((*v)[i], detail::index(key, i)));
    out.push_back(std::move(d));
  }
  return out;
}

Result<Manifest> parse_image_manifest(const Json& doc, std::string media_type) {
  if (detail::find(doc, "manifests"))
    return Error(ErrorCode::kProtocol, "image manifest has a 'manifests' field");
  VESSEL_ASSIGN_OR_RETURN(const Json* config_json, detail::require_object(doc, "config", ""));
  VESSEL_ASSIGN_OR_RETURN(Descriptor config, descriptor(*config_json, "config"));
  Manifest m{.media_type = std::move(media_type), .config = std::move(config)};
  VESSEL_ASSIGN_OR_RETURN(m.layers, descriptor_array(doc, "layers", kMaxLayers));
  for (size_t i = 0; i < m.layers.size(); ++i) {
    if (!layer_compression(m.layers[i].media_type))
      return field_error(detail::index("layers", i),
                         "unknown media type '" + detail::printable(m.layers[i].media_type) + "'");
  }
  VESSEL_ASSIGN_OR_RETURN(m.annotations,
                          detail::string_map(doc, "annotations", "", kMaxAnnotations));
  return m;
}

Result<Index> parse_index(const Json& doc, std::string media_type) {
  if (detail::find(doc, "config") || detail::find(doc, "layers"))
    return Error(ErrorCode::kProtocol, "index has a 'config' or 'layers' field");
  Index x;
  x.media_type = std::move(media_type);
  VESSEL_ASSIGN_OR_RETURN(x.manifests, descriptor_array(doc, "manifests", kMaxIndexManifests));
  VESSEL_ASSIGN_OR_RETURN(x.annotations,
                          detail::string_map(doc, "annotations", "", kMaxAnnotations));
  return x;
}

// "application/vnd.oci.image.index.v1+json; charset=utf-8" -> the bare type.
std::string bare_content_type(std::string_view hint) {
  if (const size_t semi = hint.find(';'); semi != std::string_view::npos)
    hint = hint.substr(0, semi);
  while (!hint.empty() && (hint.front() == ' ' || hint.front() == '\t'))
    hint.remove_prefix(1);
  while (!hint.empty() && (hint.back() == ' ' || hint.back() == '\t'))
    hint.remove_suffix(1);
  std::string out(hint);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool is_schema1(std::string_view m) {
  return m == mt::kDockerSchema1Manifest || m == mt::kDockerSchema1SignedManifest;
}

Error unknown_media_type(std::string_view m) {
  std::string msg = "unknown media type '" + detail::printable(m) + "'";
  if (is_schema1(m)) msg += " (Docker schema 1 manifests are not supported)";
  return Error(ErrorCode::kProtocol, std::move(msg));
}

Result<std::variant<Manifest, Index>> parse_manifest_impl(std::string_view bytes,
                                                          std::string_view hint_in) {
  VESSEL_ASSIGN_OR_RETURN(Json doc, detail::parse_object(bytes, kMaxManifestBytes));
  const std::string hint = bare_content_type(hint_in);
  const bool hint_known = is_manifest_media_type(hint) || is_index_media_type(hint);

  VESSEL_ASSIGN_OR_RETURN(auto body_type, detail::optional_string(doc, "mediaType", ""));
  std::string media_type;
  if (body_type) {
    media_type = *body_type;
    if (hint_known && hint != media_type)
      return Error(ErrorCode::kProtocol, "media type '" + detail::printable(media_type) +
                                             "' does not match content type '" +
                                             detail::printable(hint) + "'");
  } else if (hint_known || is_schema1(hint)) {
    media_type = hint;
  } else if (hint.empty() || hint == "application/json" || hint == "application/octet-stream") {
    // OCI lets mediaType be absent; tell the two OCI types apart by shape.
    if (detail::find(doc, "manifests"))
      media_type = mt::kOciIndex;
    else if (detail::find(doc, "config"))
      media_type = mt::kOciManifest;
    else
      return Error(ErrorCode::kProtocol, "no mediaType and neither 'config' nor 'manifests'");
  } else {
    media_type = hint;
  }
  if (!is_manifest_media_type(media_type) && !is_index_media_type(media_type))
    return unknown_media_type(media_type);

  // Checked after the media type so that a schema 1 document (version 1)
  // gets the clearer message above.
  VESSEL_ASSIGN_OR_RETURN(int64_t version,
                          detail::require_int(doc, "schemaVersion", "", INT64_MIN, INT64_MAX));
  if (version != 2)
    return Error(ErrorCode::kProtocol,
                 "schemaVersion " + std::to_string(version) + " is not supported (want 2)");

  if (is_index_media_type(media_type)) {
    VESSEL_ASSIGN_OR_RETURN(Index x, parse_index(doc, std::move(media_type)));
    return std::variant<Manifest, Index>(std::move(x));
  }
  VESSEL_ASSIGN_OR_RETURN(Manifest m, parse_image_manifest(doc, std::move(media_type)));
  return std::variant<Manifest, Index>(std::move(m));
}

}  // namespace

std::optional<LayerCompression> layer_compression(std::string_view m) {
  if (m == mt::kOciLayerTar || m == mt::kOciLayerNondistributableTar || m == mt::kDockerLayerTar ||
      m == mt::kDockerForeignLayerTar)
    return LayerCompression::kNone;
  if (m == mt::kOciLayerTarGzip || m == mt::kOciLayerNondistributableTarGzip ||
      m == mt::kDockerLayerTarGzip || m == mt::kDockerForeignLayerTarGzip)
    return LayerCompression::kGzip;
  if (m == mt::kOciLayerTarZstd || m == mt::kOciLayerNondistributableTarZstd)
    return LayerCompression::kZstd;
  return std::nullopt;
}

bool is_nondistributable_layer(std::string_view m) {
  return m == mt::kOciLayerNondistributableTar || m == mt::kOciLayerNondistributableTarGzip ||
         m == mt::kOciLayerNondistributableTarZstd || m == mt::kDockerForeignLayerTar ||
         m == mt::kDockerForeignLayerTarGzip;
}

bool is_manifest_media_type(std::string_view m) {
  return m == mt::kOciManifest || m == mt::kDockerManifest;
}

bool is_index_media_type(std::string_view m) {
  return m == mt::kOciIndex || m == mt::kDockerManifestList;
}

bool is_image_config_media_type(std::string_view m) {
  return m == mt::kOciConfig || m == mt::kDockerConfig;
}

Result<std::variant<Manifest, Index>> parse_manifest(std::string_view bytes,
                                                     std::string_view content_type_hint) {
  auto r = parse_manifest_impl(bytes, content_type_hint);
  if (!r.ok()) return Error(r.error().code(), "invalid manifest: " + r.error().message());
  return r;
}

Result<Descriptor> select_platform(const Index& index, const Platform& wanted) {
  std::vector<const Descriptor*> candidates;
  for (const Descriptor& d : index.manifests)
    if (is_manifest_media_type(d.media_type)) candidates.push_back(&d);

  for (const Platform& p : compatible_platforms(wanted)) {
    for (const Descriptor* d : candidates)
      if (d->platform && normalize(*d->platform) == p) return *d;
  }
  for (const Descriptor* d : candidates)
    if (d->platform && platform_matches(wanted, *d->platform)) return *d;
  // An index entry without a platform claims nothing; containerd accepts it
  // for any platform, as a last resort.
  for (const Descriptor* d : candidates)
    if (!d->platform) return *d;

  std::vector<std::string> available;
  for (const Descriptor* d : candidates) {
    // Build attestations are listed as unknown/unknown; they are not images.
    if (!d->platform || d->platform->os == "unknown") continue;
    std::string s = detail::printable(normalize(*d->platform).str());
    if (std::find(available.begin(), available.end(), s) == available.end())
      available.push_back(std::move(s));
  }
  std::string list;
  for (const std::string& s : available)
    list += (list.empty() ? "" : ", ") + s;
  return Error(ErrorCode::kNotFound, "no image for platform " + normalize(wanted).str() +
                                         "; available: " + (list.empty() ? "none" : list));
}

}  // namespace vessel::image
