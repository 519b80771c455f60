// Docker-shaped JSON views of local images, built here once for every front
// end: `vessel image inspect` and the Docker Engine API (api/) render the
// same objects.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "images/image_store.h"

namespace vessel::images {

/// Docker's image object (`docker image inspect`, GET /images/{name}/json):
/// Id (the config digest), RepoTags, RepoDigests, Architecture, Os, Size,
/// Config {User, Env, Entrypoint, Cmd, WorkingDir, StopSignal, Labels,
/// ExposedPorts, Volumes} (ExposedPorts and Volumes as Docker's objects),
/// RootFS {Type, Layers (diff ids)}, plus Vessel's Name, Digest (the
/// manifest), Platform, Layers (blob digests) and Manifest. `names` are the
/// canonical names that point at the same manifest (empty: rec.name only).
/// Fails when the image's config or manifest cannot be read.
Result<nlohmann::json> inspect_view(const ImageStore& store, const ImageRecord& rec,
                                    const std::vector<std::string>& names = {});

/// Docker's image list (GET /images/json): one entry per image (config
/// digest), its names gathered in RepoTags and RepoDigests; Created (Unix
/// seconds of the config's "created", 0 when it has none), Size, Labels.
nlohmann::json list_view(const ImageStore& store, const std::vector<ImageRecord>& records);

/// Docker's image history (GET /images/{name}/history): the config's
/// history, newest first, each {Id ("<missing>" but for the newest: the
/// image's id), Created (Unix seconds), CreatedBy, Tags (the newest's:
/// `names`), Size (0: Vessel keeps no per-step sizes), Comment}.
Result<nlohmann::json> history_view(const ImageStore& store, const ImageRecord& rec,
                                    const std::vector<std::string>& names);

/// Unix seconds of an RFC 3339 time ("2024-01-02T03:04:05.123Z",
/// "...+01:00"); 0 when `text` is empty or not one.
int64_t unix_seconds(const std::string& text);

}  // namespace vessel::images
