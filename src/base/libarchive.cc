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

struct ArchiveApi {
  decltype(&::archive_entry_atime) archive_entry_atime;
  decltype(&::archive_entry_atime_is_set) archive_entry_atime_is_set;
  decltype(&::archive_entry_atime_nsec) archive_entry_atime_nsec;
  decltype(&::archive_entry_copy_sourcepath) archive_entry_copy_sourcepath;
  decltype(&::archive_entry_filetype) archive_entry_filetype;
  decltype(&::archive_entry_free) archive_entry_free;
  decltype(&::archive_entry_gid) archive_entry_gid;
  decltype(&::archive_entry_hardlink) archive_entry_hardlink;
  decltype(&::archive_entry_linkify) archive_entry_linkify;
  decltype(&::archive_entry_linkresolver_free) archive_entry_linkresolver_free;
  decltype(&::archive_entry_linkresolver_new) archive_entry_linkresolver_new;
  decltype(&::archive_entry_linkresolver_set_strategy) archive_entry_linkresolver_set_strategy;
  decltype(&::archive_entry_mode) archive_entry_mode;
  decltype(&::archive_entry_mtime) archive_entry_mtime;
  decltype(&::archive_entry_mtime_is_set) archive_entry_mtime_is_set;
  decltype(&::archive_entry_mtime_nsec) archive_entry_mtime_nsec;
  decltype(&::archive_entry_new) archive_entry_new;
  decltype(&::archive_entry_pathname) archive_entry_pathname;
  decltype(&::archive_entry_pathname_utf8) archive_entry_pathname_utf8;
  decltype(&::archive_entry_perm) archive_entry_perm;
  decltype(&::archive_entry_rdevmajor) archive_entry_rdevmajor;
  decltype(&::archive_entry_rdevminor) archive_entry_rdevminor;
  decltype(&::archive_entry_set_filetype) archive_entry_set_filetype;
  decltype(&::archive_entry_set_gid) archive_entry_set_gid;
  decltype(&::archive_entry_set_gname) archive_entry_set_gname;
  decltype(&::archive_entry_set_hardlink) archive_entry_set_hardlink;
  decltype(&::archive_entry_set_mtime) archive_entry_set_mtime;
  decltype(&::archive_entry_set_pathname) archive_entry_set_pathname;
  decltype(&::archive_entry_set_perm) archive_entry_set_perm;
  decltype(&::archive_entry_set_rdevmajor) archive_entry_set_rdevmajor;
  decltype(&::archive_entry_set_rdevminor) archive_entry_set_rdevminor;
  decltype(&::archive_entry_set_size) archive_entry_set_size;
  decltype(&::archive_entry_set_symlink) archive_entry_set_symlink;
  decltype(&::archive_entry_set_uid) archive_entry_set_uid;
  decltype(&::archive_entry_set_uname) archive_entry_set_uname;
  decltype(&::archive_entry_size) archive_entry_size;
  decltype(&::archive_entry_size_is_set) archive_entry_size_is_set;
  decltype(&::archive_entry_sourcepath) archive_entry_sourcepath;
  decltype(&::archive_entry_sparse_add_entry) archive_entry_sparse_add_entry;
  decltype(&::archive_entry_symlink) archive_entry_symlink;
  decltype(&::archive_entry_symlink_utf8) archive_entry_symlink_utf8;
  decltype(&::archive_entry_uid) archive_entry_uid;
  decltype(&::archive_entry_xattr_add_entry) archive_entry_xattr_add_entry;
  decltype(&::archive_entry_xattr_next) archive_entry_xattr_next;
  decltype(&::archive_entry_xattr_reset) archive_entry_xattr_reset;
  decltype(&::archive_errno) archive_errno;
  decltype(&::archive_error_string) archive_error_string;
  decltype(&::archive_format) archive_format;
  decltype(&::archive_read_data) archive_read_data;
  decltype(&::archive_read_data_block) archive_read_data_block;
  decltype(&::archive_read_disk_descend) archive_read_disk_descend;
  decltype(&::archive_read_disk_new) archive_read_disk_new;
  decltype(&::archive_read_disk_open) archive_read_disk_open;
  decltype(&::archive_read_disk_set_behavior) archive_read_disk_set_behavior;
  decltype(&::archive_read_disk_set_symlink_hybrid) archive_read_disk_set_symlink_hybrid;
  decltype(&::archive_read_disk_set_symlink_physical) archive_read_disk_set_symlink_physical;
  decltype(&::archive_read_free) archive_read_free;
  decltype(&::archive_read_new) archive_read_new;
  decltype(&::archive_read_next_header) archive_read_next_header;
  decltype(&::archive_read_next_header2) archive_read_next_header2;
  decltype(&::archive_read_open_fd) archive_read_open_fd;
  decltype(&::archive_read_open_filename) archive_read_open_filename;
  decltype(&::archive_read_open_memory) archive_read_open_memory;
  decltype(&::archive_read_support_filter_all) archive_read_support_filter_all;
  decltype(&::archive_read_support_filter_gzip) archive_read_support_filter_gzip;
  decltype(&::archive_read_support_filter_zstd) archive_read_support_filter_zstd;
  decltype(&::archive_read_support_format_raw) archive_read_support_format_raw;
  decltype(&::archive_read_support_format_tar) archive_read_support_format_tar;
  decltype(&::archive_write_add_filter_gzip) archive_write_add_filter_gzip;
  decltype(&::archive_write_add_filter_zstd) archive_write_add_filter_zstd;
  decltype(&::archive_write_close) archive_write_close;
  decltype(&::archive_write_data) archive_write_data;
  decltype(&::archive_write_free) archive_write_free;
  decltype(&::archive_write_header) archive_write_header;
  decltype(&::archive_write_new) archive_write_new;
  decltype(&::archive_write_open) archive_write_open;
  decltype(&::archive_write_open_fd) archive_write_open_fd;
  decltype(&::archive_write_open_filename) archive_write_open_filename;
  decltype(&::archive_write_set_bytes_in_last_block) archive_write_set_bytes_in_last_block;
  decltype(&::archive_write_set_format_pax) archive_write_set_format_pax;
  decltype(&::archive_write_set_format_pax_restricted) archive_write_set_format_pax_restricted;
};

const ArchiveApi& load() {
  static ArchiveApi api;
  Library lib("libarchive.so.13", "libarchive13");
  lib.bind(api.archive_entry_atime, "archive_entry_atime");
  lib.bind(api.archive_entry_atime_is_set, "archive_entry_atime_is_set");
  lib.bind(api.archive_entry_atime_nsec, "archive_entry_atime_nsec");
  lib.bind(api.archive_entry_copy_sourcepath, "archive_entry_copy_sourcepath");
  lib.bind(api.archive_entry_filetype, "archive_entry_filetype");
  lib.bind(api.archive_entry_free, "archive_entry_free");
  lib.bind(api.archive_entry_gid, "archive_entry_gid");
  lib.bind(api.archive_entry_hardlink, "archive_entry_hardlink");
  lib.bind(api.archive_entry_linkify, "archive_entry_linkify");
  lib.bind(api.archive_entry_linkresolver_free, "archive_entry_linkresolver_free");
  lib.bind(api.archive_entry_linkresolver_new, "archive_entry_linkresolver_new");
  lib.bind(api.archive_entry_linkresolver_set_strategy, "archive_entry_linkresolver_set_strategy");
  lib.bind(api.archive_entry_mode, "archive_entry_mode");
  lib.bind(api.archive_entry_mtime, "archive_entry_mtime");
  lib.bind(api.archive_entry_mtime_is_set, "archive_entry_mtime_is_set");
  lib.bind(api.archive_entry_mtime_nsec, "archive_entry_mtime_nsec");
  lib.bind(api.archive_entry_new, "archive_entry_new");
  lib.bind(api.archive_entry_pathname, "archive_entry_pathname");
  lib.bind(api.archive_entry_pathname_utf8, "archive_entry_pathname_utf8");
  lib.bind(api.archive_entry_perm, "archive_entry_perm");
  lib.bind(api.archive_entry_rdevmajor, "archive_entry_rdevmajor");
  lib.bind(api.archive_entry_rdevminor, "archive_entry_rdevminor");
  lib.bind(api.archive_entry_set_filetype, "archive_entry_set_filetype");
  lib.bind(api.archive_entry_set_gid, "archive_entry_set_gid");
  lib.bind(api.archive_entry_set_gname, "archive_entry_set_gname");
  lib.bind(api.archive_entry_set_hardlink, "archive_entry_set_hardlink");
  lib.bind(api.archive_entry_set_mtime, "archive_entry_set_mtime");
  lib.bind(api.archive_entry_set_pathname, "archive_entry_set_pathname");
  lib.bind(api.archive_entry_set_perm, "archive_entry_set_perm");
  lib.bind(api.archive_entry_set_rdevmajor, "archive_entry_set_rdevmajor");
  lib.bind(api.archive_entry_set_rdevminor, "archive_entry_set_rdevminor");
  lib.bind(api.archive_entry_set_size, "archive_entry_set_size");
  lib.bind(api.archive_entry_set_symlink, "archive_entry_set_symlink");
  lib.bind(api.archive_entry_set_uid, "archive_entry_set_uid");
  lib.bind(api.archive_entry_set_uname, "archive_entry_set_uname");
  lib.bind(api.archive_entry_size, "archive_entry_size");
  lib.bind(api.archive_entry_size_is_set, "archive_entry_size_is_set");
  lib.bind(api.archive_entry_sourcepath, "archive_entry_sourcepath");
  lib.bind(api.archive_entry_sparse_add_entry, "archive_entry_sparse_add_entry");
  lib.bind(api.archive_entry_symlink, "archive_entry_symlink");
  lib.bind(api.archive_entry_symlink_utf8, "archive_entry_symlink_utf8");
  lib.bind(api.archive_entry_uid, "archive_entry_uid");
  lib.bind(api.archive_entry_xattr_add_entry, "archive_entry_xattr_add_entry");
  lib.bind(api.archive_entry_xattr_next, "archive_entry_xattr_next");
  lib.bind(api.archive_entry_xattr_reset, "archive_entry_xattr_reset");
  lib.bind(api.archive_errno, "archive_errno");
  lib.bind(api.archive_error_string, "archive_error_string");
  lib.bind(api.archive_format, "archive_format");
  lib.bind(api.archive_read_data, "archive_read_data");
  lib.bind(api.archive_read_data_block, "archive_read_data_block");
  lib.bind(api.archive_read_disk_descend, "archive_read_disk_descend");
  lib.bind(api.archive_read_disk_new, "archive_read_disk_new");
  lib.bind(api.archive_read_disk_open, "archive_read_disk_open");
  lib.bind(api.archive_read_disk_set_behavior, "archive_read_disk_set_behavior");
  lib.bind(api.archive_read_disk_set_symlink_hybrid, "archive_read_disk_set_symlink_hybrid");
  lib.bind(api.archive_read_disk_set_symlink_physical, "archive_read_disk_set_symlink_physical");
  lib.bind(api.archive_read_free, "archive_read_free");
  lib.bind(api.archive_read_new, "archive_read_new");
  lib.bind(api.archive_read_next_header, "archive_read_next_header");
  lib.bind(api.archive_read_next_header2, "archive_read_next_header2");
  lib.bind(api.archive_read_open_fd, "archive_read_open_fd");
  lib.bind(api.archive_read_open_filename, "archive_read_open_filename");
  lib.bind(api.archive_read_open_memory, "archive_read_open_memory");
  lib.bind(api.archive_read_support_filter_all, "archive_read_support_filter_all");
  lib.bind(api.archive_read_support_filter_gzip, "archive_read_support_filter_gzip");
  lib.bind(api.archive_read_support_filter_zstd, "archive_read_support_filter_zstd");
  lib.bind(api.archive_read_support_format_raw, "archive_read_support_format_raw");
  lib.bind(api.archive_read_support_format_tar, "archive_read_support_format_tar");
  lib.bind(api.archive_write_add_filter_gzip, "archive_write_add_filter_gzip");
  lib.bind(api.archive_write_add_filter_zstd, "archive_write_add_filter_zstd");
  lib.bind(api.archive_write_close, "archive_write_close");
  lib.bind(api.archive_write_data, "archive_write_data");
  lib.bind(api.archive_write_free, "archive_write_free");
  lib.bind(api.archive_write_header, "archive_write_header");
  lib.bind(api.archive_write_new, "archive_write_new");
  lib.bind(api.archive_write_open, "archive_write_open");
  lib.bind(api.archive_write_open_fd, "archive_write_open_fd");
  lib.bind(api.archive_write_open_filename, "archive_write_open_filename");
  lib.bind(api.archive_write_set_bytes_in_last_block, "archive_write_set_bytes_in_last_block");
  lib.bind(api.archive_write_set_format_pax, "archive_write_set_format_pax");
  lib.bind(api.archive_write_set_format_pax_restricted, "archive_write_set_format_pax_restricted");
  if (Status s = lib.status(); !s.ok()) {
    // No way to return an error through libarchive's own API: say why and stop.
    std::fprintf(stderr, "vessel: %s\n", s.error().to_string().c_str());
    std::abort();
  }
  return api;
}

const ArchiveApi& api() {
  static const ArchiveApi& loaded = load();
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
