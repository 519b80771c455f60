// libFuzzer target for the parser of a `docker save` archive's manifest.json
// (images::parse_docker_archive_manifest), which `vessel image load` runs on
// untrusted archives.
//
// Beyond "no crash, no sanitizer report" it checks and aborts when one fails:
//   - a parsed manifest respects the documented bounds (image, layer and
//     tag counts);
//   - every path it returns is relative, non-empty, within the length bound,
//     free of NUL, "..", "." and empty components (so it cannot leave the
//     archive), and normalize_archive_path accepts it unchanged.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "image/manifest.h"
#include "images/docker_archive.h"

namespace vessel::images {
namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_path(const std::string& p) {
  check(!p.empty() && p.size() <= kMaxDockerArchivePath);
  check(p.front() != '/' && p.back() != '/');
  check(p.find('\0') == std::string::npos);
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string_view comp(p.data() + start, end - start);
    check(!comp.empty() && comp != "." && comp != "..");
    start = end + 1;
  }
  auto again = normalize_archive_path(p);
  check(again.ok() && *again == p);
}

}  // namespace
}  // namespace vessel::images

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel::images;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_docker_archive_manifest(bytes);
  if (!parsed.ok()) return 0;
  check(!parsed->empty() && parsed->size() <= kMaxDockerArchiveImages);
  for (const auto& img : *parsed) {
    check_path(img.config);
    check(img.layers.size() <= vessel::image::kMaxLayers);
    check(img.repo_tags.size() <= 1000);
    for (const auto& l : img.layers)
      check_path(l);
  }
  return 0;
}
