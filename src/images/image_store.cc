#include "images/image_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <variant>

#include "base/strings.h"
#include "image/manifest.h"
#include "registry/credentials.h"
#include "rootfs/ext4.h"
#include "rootfs/layer.h"
#include "sys/fs.h"

namespace vessel::images {
namespace {

using image::Digest;
using nlohmann::json;

// Unpack directories carry their creator's pid: one whose process is gone
// was abandoned by a crash.
void remove_abandoned_unpacks(const std::string& tmp) {
  auto names = sys::list_dir(tmp);
  if (!names.ok()) return;
  for (const auto& name : *names) {
    auto parts = split(name, '-');
    if (parts.size() < 3 || parts[0] != "unpack") continue;
    if (::access(("/proc/" + parts[1]).c_str(), F_OK) == 0) continue;
    (void)sys::remove_tree(tmp + "/" + name);
  }
}

json to_json(const ImageRecord& r) {
  json layers = json::array();
  for (const auto& l : r.layers)
    layers.push_back(l.str());
  return {{"name", r.name},           {"manifest", r.manifest.str()},
          {"config", r.config.str()}, {"platform", r.platform},
          {"size", r.size},           {"layers", layers}};
}

Result<ImageRecord> from_json(const json& j) {
  auto bad = Error(ErrorCode::kProtocol, "image index: malformed entry");
  if (!j.is_object()) return bad;
  for (const char* key : {"name", "manifest", "config", "platform"})
    if (!j.contains(key) || !j[key].is_string()) return bad;
  if (!j.contains("size") || !j["size"].is_number_unsigned()) return bad;
  if (!j.contains("layers") || !j["layers"].is_array()) return bad;
  VESSEL_ASSIGN_OR_RETURN(Digest manifest, Digest::parse(j["manifest"].get<std::string>()));
  VESSEL_ASSIGN_OR_RETURN(Digest config, Digest::parse(j["config"].get<std::string>()));
  ImageRecord r{j["name"].get<std::string>(), manifest, config, j["platform"].get<std::string>(),
                j["size"].get<uint64_t>(),    {}};
  for (const auto& l : j["layers"]) {
    if (!l.is_string()) return bad;
    VESSEL_ASSIGN_OR_RETURN(Digest d, Digest::parse(l.get<std::string>()));
    r.layers.push_back(d);
  }
  return r;
}

const std::vector<std::string>& accepted_manifest_types() {
  static const std::vector<std::string> kTypes = {
      std::string(image::media_types::kOciIndex),
      std::string(image::media_types::kDockerManifestList),
      std::string(image::media_types::kOciManifest),
      std::string(image::media_types::kDockerManifest)};
  return kTypes;
}

}  // namespace

Result<ImageStore> ImageStore::open(const std::string& root) {
  for (const char* dir : {"/images", "/snapshots", "/tmp"})
    VESSEL_TRY(sys::make_dirs(root + dir, 0700));
  remove_abandoned_unpacks(root + "/tmp");
  VESSEL_ASSIGN_OR_RETURN(content::Store store, content::Store::open(root + "/content"));
  return ImageStore(root, std::move(store));
}

Result<std::vector<ImageRecord>> ImageStore::read_index() const {
  std::string path = root_ + "/images/index.json";
  if (::access(path.c_str(), F_OK) != 0) return std::vector<ImageRecord>{};
  VESSEL_ASSIGN_OR_RETURN(std::string text, sys::read_file(path, 64u << 20));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("images") || !j["images"].is_array())
    return Error(ErrorCode::kProtocol, "image index '" + path + "' is not valid");
  std::vector<ImageRecord> out;
  for (const auto& e : j["images"]) {
    VESSEL_ASSIGN_OR_RETURN(ImageRecord r, from_json(e));
    out.push_back(std::move(r));
  }
  return out;
}

Status ImageStore::record(const ImageRecord& image) {
  VESSEL_ASSIGN_OR_RETURN(sys::FileLock lock, sys::FileLock::acquire(root_ + "/images/lock"));
  VESSEL_ASSIGN_OR_RETURN(auto images, read_index());
  std::erase_if(images, [&](const ImageRecord& r) { return r.name == image.name; });
  images.push_back(image);
  json arr = json::array();
  for (const auto& r : images)
    arr.push_back(to_json(r));
  return sys::write_file_atomic(root_ + "/images/index.json", json{{"images", arr}}.dump(2), 0600);
}

Result<std::optional<ImageRecord>> ImageStore::find(const image::Reference& ref) const {
  VESSEL_ASSIGN_OR_RETURN(auto images, read_index());
  std::string name = ref.str();
  for (auto& r : images)
    if (r.name == name) return std::optional<ImageRecord>(std::move(r));
  // A digest reference matches any name whose manifest it is.
  if (ref.digest) {
    for (auto& r : images)
      if (r.manifest == *ref.digest) return std::optional<ImageRecord>(std::move(r));
  }
  return std::optional<ImageRecord>();
}

Result<std::vector<ImageRecord>> ImageStore::list() const {
  return read_index();
}

Result<image::ImageConfig> ImageStore::config(const ImageRecord& image) const {
  VESSEL_ASSIGN_OR_RETURN(std::string bytes, store_.read(image.config, image::kMaxConfigBytes));
  return image::parse_image_config(bytes);
}

namespace {

Result<registry::RegistryClient> client_for(const image::Reference& ref, const PullOptions& o,
                                            const std::string& state_root) {
  registry::RegistryOptions ro;
  ro.host = ref.registry_host();
  ro.scheme = o.scheme;
  ro.insecure_tls = o.insecure_tls;
  // `vessel registry login` stores credentials in the state root.
  std::string vessel_dir = o.credentials_dir.empty() ? state_root : o.credentials_dir;
  auto creds =
      registry::lookup_credentials(vessel_dir, registry::default_docker_config_dir(), ref.registry);
  if (creds.ok()) ro.credentials = *creds;
  return registry::RegistryClient::create(ro);
}

}  // namespace

Status ImageStore::tag(const ImageRecord& image, const image::Reference& target) {
  ImageRecord copy = image;
  copy.name = target.str();
  return record(copy);
}

Status ImageStore::remove(const image::Reference& ref) {
  VESSEL_ASSIGN_OR_RETURN(sys::FileLock lock, sys::FileLock::acquire(root_ + "/images/lock"));
  VESSEL_ASSIGN_OR_RETURN(auto images, read_index());
  std::string name = ref.str();
  size_t before = images.size();
  std::erase_if(images, [&](const ImageRecord& r) { return r.name == name; });
  if (images.size() == before)
    return Error(ErrorCode::kNotFound, "no such image: '" + ref.familiar() + "'");
  json arr = json::array();
  for (const auto& r : images)
    arr.push_back(to_json(r));
  return sys::write_file_atomic(root_ + "/images/index.json", json{{"images", arr}}.dump(2), 0600);
}

Result<ImageStore::PruneStats> ImageStore::prune() {
  VESSEL_ASSIGN_OR_RETURN(sys::FileLock gc, sys::FileLock::acquire(root_ + "/images/gc.lock"));
  VESSEL_ASSIGN_OR_RETURN(sys::FileLock lock, sys::FileLock::acquire(root_ + "/images/lock"));
  VESSEL_ASSIGN_OR_RETURN(auto images, read_index());
  std::set<std::string> keep_blobs, keep_snapshots;
  for (const auto& r : images) {
    keep_blobs.insert(r.manifest.hex());
    keep_blobs.insert(r.config.hex());
    for (const auto& l : r.layers)
      keep_blobs.insert(l.hex());
    keep_snapshots.insert(r.manifest.hex() + ".ext4");
  }
  PruneStats stats;
  VESSEL_ASSIGN_OR_RETURN(auto blobs, store_.list());
  for (const auto& d : blobs) {
    if (keep_blobs.count(d.hex())) continue;
    auto size = store_.size(d);
    VESSEL_TRY(store_.remove(d));
    ++stats.blobs;
    if (size.ok()) stats.bytes += *size;
  }
  VESSEL_ASSIGN_OR_RETURN(auto snaps, sys::list_dir(root_ + "/snapshots"));
  for (const auto& name : snaps) {
    if (keep_snapshots.count(name) || !name.ends_with(".ext4")) continue;
    std::string path = root_ + "/snapshots/" + name;
    struct stat st;
    // Allocated bytes: snapshots are sparse.
    if (::stat(path.c_str(), &st) == 0) stats.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return Error::from_errno(errno, "remove snapshot '" + path + "'");
    ++stats.snapshots;
  }
  return stats;
}

Result<std::string> ImageStore::manifest_bytes(const ImageRecord& image) const {
  return store_.read(image.manifest, image::kMaxManifestBytes);
}

Status ImageStore::push(const ImageRecord& image, const image::Reference& target,
                        const PullOptions& o) {
  auto fail = [&](const Error& e) { return e.wrap("push '" + target.familiar() + "'"); };
  auto client = client_for(target, o, root_);
  if (!client.ok()) return fail(client.error());
  auto bytes = manifest_bytes(image);
  if (!bytes.ok()) return fail(bytes.error());
  auto parsed = image::parse_manifest(*bytes, "");
  if (!parsed.ok()) return fail(parsed.error());
  const auto& m = std::get<image::Manifest>(*parsed);
  std::vector<image::Descriptor> blobs = m.layers;
  blobs.push_back(m.config);
  for (const auto& d : blobs) {
    if (o.progress) o.progress({PullEvent::Kind::kLayerStart, d.digest, 0, d.size});
    if (auto s = client->push_blob(target.repository, d.digest, store_.blob_path(d.digest));
        !s.ok())
      return fail(s.error());
    if (o.progress) o.progress({PullEvent::Kind::kLayerDone, d.digest, d.size, d.size});
  }
  std::string ref = target.digest ? target.digest->str() : target.tag;
  if (auto s = client->put_manifest(target.repository, ref, *bytes, m.media_type); !s.ok())
    return fail(s.error());
  return ok_status();
}

Result<ImageRecord> ImageStore::pull(const image::Reference& ref, const PullOptions& o) {
  auto fail = [&](const Error& e) { return e.wrap("pull '" + ref.familiar() + "'"); };
  // Shared: prune() waits for pulls, whose new blobs are not yet named.
  auto gc = sys::FileLock::acquire(root_ + "/images/gc.lock", /*shared=*/true);
  if (!gc.ok()) return fail(gc.error());
  auto client = client_for(ref, o, root_);
  if (!client.ok()) return fail(client.error());

  std::string tag_or_digest = ref.digest ? ref.digest->str() : ref.tag;
  auto fetched = client->get_manifest(ref.repository, tag_or_digest, accepted_manifest_types());
  if (!fetched.ok()) return fail(fetched.error().wrap("manifest"));
  auto parsed = image::parse_manifest(fetched->bytes, fetched->media_type);
  if (!parsed.ok()) return fail(parsed.error());
  image::Platform wanted = o.platform ? *o.platform : image::host_platform();
  std::string platform = wanted.str();
  if (auto* index = std::get_if<image::Index>(&*parsed)) {
    auto chosen = image::select_platform(*index, wanted);
    if (!chosen.ok()) return fail(chosen.error());
    if (chosen->platform) platform = chosen->platform->str();
    fetched = client->get_manifest(ref.repository, chosen->digest.str(), accepted_manifest_types());
    if (!fetched.ok()) return fail(fetched.error().wrap("manifest"));
    parsed = image::parse_manifest(fetched->bytes, fetched->media_type);
    if (!parsed.ok()) return fail(parsed.error());
    if (!std::holds_alternative<image::Manifest>(*parsed))
      return fail(Error(ErrorCode::kProtocol, "index entry is not an image manifest"));
  }
  const image::Manifest& manifest = std::get<image::Manifest>(*parsed);
  auto stored = store_.put(fetched->bytes);
  if (!stored.ok()) return fail(stored.error());
  if (o.progress) o.progress({PullEvent::Kind::kResolved, fetched->digest});

  ImageRecord rec{ref.str(),
                  fetched->digest,
                  manifest.config.digest,
                  platform,
                  static_cast<uint64_t>(manifest.config.size),
                  {}};
  for (const auto& l : manifest.layers) {
    if (image::is_nondistributable_layer(l.media_type) || !image::layer_compression(l.media_type))
      return fail(
          Error(ErrorCode::kInvalidArgument,
                "layer " + l.digest.str() + ": unsupported media type '" + l.media_type + "'"));
    rec.layers.push_back(l.digest);
    rec.size += static_cast<uint64_t>(l.size);
  }

  // Downloads: the config, then the layers the store lacks, several at once.
  std::mutex mu;
  auto report = [&](const PullEvent& e) {
    if (!o.progress) return;
    std::lock_guard<std::mutex> g(mu);
    o.progress(e);
  };
  auto download = [&](const image::Descriptor& d, bool is_layer) -> Status {
    if (store_.has(d.digest)) {
      if (is_layer) report({PullEvent::Kind::kLayerCached, d.digest, d.size, d.size});
      return ok_status();
    }
    VESSEL_ASSIGN_OR_RETURN(content::Ingest in, store_.begin());
    if (is_layer) report({PullEvent::Kind::kLayerStart, d.digest, 0, d.size});
    registry::ProgressFn progress;
    if (is_layer)
      progress = [&](int64_t n, int64_t total) {
        report({PullEvent::Kind::kLayerBytes, d.digest, n, total});
      };
    VESSEL_TRY(client->fetch_blob(ref.repository, d.digest, d.size, in.path(), progress));
    // fetch_blob verified digest and size while streaming; commit_file
    // checks again as the store's own guarantee.
    VESSEL_TRY(store_.commit_file(in, d.digest, static_cast<uint64_t>(d.size)));
    if (is_layer) report({PullEvent::Kind::kLayerDone, d.digest, d.size, d.size});
    return ok_status();
  };
  if (auto s = download(manifest.config, false); !s.ok()) return fail(s.error().wrap("config"));
  auto config = this->config(rec);
  if (!config.ok()) return fail(config.error());
  if (config->diff_ids.size() != manifest.layers.size())
    return fail(Error(ErrorCode::kProtocol,
                      "config lists " + std::to_string(config->diff_ids.size()) +
                          " layers, the manifest " + std::to_string(manifest.layers.size())));

  std::atomic<size_t> next{0};
  std::vector<std::optional<Error>> errors(manifest.layers.size());
  auto worker = [&] {
    for (size_t i = next++; i < manifest.layers.size(); i = next++) {
      Status s = download(manifest.layers[i], true);
      if (!s.ok()) errors[i] = s.error();
    }
  };
  std::vector<std::thread> threads;
  int n = std::max(
      1, std::min<int>(o.max_concurrent_downloads, static_cast<int>(manifest.layers.size())));
  for (int i = 0; i < n; ++i)
    threads.emplace_back(worker);
  for (auto& t : threads)
    t.join();
  for (size_t i = 0; i < errors.size(); ++i)
    if (errors[i]) return fail(errors[i]->wrap("layer " + manifest.layers[i].digest.str()));

  if (o.progress) o.progress({PullEvent::Kind::kUnpacking, rec.manifest});
  auto snap = snapshot(rec);
  if (!snap.ok()) return fail(snap.error());
  if (auto s = record(rec); !s.ok()) return fail(s.error());
  return rec;
}

Status ImageStore::import_blob(const std::string& layout, const Digest& d, int64_t size) {
  if (store_.has(d)) return ok_status();
  // The digest was parsed (hex only), so the path cannot leave the layout.
  std::string path = layout + "/blobs/" + d.algorithm() + "/" + d.hex();
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(path, O_RDONLY));
  VESSEL_ASSIGN_OR_RETURN(content::Ingest in, store_.begin());
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno(errno, "read '" + path + "'");
    if (n == 0) break;
    if (in.bytes() + static_cast<uint64_t>(n) > static_cast<uint64_t>(size))
      return Error(ErrorCode::kProtocol, "blob " + d.str() + ": larger than its descriptor says");
    VESSEL_TRY(in.write(buf, static_cast<size_t>(n)));
  }
  return store_.commit(in, d, static_cast<uint64_t>(size));
}

Result<ImageRecord> ImageStore::import_manifest(const std::string& layout,
                                                const image::Descriptor& desc,
                                                const std::string& name) {
  VESSEL_TRY(import_blob(layout, desc.digest, desc.size));
  VESSEL_ASSIGN_OR_RETURN(std::string bytes, store_.read(desc.digest, image::kMaxManifestBytes));
  VESSEL_ASSIGN_OR_RETURN(auto parsed, image::parse_manifest(bytes, desc.media_type));
  if (!std::holds_alternative<image::Manifest>(parsed))
    return Error(ErrorCode::kInvalidArgument, "nested indexes in a layout are not supported");
  const auto& m = std::get<image::Manifest>(parsed);
  VESSEL_TRY(import_blob(layout, m.config.digest, m.config.size));
  ImageRecord rec{name, desc.digest, m.config.digest, "", static_cast<uint64_t>(m.config.size), {}};
  for (const auto& l : m.layers) {
    if (!image::layer_compression(l.media_type))
      return Error(ErrorCode::kInvalidArgument,
                   "layer " + l.digest.str() + ": unsupported media type '" + l.media_type + "'");
    VESSEL_TRY(import_blob(layout, l.digest, l.size));
    rec.layers.push_back(l.digest);
    rec.size += static_cast<uint64_t>(l.size);
  }
  VESSEL_ASSIGN_OR_RETURN(image::ImageConfig config, this->config(rec));
  rec.platform = config.platform().str();
  if (config.diff_ids.size() != m.layers.size())
    return Error(ErrorCode::kProtocol, "config and manifest disagree on the number of layers");
  if (auto snap = snapshot(rec); !snap.ok()) return snap.error();
  VESSEL_TRY(record(rec));
  return rec;
}

Result<std::vector<ImageRecord>> ImageStore::load_layout(const std::string& dir,
                                                         const std::string& repository) {
  auto fail = [](const Error& e) { return e; };  // the caller names the input
  auto index_bytes = sys::read_file(dir + "/index.json", image::kMaxManifestBytes);
  if (!index_bytes.ok()) return fail(index_bytes.error());
  auto parsed = image::parse_manifest(*index_bytes, image::media_types::kOciIndex);
  if (!parsed.ok()) return fail(parsed.error());
  auto* index = std::get_if<image::Index>(&*parsed);
  if (!index) return fail(Error(ErrorCode::kInvalidArgument, "index.json is not an image index"));
  std::vector<ImageRecord> out;
  for (const auto& desc : index->manifests) {
    auto ann = desc.annotations.find("org.opencontainers.image.ref.name");
    if (ann == desc.annotations.end()) continue;
    std::string name = ann->second;
    bool full = name.find('/') != std::string::npos || name.find('@') != std::string::npos;
    if (!full) {
      if (repository.empty())
        return fail(Error(ErrorCode::kInvalidArgument,
                          "image tagged '" + name + "' has no repository name"));
      name = repository + ":" + name;
    }
    auto ref = image::parse_reference(name);
    if (!ref.ok()) return fail(ref.error());
    auto rec = import_manifest(dir, desc, ref->str());
    if (!rec.ok()) return fail(rec.error().wrap("image '" + ref->familiar() + "'"));
    out.push_back(std::move(*rec));
  }
  if (out.empty())
    return fail(Error(ErrorCode::kNotFound, "no named image in the layout's index.json"));
  return out;
}

Result<std::string> ImageStore::snapshot(const ImageRecord& image) {
  std::string path = root_ + "/snapshots/" + image.manifest.hex() + ".ext4";
  if (::access(path.c_str(), F_OK) == 0) return path;
  // One builder per snapshot; a second waits and then finds it done.
  VESSEL_ASSIGN_OR_RETURN(sys::FileLock lock, sys::FileLock::acquire(path + ".lock"));
  if (::access(path.c_str(), F_OK) == 0) return path;
  VESSEL_TRY(build_snapshot(image, path));
  ::unlink((path + ".lock").c_str());
  return path;
}

Status ImageStore::build_snapshot(const ImageRecord& image, const std::string& path) {
  VESSEL_ASSIGN_OR_RETURN(
      std::string dir,
      sys::make_temp_dir(root_ + "/tmp", "unpack-" + std::to_string(::getpid()) + "-"));
  Status s;
  for (const auto& layer : image.layers) {
    rootfs::ApplyOptions ao;
    ao.display_name = layer.str();
    auto r = rootfs::apply_layer_file(store_.blob_path(layer), dir, ao);
    if (!r.ok()) {
      s = r.error();
      break;
    }
  }
  if (s.ok()) s = rootfs::make_ext4_image(dir, path);
  if (auto rm = sys::remove_tree(dir); !rm.ok() && s.ok()) s = rm;
  return s;
}

}  // namespace vessel::images
