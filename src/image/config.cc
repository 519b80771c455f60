#include "image/config.h"

#include "image/json_fields.h"
#include "image/text.h"

namespace vessel::image {
namespace {

using detail::field_error;
using detail::Json;

Status no_nul(std::string_view path, std::string_view s) {
  if (detail::has_nul(s)) return field_error(path, "contains a NUL byte");
  return ok_status();
}

Status no_nul(std::string_view path, const std::vector<std::string>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    VESSEL_TRY(no_nul(detail::index(path, i), v[i]));
  return ok_status();
}

Result<std::string> optional_string(const Json& obj, std::string_view key, std::string_view path) {
  VESSEL_ASSIGN_OR_RETURN(auto s, detail::optional_string(obj, key, path));
  return s ? std::move(*s) : std::string();
}

Result<ContainerConfig> container_config(const Json& c) {
  constexpr std::string_view kPath = "config";
  constexpr size_t kMax = kMaxConfigListEntries;
  ContainerConfig out;
  VESSEL_ASSIGN_OR_RETURN(out.user, optional_string(c, "User", kPath));
  VESSEL_TRY(no_nul("config.User", out.user));
  VESSEL_ASSIGN_OR_RETURN(out.env, detail::string_array(c, "Env", kPath, kMax));
  VESSEL_TRY(no_nul("config.Env", out.env));
  VESSEL_ASSIGN_OR_RETURN(
      out.entrypoint, detail::string_array(c, "Entrypoint", kPath, kMax, /*accept_string=*/true));
  VESSEL_TRY(no_nul("config.Entrypoint", out.entrypoint));
  VESSEL_ASSIGN_OR_RETURN(out.cmd, detail::string_array(c, "Cmd", kPath, kMax, true));
  VESSEL_TRY(no_nul("config.Cmd", out.cmd));
  VESSEL_ASSIGN_OR_RETURN(out.working_dir, optional_string(c, "WorkingDir", kPath));
  VESSEL_TRY(no_nul("config.WorkingDir", out.working_dir));
  VESSEL_ASSIGN_OR_RETURN(out.stop_signal, optional_string(c, "StopSignal", kPath));
  VESSEL_ASSIGN_OR_RETURN(out.labels, detail::string_map(c, "Labels", kPath, kMax));
  VESSEL_ASSIGN_OR_RETURN(out.exposed_ports, detail::object_keys(c, "ExposedPorts", kPath, kMax));
  VESSEL_ASSIGN_OR_RETURN(out.volumes, detail::object_keys(c, "Volumes", kPath, kMax));
  return out;
}

Result<ImageConfig> parse_image_config_impl(std::string_view bytes) {
  VESSEL_ASSIGN_OR_RETURN(Json doc, detail::parse_object(bytes, kMaxConfigBytes));
  ImageConfig ic;
  VESSEL_ASSIGN_OR_RETURN(ic.architecture, detail::require_string(doc, "architecture", ""));
  if (ic.architecture.empty()) return field_error("architecture", "empty");
  VESSEL_ASSIGN_OR_RETURN(ic.os, detail::require_string(doc, "os", ""));
  if (ic.os.empty()) return field_error("os", "empty");
  VESSEL_ASSIGN_OR_RETURN(ic.variant, optional_string(doc, "variant", ""));

  VESSEL_ASSIGN_OR_RETURN(ic.created, optional_string(doc, "created", ""));
  if (const Json* h = detail::find(doc, "history"); h && !h->is_null()) {
    if (!h->is_array()) return field_error("history", "expected an array");
    if (h->size() > kMaxConfigListEntries)
      return field_error("history",
                         "more than " + std::to_string(kMaxConfigListEntries) + " entries");
    for (size_t i = 0; i < h->size(); ++i) {
      std::string path = detail::index("history", i);
      const Json& e = (*h)[i];
      if (!e.is_object()) return field_error(path, "expected an object");
      HistoryEntry entry;
      VESSEL_ASSIGN_OR_RETURN(entry.created, optional_string(e, "created", path));
      VESSEL_ASSIGN_OR_RETURN(entry.created_by, optional_string(e, "created_by", path));
      VESSEL_ASSIGN_OR_RETURN(entry.comment, optional_string(e, "comment", path));
      if (const Json* el = detail::find(e, "empty_layer"); el && !el->is_null()) {
        if (!el->is_boolean())
          return field_error(detail::join(path, "empty_layer"), "expected a boolean");
        entry.empty_layer = el->get<bool>();
      }
      ic.history.push_back(std::move(entry));
    }
  }

  if (const Json* c = detail::find(doc, "config")) {
    if (!c->is_object()) return field_error("config", "expected an object");
    VESSEL_ASSIGN_OR_RETURN(ic.config, container_config(*c));
  }

  VESSEL_ASSIGN_OR_RETURN(const Json* rootfs, detail::require_object(doc, "rootfs", ""));
  VESSEL_ASSIGN_OR_RETURN(std::string type, detail::require_string(*rootfs, "type", "rootfs"));
  if (type != "layers")
    return field_error("rootfs.type", "expected 'layers', got '" + detail::printable(type) + "'");
  const Json* ids = detail::find(*rootfs, "diff_ids");
  if (!ids) return field_error("rootfs.diff_ids", "missing");
  if (!ids->is_array()) return field_error("rootfs.diff_ids", "expected an array");
  if (ids->size() > kMaxDiffIds)
    return field_error("rootfs.diff_ids", "more than " + std::to_string(kMaxDiffIds) + " entries");
  ic.diff_ids.reserve(ids->size());
  for (size_t i = 0; i < ids->size(); ++i) {
    VESSEL_ASSIGN_OR_RETURN(Digest d,
                            detail::digest_value((*ids)[i], detail::index("rootfs.diff_ids", i)));
    ic.diff_ids.push_back(std::move(d));
  }
  return ic;
}

}  // namespace

Platform ImageConfig::platform() const {
  return normalize(Platform{os, architecture, variant});
}

Result<ImageConfig> parse_image_config(std::string_view bytes) {
  auto r = parse_image_config_impl(bytes);
  if (!r.ok()) return Error(r.error().code(), "invalid image config: " + r.error().message());
  return r;
}

}  // namespace vessel::image
