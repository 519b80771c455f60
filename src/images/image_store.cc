#include "images/image_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <variant>

#include "base/strings.h"
#include "image/manifest.h"
#include "images/staging.h"
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
  if (o.credentials) {
    ro.credentials = o.credentials;
  } else {
    auto creds = registry::lookup_credentials(vessel_dir, registry::default_docker_config_dir(),
                                              ref.registry);
    if (creds.ok()) ro.credentials = *creds;
  }
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

Result<ImageStore::PruneStats> ImageStore::prune(const std::set<std::string>& in_use) {
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
    keep_snapshots.insert(r.manifest.hex() + ".root.ext4");
  }
  for (const auto& digest : in_use)
    if (auto colon = digest.find(':'); colon != std::string::npos) {
      keep_snapshots.insert(digest.substr(colon + 1) + ".ext4");
      keep_snapshots.insert(digest.substr(colon + 1) + ".root.ext4");
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
  // They are staged, not committed: only a complete image enters the store.
  detail::StagedBlobs staged(store_);
  std::mutex mu;
  auto report = [&](const PullEvent& e) {
    if (!o.progress) return;
    std::lock_guard<std::mutex> g(mu);
    o.progress(e);
  };
  auto download = [&](const image::Descriptor& d, bool is_layer) -> Status {
    if (staged.has(d.digest)) {
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
    // fetch_blob hashed and counted every byte it wrote and failed on any
    // mismatch: no need to read the blob again to hash it.
    VESSEL_TRY(store_.adopt_verified(in, d.digest, static_cast<uint64_t>(d.size)));
    staged.add(d.digest, std::move(in));
    if (is_layer) report({PullEvent::Kind::kLayerDone, d.digest, d.size, d.size});
    return ok_status();
  };
  if (auto s = download(manifest.config, false); !s.ok()) return fail(s.error().wrap("config"));
  auto config_bytes = staged.read(manifest.config.digest, image::kMaxConfigBytes);
  if (!config_bytes.ok()) return fail(config_bytes.error().wrap("config"));
  auto config = image::parse_image_config(*config_bytes);
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
  if (auto s = staged.add_bytes(fetched->bytes, fetched->digest); !s.ok()) return fail(s.error());
  if (auto s = finish_import(rec, staged); !s.ok()) return fail(s.error());
  return rec;
}

Status ImageStore::finish_import(const ImageRecord& image, detail::StagedBlobs& staged) {
  auto snap = snapshot_from(image, [&](const Digest& d) { return staged.path(d); });
  if (!snap.ok()) return snap.error();
  VESSEL_TRY(staged.commit_all());
  return record(image);
}

Status ImageStore::import_blob(int layout_fd, const image::Descriptor& d,
                               detail::StagedBlobs& staged) {
  if (staged.has(d.digest)) return ok_status();
  // The digest was parsed (hex only), so the path is a plain one; the
  // layout may come from an untrusted tar, hence no symlinks (open_beneath).
  std::string rel = "blobs/" + d.digest.algorithm() + "/" + d.digest.hex();
  auto in = detail::copy_into_ingest(store_, layout_fd, rel, static_cast<uint64_t>(d.size));
  if (!in.ok()) return in.error().wrap("blob " + d.digest.str());
  VESSEL_TRY(store_.verify(*in, d.digest, static_cast<uint64_t>(d.size)));
  staged.add(d.digest, std::move(*in));
  return ok_status();
}

Result<ImageRecord> ImageStore::import_manifest(int layout_fd, const image::Descriptor& desc,
                                                const std::vector<std::string>& names) {
  detail::StagedBlobs staged(store_);
  VESSEL_TRY(import_blob(layout_fd, desc, staged));
  VESSEL_ASSIGN_OR_RETURN(std::string bytes, staged.read(desc.digest, image::kMaxManifestBytes));
  VESSEL_ASSIGN_OR_RETURN(auto parsed, image::parse_manifest(bytes, desc.media_type));
  if (!std::holds_alternative<image::Manifest>(parsed))
    return Error(ErrorCode::kInvalidArgument, "nested indexes in a layout are not supported");
  const auto& m = std::get<image::Manifest>(parsed);
  VESSEL_TRY(import_blob(layout_fd, m.config, staged));
  ImageRecord rec{
      names.front(), desc.digest, m.config.digest, "", static_cast<uint64_t>(m.config.size), {}};
  for (const auto& l : m.layers) {
    if (!image::layer_compression(l.media_type))
      return Error(ErrorCode::kInvalidArgument,
                   "layer " + l.digest.str() + ": unsupported media type '" + l.media_type + "'");
    VESSEL_TRY(import_blob(layout_fd, l, staged));
    rec.layers.push_back(l.digest);
    rec.size += static_cast<uint64_t>(l.size);
  }
  VESSEL_ASSIGN_OR_RETURN(std::string config_bytes,
                          staged.read(m.config.digest, image::kMaxConfigBytes));
  VESSEL_ASSIGN_OR_RETURN(image::ImageConfig config, image::parse_image_config(config_bytes));
  rec.platform = config.platform().str();
  if (config.diff_ids.size() != m.layers.size())
    return Error(ErrorCode::kProtocol, "config and manifest disagree on the number of layers");
  VESSEL_TRY(finish_import(rec, staged));
  for (size_t i = 1; i < names.size(); ++i) {
    ImageRecord other = rec;
    other.name = names[i];
    VESSEL_TRY(record(other));
  }
  return rec;
}

Result<std::vector<ImageRecord>> ImageStore::load_layout(const std::string& dir,
                                                         const std::string& repository) {
  // Shared: prune() waits for loads, whose new blobs are not yet named.
  VESSEL_ASSIGN_OR_RETURN(sys::FileLock gc,
                          sys::FileLock::acquire(root_ + "/images/gc.lock", /*shared=*/true));
  VESSEL_ASSIGN_OR_RETURN(UniqueFd layout_fd, sys::open_fd(dir, O_RDONLY | O_DIRECTORY));
  VESSEL_ASSIGN_OR_RETURN(UniqueFd index_fd, detail::open_beneath(layout_fd.get(), "index.json"));
  std::string index_bytes;
  {
    char buf[1 << 16];
    while (true) {
      ssize_t n = ::read(index_fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::from_errno(errno, "read 'index.json'");
      if (n == 0) break;
      index_bytes.append(buf, static_cast<size_t>(n));
      if (index_bytes.size() > image::kMaxManifestBytes)
        return Error(ErrorCode::kProtocol, "index.json: larger than " +
                                               std::to_string(image::kMaxManifestBytes) + " bytes");
    }
  }
  auto parsed = image::parse_manifest(index_bytes, image::media_types::kOciIndex);
  if (!parsed.ok()) return parsed.error().wrap("index.json");
  auto* index = std::get_if<image::Index>(&*parsed);
  if (!index) return Error(ErrorCode::kInvalidArgument, "index.json is not an image index");
  // Names by manifest, in index order: an image saved under two names is
  // imported once.
  std::vector<std::pair<image::Descriptor, std::vector<std::string>>> todo;
  for (const auto& desc : index->manifests) {
    // Docker (25+) and containerd write the full name here and only the tag
    // in ref.name; skopeo and umoci write ref.name alone.
    std::string name;
    if (auto full = desc.annotations.find("io.containerd.image.name");
        full != desc.annotations.end()) {
      name = full->second;
    } else if (auto ann = desc.annotations.find("org.opencontainers.image.ref.name");
               ann != desc.annotations.end()) {
      name = ann->second;
      bool full_ref = name.find('/') != std::string::npos || name.find('@') != std::string::npos;
      if (!full_ref) {
        if (repository.empty())
          return Error(ErrorCode::kInvalidArgument,
                       "image tagged '" + name + "' has no repository name");
        name = repository + ":" + name;
      }
    } else if (!repository.empty() && image::is_manifest_media_type(desc.media_type)) {
      name = repository;  // an unnamed image (skopeo copy to oci-archive:FILE), named by the user
    } else {
      continue;
    }
    auto ref = image::parse_reference(name);
    if (!ref.ok()) return ref.error();
    auto it = std::find_if(todo.begin(), todo.end(),
                           [&](const auto& t) { return t.first.digest == desc.digest; });
    if (it == todo.end())
      todo.push_back({desc, {ref->str()}});
    else
      it->second.push_back(ref->str());
  }
  std::vector<ImageRecord> out;
  for (const auto& [desc, names] : todo) {
    auto rec = import_manifest(layout_fd.get(), desc, names);
    if (!rec.ok()) {
      auto ref = image::parse_reference(names.front());
      return rec.error().wrap("image '" + (ref.ok() ? ref->familiar() : names.front()) + "'");
    }
    for (const auto& name : names) {
      ImageRecord r = *rec;
      r.name = name;
      out.push_back(std::move(r));
    }
  }
  if (out.empty()) return Error(ErrorCode::kNotFound, "no named image in the layout's index.json");
  return out;
}

namespace {

// An exclusive flock on `path` that is unlinked when released, so no lock
// file outlives its use (a failed build must leave the snapshots directory
// as it was). The classic race, a waiter locking a file its holder has
// meanwhile unlinked while a newcomer locks a fresh one, is closed by
// checking after flock(2) that the path still names the locked inode.
class PathLock {
 public:
  static Result<PathLock> acquire(const std::string& path) {
    while (true) {
      VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(path, O_RDWR | O_CREAT, 0600));
      while (::flock(fd.get(), LOCK_EX) != 0)
        if (errno != EINTR) return Error::from_errno(errno, "lock '" + path + "'");
      struct stat held, now;
      if (::fstat(fd.get(), &held) != 0) return Error::from_errno(errno, "stat '" + path + "'");
      if (::stat(path.c_str(), &now) == 0 && now.st_ino == held.st_ino && now.st_dev == held.st_dev)
        return PathLock(path, std::move(fd));
      // Unlinked (or replaced) while we waited: try again on the new file.
    }
  }
  PathLock(PathLock&&) = default;
  PathLock& operator=(PathLock&&) = delete;
  ~PathLock() {
    // Unlink before unlocking: a waiter then finds the inode gone and retries.
    if (fd_) ::unlink(path_.c_str());
  }

 private:
  PathLock(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

}  // namespace

Result<std::string> ImageStore::snapshot(const ImageRecord& image) {
  return snapshot_from(image, [&](const Digest& d) { return store_.blob_path(d); });
}

Result<std::string> ImageStore::snapshot_from(
    const ImageRecord& image, const std::function<std::string(const Digest&)>& blob_path) {
  return built_once(image, root_ + "/snapshots/" + image.manifest.hex() + ".ext4", blob_path, {});
}

Result<std::string> ImageStore::root_base(const ImageRecord& image, uint64_t room_bytes) {
  rootfs::Ext4Options o;
  o.label = "vessel-root";
  o.writable_room_bytes = room_bytes;
  return built_once(
      image, root_ + "/snapshots/" + image.manifest.hex() + ".root.ext4",
      [&](const Digest& d) { return store_.blob_path(d); }, o);
}

Result<std::string> ImageStore::built_once(const ImageRecord& image, const std::string& path,
                                           const BlobPathFn& blob_path,
                                           const rootfs::Ext4Options& options) {
  if (::access(path.c_str(), F_OK) == 0) return path;
  // One builder per file; a second waits and then finds it done.
  VESSEL_ASSIGN_OR_RETURN(PathLock lock, PathLock::acquire(path + ".lock"));
  if (::access(path.c_str(), F_OK) == 0) return path;
  VESSEL_TRY(build_snapshot(image, path, blob_path, options));
  return path;
}

Status ImageStore::build_snapshot(const ImageRecord& image, const std::string& path,
                                  const std::function<std::string(const Digest&)>& blob_path,
                                  const rootfs::Ext4Options& options) {
  VESSEL_ASSIGN_OR_RETURN(
      std::string dir,
      sys::make_temp_dir(root_ + "/tmp", "unpack-" + std::to_string(::getpid()) + "-"));
  Status s;
  for (const auto& layer : image.layers) {
    rootfs::ApplyOptions ao;
    ao.display_name = layer.str();
    auto r = rootfs::apply_layer_file(blob_path(layer), dir, ao);
    if (!r.ok()) {
      s = r.error();
      break;
    }
  }
  if (s.ok()) s = rootfs::make_ext4_image(dir, path, options);
  if (auto rm = sys::remove_tree(dir); !rm.ok() && s.ok()) s = rm;
  return s;
}

}  // namespace vessel::images
