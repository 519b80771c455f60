// libarchive, opened on demand (base/library.h): these definitions stand in
// for the library's own, so the code that uses it calls libarchive's API as
// it is declared in <archive.h> and <archive_entry.h>, and nothing links
// libarchive.so. The first call opens it and binds every function below.
// Why: docs/architecture.md, "Libraries opened on demand". Only the
// functions Vessel calls are here: a new one fails to link until it is
// added (the list is kept sorted).
#include <archive.h>
#include <archive_entry.h>

#include <cstdio>
#include <cstdlib>

#include "base/library.h"

namespace vessel {
namespace {

// Every function below, once: the table's members and what binds them.
#define VESSEL_ARCHIVE_FUNCTIONS(X)          \
  X(archive_entry_atime)                     \
  X(archive_entry_atime_is_set)              \
  X(archive_entry_atime_nsec)                \
  X(archive_entry_copy_sourcepath)           \
  X(archive_entry_filetype)                  \
  X(archive_entry_free)                      \
  X(archive_entry_gid)                       \
  X(archive_entry_hardlink)                  \
  X(archive_entry_linkify)                   \
  X(archive_entry_linkresolver_free)         \
  X(archive_entry_linkresolver_new)          \
  X(archive_entry_linkresolver_set_strategy) \
  X(archive_entry_mode)                      \
  X(archive_entry_mtime)                     \
  X(archive_entry_mtime_is_set)              \
  X(archive_entry_mtime_nsec)                \
  X(archive_entry_new)                       \
  X(archive_entry_pathname)                  \
  X(archive_entry_pathname_utf8)             \
  X(archive_entry_perm)                      \
  X(archive_entry_rdevmajor)                 \
  X(archive_entry_rdevminor)                 \
  X(archive_entry_set_filetype)              \
  X(archive_entry_set_gid)                   \
  X(archive_entry_set_gname)                 \
  X(archive_entry_set_hardlink)              \
  X(archive_entry_set_mtime)                 \
  X(archive_entry_set_pathname)              \
  X(archive_entry_set_perm)                  \
  X(archive_entry_set_rdevmajor)             \
  X(archive_entry_set_rdevminor)             \
  X(archive_entry_set_size)                  \
  X(archive_entry_set_symlink)               \
  X(archive_entry_set_uid)                   \
  X(archive_entry_set_uname)                 \
  X(archive_entry_size)                      \
  X(archive_entry_size_is_set)               \
  X(archive_entry_sourcepath)                \
  X(archive_entry_sparse_add_entry)          \
  X(archive_entry_symlink)                   \
  X(archive_entry_symlink_utf8)              \
  X(archive_entry_uid)                       \
  X(archive_entry_xattr_add_entry)           \
  X(archive_entry_xattr_next)                \
  X(archive_entry_xattr_reset)               \
  X(archive_errno)                           \
  X(archive_error_string)                    \
  X(archive_format)                          \
  X(archive_read_data)                       \
  X(archive_read_data_block)                 \
  X(archive_read_disk_descend)               \
  X(archive_read_disk_new)                   \
  X(archive_read_disk_open)                  \
  X(archive_read_disk_set_behavior)          \
  X(archive_read_disk_set_symlink_hybrid)    \
  X(archive_read_disk_set_symlink_physical)  \
  X(archive_read_free)                       \
  X(archive_read_new)                        \
  X(archive_read_next_header)                \
  X(archive_read_next_header2)               \
  X(archive_read_open_fd)                    \
  X(archive_read_open_filename)              \
  X(archive_read_open_memory)                \
  X(archive_read_support_filter_all)         \
  X(archive_read_support_filter_gzip)        \
  X(archive_read_support_filter_zstd)        \
  X(archive_read_support_format_raw)         \
  X(archive_read_support_format_tar)         \
  X(archive_write_add_filter_gzip)           \
  X(archive_write_add_filter_zstd)           \
  X(archive_write_close)                     \
  X(archive_write_data)                      \
  X(archive_write_free)                      \
  X(archive_write_header)                    \
  X(archive_write_new)                       \
  X(archive_write_open)                      \
  X(archive_write_open_fd)                   \
  X(archive_write_open_filename)             \
  X(archive_write_set_bytes_in_last_block)   \
  X(archive_write_set_format_pax)            \
  X(archive_write_set_format_pax_restricted)

struct ArchiveApi {
#define VESSEL_ARCHIVE_MEMBER(name) decltype(&::name) name;
  VESSEL_ARCHIVE_FUNCTIONS(VESSEL_ARCHIVE_MEMBER)
#undef VESSEL_ARCHIVE_MEMBER
};

ArchiveApi load() {
  ArchiveApi api;
  Library lib("libarchive.so.13", "libarchive13");
#define VESSEL_ARCHIVE_BIND(name) lib.bind(api.name, #name);
  VESSEL_ARCHIVE_FUNCTIONS(VESSEL_ARCHIVE_BIND)
#undef VESSEL_ARCHIVE_BIND
  if (Status s = lib.status(); !s.ok()) {
    // No way to return an error through libarchive's own API: say why and stop.
    std::fprintf(stderr, "vessel: %s\n", s.error().to_string().c_str());
    std::abort();
  }
  return api;
}

const ArchiveApi& api() {
  static const ArchiveApi loaded = load();
  return loaded;
}

}  // namespace
}  // namespace vessel

using vessel::api;

extern "C" {

time_t archive_entry_atime(struct archive_entry* a0) {
  return api().archive_entry_atime(a0);
}
int archive_entry_atime_is_set(struct archive_entry* a0) {
  return api().archive_entry_atime_is_set(a0);
}
long archive_entry_atime_nsec(struct archive_entry* a0) {
  return api().archive_entry_atime_nsec(a0);
}
void archive_entry_copy_sourcepath(struct archive_entry* a0, const char* a1) {
  return api().archive_entry_copy_sourcepath(a0, a1);
}
mode_t archive_entry_filetype(struct archive_entry* a0) {
  return api().archive_entry_filetype(a0);
}
void archive_entry_free(struct archive_entry* a0) {
  return api().archive_entry_free(a0);
}
la_int64_t archive_entry_gid(struct archive_entry* a0) {
  return api().archive_entry_gid(a0);
}
const char* archive_entry_hardlink(struct archive_entry* a0) {
  return api().archive_entry_hardlink(a0);
}
void archive_entry_linkify(struct archive_entry_linkresolver* a0, struct archive_entry** a1,
                           struct archive_entry** a2) {
  return api().archive_entry_linkify(a0, a1, a2);
}
void archive_entry_linkresolver_free(struct archive_entry_linkresolver* a0) {
  return api().archive_entry_linkresolver_free(a0);
}
struct archive_entry_linkresolver* archive_entry_linkresolver_new() {
  return api().archive_entry_linkresolver_new();
}
void archive_entry_linkresolver_set_strategy(struct archive_entry_linkresolver* a0, int a1) {
  return api().archive_entry_linkresolver_set_strategy(a0, a1);
}
mode_t archive_entry_mode(struct archive_entry* a0) {
  return api().archive_entry_mode(a0);
}
time_t archive_entry_mtime(struct archive_entry* a0) {
  return api().archive_entry_mtime(a0);
}
int archive_entry_mtime_is_set(struct archive_entry* a0) {
  return api().archive_entry_mtime_is_set(a0);
}
long archive_entry_mtime_nsec(struct archive_entry* a0) {
  return api().archive_entry_mtime_nsec(a0);
}
struct archive_entry* archive_entry_new() {
  return api().archive_entry_new();
}
const char* archive_entry_pathname(struct archive_entry* a0) {
  return api().archive_entry_pathname(a0);
}
const char* archive_entry_pathname_utf8(struct archive_entry* a0) {
  return api().archive_entry_pathname_utf8(a0);
}
mode_t archive_entry_perm(struct archive_entry* a0) {
  return api().archive_entry_perm(a0);
}
dev_t archive_entry_rdevmajor(struct archive_entry* a0) {
  return api().archive_entry_rdevmajor(a0);
}
dev_t archive_entry_rdevminor(struct archive_entry* a0) {
  return api().archive_entry_rdevminor(a0);
}
void archive_entry_set_filetype(struct archive_entry* a0, unsigned int a1) {
  return api().archive_entry_set_filetype(a0, a1);
}
void archive_entry_set_gid(struct archive_entry* a0, la_int64_t a1) {
  return api().archive_entry_set_gid(a0, a1);
}
void archive_entry_set_gname(struct archive_entry* a0, const char* a1) {
  return api().archive_entry_set_gname(a0, a1);
}
void archive_entry_set_hardlink(struct archive_entry* a0, const char* a1) {
  return api().archive_entry_set_hardlink(a0, a1);
}
void archive_entry_set_mtime(struct archive_entry* a0, time_t a1, long a2) {
  return api().archive_entry_set_mtime(a0, a1, a2);
}
void archive_entry_set_pathname(struct archive_entry* a0, const char* a1) {
  return api().archive_entry_set_pathname(a0, a1);
}
void archive_entry_set_perm(struct archive_entry* a0, mode_t a1) {
  return api().archive_entry_set_perm(a0, a1);
}
void archive_entry_set_rdevmajor(struct archive_entry* a0, dev_t a1) {
  return api().archive_entry_set_rdevmajor(a0, a1);
}
void archive_entry_set_rdevminor(struct archive_entry* a0, dev_t a1) {
  return api().archive_entry_set_rdevminor(a0, a1);
}
void archive_entry_set_size(struct archive_entry* a0, la_int64_t a1) {
  return api().archive_entry_set_size(a0, a1);
}
void archive_entry_set_symlink(struct archive_entry* a0, const char* a1) {
  return api().archive_entry_set_symlink(a0, a1);
}
void archive_entry_set_uid(struct archive_entry* a0, la_int64_t a1) {
  return api().archive_entry_set_uid(a0, a1);
}
void archive_entry_set_uname(struct archive_entry* a0, const char* a1) {
  return api().archive_entry_set_uname(a0, a1);
}
la_int64_t archive_entry_size(struct archive_entry* a0) {
  return api().archive_entry_size(a0);
}
int archive_entry_size_is_set(struct archive_entry* a0) {
  return api().archive_entry_size_is_set(a0);
}
const char* archive_entry_sourcepath(struct archive_entry* a0) {
  return api().archive_entry_sourcepath(a0);
}
void archive_entry_sparse_add_entry(struct archive_entry* a0, la_int64_t a1, la_int64_t a2) {
  return api().archive_entry_sparse_add_entry(a0, a1, a2);
}
const char* archive_entry_symlink(struct archive_entry* a0) {
  return api().archive_entry_symlink(a0);
}
const char* archive_entry_symlink_utf8(struct archive_entry* a0) {
  return api().archive_entry_symlink_utf8(a0);
}
la_int64_t archive_entry_uid(struct archive_entry* a0) {
  return api().archive_entry_uid(a0);
}
void archive_entry_xattr_add_entry(struct archive_entry* a0, const char* a1, const void* a2,
                                   size_t a3) {
  return api().archive_entry_xattr_add_entry(a0, a1, a2, a3);
}
int archive_entry_xattr_next(struct archive_entry* a0, const char** a1, const void** a2,
                             size_t* a3) {
  return api().archive_entry_xattr_next(a0, a1, a2, a3);
}
int archive_entry_xattr_reset(struct archive_entry* a0) {
  return api().archive_entry_xattr_reset(a0);
}
int archive_errno(struct archive* a0) {
  return api().archive_errno(a0);
}
const char* archive_error_string(struct archive* a0) {
  return api().archive_error_string(a0);
}
int archive_format(struct archive* a0) {
  return api().archive_format(a0);
}
la_ssize_t archive_read_data(struct archive* a0, void* a1, size_t a2) {
  return api().archive_read_data(a0, a1, a2);
}
int archive_read_data_block(struct archive* a0, const void** a1, size_t* a2, la_int64_t* a3) {
  return api().archive_read_data_block(a0, a1, a2, a3);
}
int archive_read_disk_descend(struct archive* a0) {
  return api().archive_read_disk_descend(a0);
}
struct archive* archive_read_disk_new() {
  return api().archive_read_disk_new();
}
int archive_read_disk_open(struct archive* a0, const char* a1) {
  return api().archive_read_disk_open(a0, a1);
}
int archive_read_disk_set_behavior(struct archive* a0, int a1) {
  return api().archive_read_disk_set_behavior(a0, a1);
}
int archive_read_disk_set_symlink_hybrid(struct archive* a0) {
  return api().archive_read_disk_set_symlink_hybrid(a0);
}
int archive_read_disk_set_symlink_physical(struct archive* a0) {
  return api().archive_read_disk_set_symlink_physical(a0);
}
int archive_read_free(struct archive* a0) {
  return api().archive_read_free(a0);
}
struct archive* archive_read_new() {
  return api().archive_read_new();
}
int archive_read_next_header(struct archive* a0, struct archive_entry** a1) {
  return api().archive_read_next_header(a0, a1);
}
int archive_read_next_header2(struct archive* a0, struct archive_entry* a1) {
  return api().archive_read_next_header2(a0, a1);
}
int archive_read_open_fd(struct archive* a0, int a1, size_t a2) {
  return api().archive_read_open_fd(a0, a1, a2);
}
int archive_read_open_filename(struct archive* a0, const char* a1, size_t a2) {
  return api().archive_read_open_filename(a0, a1, a2);
}
int archive_read_open_memory(struct archive* a0, const void* a1, size_t a2) {
  return api().archive_read_open_memory(a0, a1, a2);
}
int archive_read_support_filter_all(struct archive* a0) {
  return api().archive_read_support_filter_all(a0);
}
int archive_read_support_filter_gzip(struct archive* a0) {
  return api().archive_read_support_filter_gzip(a0);
}
int archive_read_support_filter_zstd(struct archive* a0) {
  return api().archive_read_support_filter_zstd(a0);
}
int archive_read_support_format_raw(struct archive* a0) {
  return api().archive_read_support_format_raw(a0);
}
int archive_read_support_format_tar(struct archive* a0) {
  return api().archive_read_support_format_tar(a0);
}
int archive_write_add_filter_gzip(struct archive* a0) {
  return api().archive_write_add_filter_gzip(a0);
}
int archive_write_add_filter_zstd(struct archive* a0) {
  return api().archive_write_add_filter_zstd(a0);
}
int archive_write_close(struct archive* a0) {
  return api().archive_write_close(a0);
}
la_ssize_t archive_write_data(struct archive* a0, const void* a1, size_t a2) {
  return api().archive_write_data(a0, a1, a2);
}
int archive_write_free(struct archive* a0) {
  return api().archive_write_free(a0);
}
int archive_write_header(struct archive* a0, struct archive_entry* a1) {
  return api().archive_write_header(a0, a1);
}
struct archive* archive_write_new() {
  return api().archive_write_new();
}
int archive_write_open(struct archive* a0, void* a1, archive_open_callback* a2,
                       archive_write_callback* a3, archive_close_callback* a4) {
  return api().archive_write_open(a0, a1, a2, a3, a4);
}
int archive_write_open_fd(struct archive* a0, int a1) {
  return api().archive_write_open_fd(a0, a1);
}
int archive_write_open_filename(struct archive* a0, const char* a1) {
  return api().archive_write_open_filename(a0, a1);
}
int archive_write_set_bytes_in_last_block(struct archive* a0, int a1) {
  return api().archive_write_set_bytes_in_last_block(a0, a1);
}
int archive_write_set_format_pax(struct archive* a0) {
  return api().archive_write_set_format_pax(a0);
}
int archive_write_set_format_pax_restricted(struct archive* a0) {
  return api().archive_write_set_format_pax_restricted(a0);
}

}  // extern "C"
