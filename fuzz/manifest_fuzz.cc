// libFuzzer target for the image model's parsers of registry-controlled
// bytes: a manifest or index (with every content-type hint a registry could
// send), an image config, and the same bytes as an image reference.
//
// Beyond "no crash, no sanitizer report" it checks and aborts when one fails:
//   - a parsed manifest/index/config respects the documented bounds (sizes,
//     counts, known layer media types);
//   - a parsed reference's str() and familiar() both parse back to an equal
//     reference;
//   - select_platform on a parsed index either returns one of its entries or
//     fails with kNotFound.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "image/config.h"
#include "image/manifest.h"
#include "image/reference.h"

namespace vessel::image {
namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_descriptor(const Descriptor& d) {
  check(d.size >= 0 && d.size <= kMaxBlobSize);
  check(d.urls.size() <= kMaxUrls && d.annotations.size() <= kMaxAnnotations);
  check(Digest::parse(d.digest.str()).ok());
}

void check_manifest(std::string_view bytes, std::string_view hint) {
  auto r = parse_manifest(bytes, hint);
  if (!r.ok()) {
    check(r.error().code() == ErrorCode::kProtocol);
    return;
  }
  if (const auto* m = std::get_if<Manifest>(&*r)) {
    check(is_manifest_media_type(m->media_type));
    check_descriptor(m->config);
    check(m->layers.size() <= kMaxLayers);
    for (const Descriptor& l : m->layers) {
      check_descriptor(l);
      check(layer_compression(l.media_type).has_value());
    }
    return;
  }
  const Index& x = std::get<Index>(*r);
  check(is_index_media_type(x.media_type));
  check(x.manifests.size() <= kMaxIndexManifests);
  for (const Descriptor& d : x.manifests)
    check_descriptor(d);
  for (const char* want : {"linux/amd64", "linux/arm64", "linux/arm/v7"}) {
    auto d = select_platform(x, *parse_platform(want));
    if (!d.ok()) {
      check(d.error().code() == ErrorCode::kNotFound);
      continue;
    }
    check(is_manifest_media_type(d->media_type));
  }
}

void check_config(std::string_view bytes) {
  auto r = parse_image_config(bytes);
  if (!r.ok()) {
    check(r.error().code() == ErrorCode::kProtocol);
    return;
  }
  check(!r->os.empty() && !r->architecture.empty());
  check(r->diff_ids.size() <= kMaxDiffIds);
  check(r->config.env.size() <= kMaxConfigListEntries);
  (void)r->platform();
}

void check_reference(std::string_view s) {
  auto r = parse_reference(s);
  if (!r.ok()) {
    check(r.error().code() == ErrorCode::kInvalidArgument);
    return;
  }
  check(r->name().size() <= kMaxNameLength);
  check(!r->tag.empty() || r->digest.has_value());
  auto canonical = parse_reference(r->str());
  check(canonical.ok() && *canonical == *r);
  auto familiar = parse_reference(r->familiar());
  check(familiar.ok() && *familiar == *r);
}

void check_platform(std::string_view s) {
  auto p = parse_platform(s);
  if (!p.ok()) return;
  check(normalize(*p) == *p);
  check(platform_matches(*p, *p));
}

}  // namespace
}  // namespace vessel::image

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel::image;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (std::string_view hint :
       {std::string_view(), media_types::kOciManifest, media_types::kOciIndex,
        media_types::kDockerManifest, media_types::kDockerManifestList,
        std::string_view("application/json"), media_types::kDockerSchema1SignedManifest})
    check_manifest(bytes, hint);
  check_config(bytes);
  // References and platforms are short; skip the expensive re-parses on
  // large inputs that cannot be valid anyway.
  if (size <= 1024) {
    check_reference(bytes);
    check_platform(bytes);
  }
  return 0;
}
