// Test helper: builds layer tars with libarchive's writer, so the tests need
// no fixture files. Header-only; used by the rootfs tests only.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace vessel::rootfs::testing {

struct TarEntry {
  std::string name;
  mode_t type = AE_IFREG;
  mode_t perm = 0644;
  std::string data;      // regular files
  std::string symlink;   // AE_IFLNK target
  std::string hardlink;  // non-empty: a hardlink to this name
  int64_t uid = 0;
  int64_t gid = 0;
  time_t mtime = 1700000000;
  unsigned dev_major = 0;
  unsigned dev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  // Non-empty: a sparse file of size data.size() whose data lies only in
  // these (offset, length) ranges.
  std::vector<std::pair<int64_t, int64_t>> sparse;
};

inline TarEntry file(std::string name, std::string data, mode_t perm = 0644) {
  TarEntry e;
  e.name = std::move(name);
  e.data = std::move(data);
  e.perm = perm;
  return e;
}
inline TarEntry dir(std::string name, mode_t perm = 0755) {
  TarEntry e;
  e.name = std::move(name);
  e.type = AE_IFDIR;
  e.perm = perm;
  return e;
}
inline TarEntry symlink(std::string name, std::string target) {
  TarEntry e;
  e.name = std::move(name);
  e.type = AE_IFLNK;
  e.perm = 0777;
  e.symlink = std::move(target);
  return e;
}
inline TarEntry hardlink(std::string name, std::string target) {
  TarEntry e;
  e.name = std::move(name);
  e.hardlink = std::move(target);
  return e;
}

enum class Compression { kNone, kGzip, kZstd };

/// Writes `entries` as a pax tar to `path`; returns false (and the reason in
/// *error) on failure.
inline bool write_tar(const std::string& path, const std::vector<TarEntry>& entries,
                      Compression compression = Compression::kNone, std::string* error = nullptr) {
  archive* a = archive_write_new();
  archive_write_set_format_pax(a);
  if (compression == Compression::kGzip) archive_write_add_filter_gzip(a);
  if (compression == Compression::kZstd) archive_write_add_filter_zstd(a);
  bool ok = archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK;
  for (const auto& t : entries) {
    if (!ok) break;
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.name.c_str());
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    archive_entry_set_mtime(e, t.mtime, 0);
    for (const auto& [k, v] : t.xattrs)
      archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    if (!t.hardlink.empty()) {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, t.perm);
      archive_entry_set_hardlink(e, t.hardlink.c_str());
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_filetype(e, t.type);
      archive_entry_set_perm(e, t.perm);
      if (t.type == AE_IFLNK) archive_entry_set_symlink(e, t.symlink.c_str());
      if (t.type == AE_IFCHR || t.type == AE_IFBLK) {
        archive_entry_set_rdevmajor(e, t.dev_major);
        archive_entry_set_rdevminor(e, t.dev_minor);
      }
      archive_entry_set_size(e, t.type == AE_IFREG ? static_cast<int64_t>(t.data.size()) : 0);
      for (const auto& [off, len] : t.sparse)
        archive_entry_sparse_add_entry(e, off, len);
    }
    ok = archive_write_header(a, e) == ARCHIVE_OK;
    if (ok && t.type == AE_IFREG && t.hardlink.empty() && !t.data.empty()) {
      // With a sparse map, the writer takes the full contents and stores
      // only the mapped ranges.
      ok = archive_write_data(a, t.data.data(), t.data.size()) ==
           static_cast<la_ssize_t>(t.data.size());
    }
    archive_entry_free(e);
  }
  if (!ok && error) *error = archive_error_string(a) ? archive_error_string(a) : "unknown";
  if (archive_write_close(a) != ARCHIVE_OK) ok = false;
  archive_write_free(a);
  return ok;
}

}  // namespace vessel::rootfs::testing
