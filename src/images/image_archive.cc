// ImageStore's image archives: `vessel image save` (an OCI image layout as a
// tar, with a docker-save manifest.json beside it) and `vessel image load`
// of such a tar, of a directory layout, or of a `docker save` archive.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "image/config.h"
#include "image/manifest.h"
#include "images/docker_archive.h"
#include "images/image_store.h"
#include "images/staging.h"
#include "rootfs/layer.h"
#include "sys/fs.h"

namespace vessel::images {
namespace {

using image::Digest;
using nlohmann::json;

constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";
constexpr const char* kContainerdNameAnnotation = "io.containerd.image.name";

// Reads at most `limit` bytes of `rel` beneath `dir_fd` (no symlinks).
Result<std::string> read_beneath(int dir_fd, const std::string& rel, size_t limit) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, detail::open_beneath(dir_fd, rel));
  std::string out;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno(errno, "read '" + rel + "'");
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit)
      return Error(ErrorCode::kProtocol,
                   "'" + rel + "': larger than " + std::to_string(limit) + " bytes");
  }
  return out;
}

bool exists_beneath(int dir_fd, const char* name) {
  struct stat st;
  return ::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

// A layer's compression, from its first bytes (docker save writes plain
// tars, other tools may not).
Result<image::LayerCompression> sniff_compression(const std::string& path) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(path, O_RDONLY));
  unsigned char b[4] = {};
  ssize_t n = ::pread(fd.get(), b, sizeof b, 0);
  if (n < 0) return Error::from_errno(errno, "read '" + path + "'");
  if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return image::LayerCompression::kGzip;
  if (n == 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd)
    return image::LayerCompression::kZstd;
  return image::LayerCompression::kNone;
}

// sha256 of the decompressed stream of a gzip or zstd file (libarchive's
// "raw" format: the filters alone), to check it against the config's diff_id.
Result<Digest> uncompressed_digest(const std::string& path) {
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_raw(a);
  auto fail = [&](const char* what) {
    const char* msg = archive_error_string(a);
    Error e(ErrorCode::kProtocol, std::string(what) + ": " + (msg ? msg : "unreadable"));
    archive_read_free(a);
    return e;
  };
  if (archive_read_open_filename(a, path.c_str(), 1 << 16) != ARCHIVE_OK)
    return fail("decompress layer");
  archive_entry* e = nullptr;
  if (archive_read_next_header(a, &e) != ARCHIVE_OK) return fail("decompress layer");
  image::Sha256 h;
  char buf[1 << 16];
  while (true) {
    la_ssize_t n = archive_read_data(a, buf, sizeof buf);
    if (n < 0) return fail("decompress layer");
    if (n == 0) break;
    h.update(buf, static_cast<size_t>(n));
  }
  archive_read_free(a);
  return h.finish();
}

std::string_view layer_media_type(image::LayerCompression c) {
  switch (c) {
    case image::LayerCompression::kGzip:
      return image::media_types::kOciLayerTarGzip;
    case image::LayerCompression::kZstd:
      return image::media_types::kOciLayerTarZstd;
    case image::LayerCompression::kNone:
      break;
  }
  return image::media_types::kOciLayerTar;
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// What a file's name says its digest is: "<hex>.json", "<hex>/layer.tar"
// (old docker save) or "blobs/sha256/<hex>"; nullopt when it says nothing.
std::optional<std::string> hex_in_name(const std::string& rel) {
  std::string base = rel.substr(rel.rfind('/') + 1);
  if (base.ends_with(".json")) base.resize(base.size() - 5);
  if (is_hex64(base)) return base;
  return std::nullopt;
}

}  // namespace

// --- load ----------------------------------------------------------------

Result<std::vector<ImageRecord>> ImageStore::load_archive(int tar_fd, const std::string& display,
                                                          const std::string& repository) {
  VESSEL_ASSIGN_OR_RETURN(
      std::string dir,
      sys::make_temp_dir(root_ + "/tmp", "unpack-" + std::to_string(::getpid()) + "-"));
  // The archive is untrusted: unpacked with the layer code (openat2
  // RESOLVE_BENEATH, no symlink followed); its files are then opened the same way.
  rootfs::ApplyOptions ao;
  ao.display_name = display;
  ao.preserve_ownership = false;
  Result<std::vector<ImageRecord>> r = std::vector<ImageRecord>{};
  if (auto applied = rootfs::apply_layer(tar_fd, dir, ao); !applied.ok())
    r = applied.error();
  else
    r = load_dir(dir, repository);
  (void)sys::remove_tree(dir);
  return r;
}

Result<std::vector<ImageRecord>> ImageStore::load_dir(const std::string& dir,
                                                      const std::string& repository) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(dir, O_RDONLY | O_DIRECTORY));
  // Docker 25+ writes both; the OCI index is the richer description.
  if (exists_beneath(fd.get(), "index.json")) return load_layout(dir, repository);
  if (exists_beneath(fd.get(), "manifest.json")) return load_docker_archive(fd.get(), repository);
  return Error(ErrorCode::kInvalidArgument,
               "neither an OCI image layout nor a docker save archive: no index.json or "
               "manifest.json");
}

Result<std::vector<ImageRecord>> ImageStore::load_docker_archive(int dir_fd,
                                                                 const std::string& repository) {
  VESSEL_ASSIGN_OR_RETURN(sys::FileLock gc,
                          sys::FileLock::acquire(root_ + "/images/gc.lock", /*shared=*/true));
  VESSEL_ASSIGN_OR_RETURN(std::string manifest_json,
                          read_beneath(dir_fd, "manifest.json", kMaxDockerArchiveManifestBytes));
  VESSEL_ASSIGN_OR_RETURN(auto entries, parse_docker_archive_manifest(manifest_json));
  std::vector<ImageRecord> out;
  for (size_t i = 0; i < entries.size(); ++i) {
    const DockerArchiveImage& entry = entries[i];
    std::string what = "manifest.json: [" + std::to_string(i) + "]";
    std::vector<std::string> names;
    for (const auto& tag : entry.repo_tags) {
      auto ref = image::parse_reference(tag);
      if (!ref.ok()) return ref.error().wrap(what + ".RepoTags");
      names.push_back(ref->str());
    }
    if (names.empty()) {
      if (repository.empty())
        return Error(ErrorCode::kInvalidArgument, what + ": image has no RepoTags");
      VESSEL_ASSIGN_OR_RETURN(image::Reference ref, image::parse_reference(repository));
      names.push_back(ref.str());
    }
    auto rec = import_docker_image(dir_fd, entry, names);
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
  return out;
}

Result<ImageRecord> ImageStore::import_docker_image(int dir_fd, const DockerArchiveImage& entry,
                                                    const std::vector<std::string>& names) {
  detail::StagedBlobs staged(store_);
  VESSEL_ASSIGN_OR_RETURN(std::string config_bytes,
                          read_beneath(dir_fd, entry.config, image::kMaxConfigBytes));
  Digest config_digest = Digest::of(config_bytes);
  if (auto hex = hex_in_name(entry.config); hex && *hex != config_digest.hex())
    return Error(ErrorCode::kProtocol, "config '" + entry.config + "': digest mismatch (expected " +
                                           "sha256:" + *hex + ", got " + config_digest.str() + ")");
  auto config = image::parse_image_config(config_bytes);
  if (!config.ok()) return config.error().wrap("config '" + entry.config + "'");
  if (config->diff_ids.size() != entry.layers.size())
    return Error(ErrorCode::kProtocol, "config lists " + std::to_string(config->diff_ids.size()) +
                                           " layers, manifest.json " +
                                           std::to_string(entry.layers.size()));
  VESSEL_TRY(staged.add_bytes(config_bytes, config_digest));

  json layers = json::array();
  // The manifest digest is known once the manifest is written, below.
  ImageRecord rec{names.front(),       config_digest,
                  config_digest,       config->platform().str(),
                  config_bytes.size(), {}};
  for (size_t i = 0; i < entry.layers.size(); ++i) {
    const std::string& rel = entry.layers[i];
    auto fail = [&](const Error& e) { return e.wrap("layer '" + rel + "'"); };
    auto in =
        detail::copy_into_ingest(store_, dir_fd, rel, static_cast<uint64_t>(image::kMaxBlobSize));
    if (!in.ok()) return fail(in.error());
    Digest digest = in->content_digest();
    uint64_t size = in->bytes();
    // The config's diff_id is the digest of the uncompressed layer: it
    // verifies the layer whether or not the archive names files by digest.
    auto compression = sniff_compression(in->path());
    if (!compression.ok()) return fail(compression.error());
    Digest uncompressed = digest;
    if (*compression != image::LayerCompression::kNone) {
      auto u = uncompressed_digest(in->path());
      if (!u.ok()) return fail(u.error());
      uncompressed = *u;
    }
    if (uncompressed != config->diff_ids[i])
      return fail(Error(ErrorCode::kProtocol, "digest mismatch (the config's diff_id is " +
                                                  config->diff_ids[i].str() + ", got " +
                                                  uncompressed.str() + ")"));
    layers.push_back({{"mediaType", std::string(layer_media_type(*compression))},
                      {"digest", digest.str()},
                      {"size", size}});
    staged.add(digest, std::move(*in));
    rec.layers.push_back(digest);
    rec.size += size;
  }
  json manifest = {
      {"schemaVersion", 2},
      {"mediaType", std::string(image::media_types::kOciManifest)},
      {"config",
       {{"mediaType", std::string(image::media_types::kOciConfig)},
        {"digest", config_digest.str()},
        {"size", config_bytes.size()}}},
      {"layers", layers},
  };
  std::string manifest_bytes = manifest.dump();
  rec.manifest = Digest::of(manifest_bytes);
  VESSEL_TRY(staged.add_bytes(manifest_bytes, rec.manifest));
  VESSEL_TRY(finish_import(rec, staged));
  for (size_t i = 1; i < names.size(); ++i) {
    ImageRecord other = rec;
    other.name = names[i];
    VESSEL_TRY(record(other));
  }
  return rec;
}

// --- save ----------------------------------------------------------------

namespace {

class TarWriter {
 public:
  explicit TarWriter(int fd) : a_(archive_write_new()) {
    archive_write_set_format_pax_restricted(a_);
    // Stdout may be a pipe: no padding of the last block to 10 KiB needed,
    // but tar readers expect whole 512-byte records.
    archive_write_set_bytes_in_last_block(a_, 1);
    open_ = archive_write_open_fd(a_, fd) == ARCHIVE_OK;
  }
  ~TarWriter() { archive_write_free(a_); }

  Status error(const std::string& what) {
    const char* msg = archive_error_string(a_);
    int err = archive_errno(a_);
    std::string text = what + ": " + (msg ? msg : "write failed");
    return err > 0 ? Error::from_errno(err, text) : Error(ErrorCode::kInternal, text);
  }
  Status ok() { return open_ ? ok_status() : error("start the archive"); }

  Status dir(const std::string& name) {
    archive_entry* e = entry(name, AE_IFDIR, 0755, 0);
    int r = archive_write_header(a_, e);
    archive_entry_free(e);
    return r == ARCHIVE_OK ? ok_status() : error("write '" + name + "'");
  }
  Status file(const std::string& name, std::string_view data) {
    archive_entry* e = entry(name, AE_IFREG, 0644, data.size());
    int r = archive_write_header(a_, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK) return error("write '" + name + "'");
    if (!data.empty() && archive_write_data(a_, data.data(), data.size()) < 0)
      return error("write '" + name + "'");
    return ok_status();
  }
  Status copy(const std::string& name, const std::string& path) {
    VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(path, O_RDONLY));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return Error::from_errno(errno, "stat '" + path + "'");
    archive_entry* e = entry(name, AE_IFREG, 0444, static_cast<uint64_t>(st.st_size));
    int r = archive_write_header(a_, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK) return error("write '" + name + "'");
    char buf[1 << 16];
    int64_t left = st.st_size;
    while (left > 0) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::from_errno(errno, "read '" + path + "'");
      if (n == 0) return Error(ErrorCode::kInternal, "'" + path + "' shrank while saved");
      n = std::min<ssize_t>(n, left);
      if (archive_write_data(a_, buf, static_cast<size_t>(n)) < 0)
        return error("write '" + name + "'");
      left -= n;
    }
    return ok_status();
  }
  Status close() {
    return archive_write_close(a_) == ARCHIVE_OK ? ok_status() : error("finish the archive");
  }

 private:
  // Fixed owner and mtime: saving the same images twice gives the same bytes.
  archive_entry* entry(const std::string& name, mode_t type, mode_t perm, uint64_t size) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_size(e, static_cast<la_int64_t>(size));
    archive_entry_set_mtime(e, 0, 0);
    return e;
  }
  archive* a_;
  bool open_ = false;
};

}  // namespace

Status ImageStore::save(const std::vector<ImageRecord>& images, int fd) const {
  // Everything is read before the first byte is written, so that a missing
  // blob fails the save before it has produced half an archive.
  json index_entries = json::array(), docker_entries = json::array();
  std::vector<Digest> blobs;
  std::set<std::string> seen;
  auto add_blob = [&](const Digest& d) -> Status {
    if (!store_.has(d))
      return Error(ErrorCode::kNotFound, "blob " + d.str() + " is missing from the store");
    if (seen.insert(d.str()).second) blobs.push_back(d);
    return ok_status();
  };
  std::map<std::string, size_t> docker_by_manifest;  // manifest digest -> docker_entries index
  for (const auto& rec : images) {
    VESSEL_ASSIGN_OR_RETURN(std::string bytes, manifest_bytes(rec));
    VESSEL_ASSIGN_OR_RETURN(auto parsed, image::parse_manifest(bytes, ""));
    auto* m = std::get_if<image::Manifest>(&parsed);
    if (!m) return Error(ErrorCode::kProtocol, "image '" + rec.name + "': not an image manifest");
    VESSEL_TRY(add_blob(rec.manifest));
    VESSEL_TRY(add_blob(m->config.digest));
    for (const auto& l : m->layers)
      VESSEL_TRY(add_blob(l.digest));

    VESSEL_ASSIGN_OR_RETURN(image::Reference ref, image::parse_reference(rec.name));
    json ann = {{kContainerdNameAnnotation, rec.name}};
    if (!ref.tag.empty()) ann[kRefNameAnnotation] = ref.tag;
    json entry = {{"mediaType", m->media_type},
                  {"digest", rec.manifest.str()},
                  {"size", bytes.size()},
                  {"annotations", ann}};
    if (auto p = image::parse_platform(rec.platform); p.ok()) {
      entry["platform"] = {{"os", p->os}, {"architecture", p->architecture}};
      if (!p->variant.empty()) entry["platform"]["variant"] = p->variant;
    }
    index_entries.push_back(entry);

    auto it = docker_by_manifest.find(rec.manifest.str());
    if (it == docker_by_manifest.end()) {
      json layers = json::array();
      for (const auto& l : m->layers)
        layers.push_back("blobs/sha256/" + l.digest.hex());
      docker_entries.push_back({{"Config", "blobs/sha256/" + m->config.digest.hex()},
                                {"RepoTags", json::array()},
                                {"Layers", layers}});
      it = docker_by_manifest.emplace(rec.manifest.str(), docker_entries.size() - 1).first;
    }
    if (!ref.tag.empty()) docker_entries[it->second]["RepoTags"].push_back(ref.familiar());
  }
  json index = {{"schemaVersion", 2},
                {"mediaType", std::string(image::media_types::kOciIndex)},
                {"manifests", index_entries}};

  TarWriter tar(fd);
  VESSEL_TRY(tar.ok());
  VESSEL_TRY(tar.file("oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  VESSEL_TRY(tar.dir("blobs"));
  VESSEL_TRY(tar.dir("blobs/sha256"));
  for (const auto& d : blobs)
    VESSEL_TRY(tar.copy("blobs/sha256/" + d.hex(), store_.blob_path(d)));
  VESSEL_TRY(tar.file("index.json", index.dump()));
  // docker load reads this one (Docker 25+ writes both files, too).
  VESSEL_TRY(tar.file("manifest.json", docker_entries.dump()));
  return tar.close();
}

Status ImageStore::save_file(const std::vector<ImageRecord>& images,
                             const std::string& path) const {
  // Written beside `path` and renamed over it: a failed save leaves no
  // truncated archive where the user expects one.
  std::string tmp = path + ".XXXXXX";
  int raw = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (raw < 0) return Error::from_errno(errno, "create '" + path + "'");
  UniqueFd fd(raw);
  Status s = save(images, fd.get());
  if (s.ok() && ::fchmod(fd.get(), 0644) != 0) s = Error::from_errno(errno, "chmod '" + tmp + "'");
  if (s.ok() && ::fsync(fd.get()) != 0) s = Error::from_errno(errno, "fsync '" + tmp + "'");
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    s = Error::from_errno(errno, "rename '" + tmp + "' to '" + path + "'");
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

}  // namespace vessel::images
