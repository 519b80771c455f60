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
/// digest), its names gathered in RepoTags and RepoDigests; Created 0
/// (Vessel does not keep the config's creation time), Size, Labels.
nlohmann::json list_view(const ImageStore& store, const std::vector<ImageRecord>& records);

}  // namespace vessel::images
