#include "rootfs/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/unique_fd.h"
#include "sys/fs.h"

namespace vessel::rootfs {
namespace {

// libarchive may fail without setting a message (archive_error_string() is
// then NULL, e.g. for some corrupt gzip streams: found by fuzz/layer_fuzz).
const char* archive_message(struct archive* a) {
  const char* m = archive_error_string(a);
  return m ? m : "corrupt or truncated archive";
}

// Bounds on what an untrusted header may ask for.
constexpr size_t kMaxPathLength = 4096;      // entry names, hardlink and symlink targets (PATH_MAX)
constexpr size_t kMaxComponentLength = 255;  // NAME_MAX
constexpr size_t kMaxXattrNameLength = 255;  // XATTR_NAME_MAX
constexpr size_t kMaxXattrValueSize = 65536;         // XATTR_SIZE_MAX
constexpr size_t kMaxXattrBytesPerEntry = 1u << 20;  // names + values of one entry
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

Error bad_entry(std::string message) {
  return Error(ErrorCode::kInvalidArgument, std::move(message));
}

// Names come from the tar: quote them with control bytes escaped and the
// length capped, so a message cannot forge log lines or run to megabytes.
std::string printable(std::string_view s) {
  constexpr size_t kMaxShown = 200;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '\\') {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out;
}

// A tar name split into components: "./a//b/" -> {"a", "b"}. Empty
// components and "." are dropped; ".." and a leading "/" are refused rather
// than clamped, because a layer that tries them is hostile or broken.
Result<std::vector<std::string>> split_path(std::string_view name) {
  if (name.empty()) return bad_entry("empty name");
  if (name.size() > kMaxPathLength)
    return bad_entry("name longer than " + std::to_string(kMaxPathLength) + " bytes");
  if (name.front() == '/') return bad_entry("path is absolute: it would land outside the root");
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t end = name.find('/', pos);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(pos, end - pos);
    if (part == "..") return bad_entry("path escapes the root");
    if (part.size() > kMaxComponentLength)
      return bad_entry("name component longer than " + std::to_string(kMaxComponentLength));
    if (!part.empty() && part != ".") parts.emplace_back(part);
    pos = end + 1;
  }
  return parts;
}

std::string join(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

// Opens `rel` beneath `dir_fd`. RESOLVE_BENEATH refuses ".." and absolute
// escapes (EXDEV), RESOLVE_NO_SYMLINKS refuses every symlink on the way,
// the last component included (ELOOP), so a symlink planted by a layer can
// never redirect a write. See openat2(2).
Result<UniqueFd> open_beneath(int dir_fd, const std::string& rel, int flags) {
  open_how how{};
  // No O_NOFOLLOW: with it a symlink as last component fails O_DIRECTORY
  // with ENOTDIR; RESOLVE_NO_SYMLINKS already refuses it, with ELOOP.
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const char* path = rel.empty() ? "." : rel.c_str();
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, dir_fd, path, &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    int e = errno;
    // EAGAIN: a concurrent rename raced the lookup; openat2(2) says retry.
    if (e == EINTR || (e == EAGAIN && attempt < 16)) continue;
    switch (e) {
      case ELOOP:
        return Error(ErrorCode::kInvalidArgument, "path goes through a symlink");
      case EXDEV:
        return Error(ErrorCode::kInvalidArgument, "path escapes the root");
      case ENOSYS:
        return Error(ErrorCode::kUnavailable, "openat2 is not supported (Linux 5.6 or later)", e);
      default:
        return Error::from_errno(e, "open '" + printable(rel) + "'");
    }
  }
}

// Removes `name` in `dir_fd` and, for a directory, everything below it,
// never following a symlink. Recursion depth is bounded by the depth a tar
// name of kMaxPathLength bytes can create.
Status remove_entry(int dir_fd, const std::string& name) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? ok_status()
                           : Error::from_errno(errno, "stat '" + printable(name) + "'");
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT)
      return Error::from_errno(errno, "unlink '" + printable(name) + "'");
    return ok_status();
  }
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error::from_errno(errno, "open '" + printable(name) + "'");
  DIR* d = ::fdopendir(fd);
  if (!d) {
    int e = errno;
    ::close(fd);
    return Error::from_errno(e, "read directory '" + printable(name) + "'");
  }
  std::vector<std::string> children;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") children.emplace_back(n);
  }
  Status s;
  for (const auto& c : children) {
    s = remove_entry(::dirfd(d), c);
    if (!s.ok()) break;
  }
  ::closedir(d);
  if (!s.ok()) return s;
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return Error::from_errno(errno, "remove directory '" + printable(name) + "'");
  return ok_status();
}

struct DirTime {
  std::string path;
  timespec times[2];
};

class LayerApplier {
 public:
  LayerApplier(archive* a, int root_fd, const ApplyOptions& options)
      : archive_(a), root_fd_(root_fd), options_(options) {}

  Result<LayerStats> run();

 private:
  Status apply_entry(archive_entry* entry, std::string_view name);
  Status apply_whiteout(const std::vector<std::string>& parts);
  Status apply_opaque(const std::vector<std::string>& dir_parts);
  Status clear_lower(int dir_fd, const std::string& dir_path);
  Status apply_hardlink(archive_entry* entry, int parent_fd, const std::string& leaf,
                        const std::string& path);
  Status write_content(archive_entry* entry, int fd);
  Status set_owner_mode(archive_entry* entry, int fd, int parent_fd, const std::string& leaf,
                        bool is_symlink);
  Status set_xattrs(archive_entry* entry, int fd, int parent_fd, const std::string& leaf);
  Result<UniqueFd> open_parent(const std::vector<std::string>& parts);
  Status clear_slot(int parent_fd, const std::string& leaf, bool new_is_dir, bool* merge);
  void mark_created(const std::vector<std::string>& parts);
  Status set_dir_times();

  archive* archive_;
  int root_fd_;
  const ApplyOptions& options_;
  LayerStats stats_;
  // Paths this layer created, and their ancestors: an opaque marker removes
  // only what lower layers put in its directory (OCI image-spec, layer.md).
  std::unordered_set<std::string> created_;
  // Directory mtimes, applied once every child is in place.
  std::vector<DirTime> dir_times_;
};

Result<LayerStats> LayerApplier::run() {
  while (true) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(archive_, &entry);
    if (r == ARCHIVE_EOF) break;
    // ARCHIVE_WARN covers recoverable oddities (an unknown pax key); the
    // entry itself is usable. ARCHIVE_RETRY and ARCHIVE_FATAL are not.
    if (r < ARCHIVE_WARN) return bad_entry(std::string("read tar: ") + archive_message(archive_));
    if (++stats_.entries > options_.max_entries)
      return bad_entry("more than " + std::to_string(options_.max_entries) + " entries");
    const char* name = archive_entry_pathname(entry);
    if (!name) name = archive_entry_pathname_utf8(entry);
    if (!name) return bad_entry("entry " + std::to_string(stats_.entries) + " has no name");
    Status s = apply_entry(entry, name);
    if (!s.ok()) return s.error().wrap("entry '" + printable(name) + "'");
  }
  VESSEL_TRY(set_dir_times());
  return stats_;
}

void LayerApplier::mark_created(const std::vector<std::string>& parts) {
  std::string path;
  for (const auto& p : parts) {
    if (!path.empty()) path += '/';
    path += p;
    created_.insert(path);
  }
}

// Opens the directory that holds parts.back(), creating missing parents
// (0755, like Docker: layers need not list every parent).
Result<UniqueFd> LayerApplier::open_parent(const std::vector<std::string>& parts) {
  std::string parent = join(parts, parts.size() - 1);
  auto fd = open_beneath(root_fd_, parent, O_RDONLY | O_DIRECTORY);
  if (fd.ok() || fd.error().errnum() != ENOENT) return fd;
  VESSEL_ASSIGN_OR_RETURN(UniqueFd cur, open_beneath(root_fd_, "", O_RDONLY | O_DIRECTORY));
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto next = open_beneath(cur.get(), parts[i], O_RDONLY | O_DIRECTORY);
    if (!next.ok() && next.error().errnum() == ENOENT) {
      if (::mkdirat(cur.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST)
        return Error::from_errno(errno, "create directory '" + printable(join(parts, i + 1)) + "'");
      next = open_beneath(cur.get(), parts[i], O_RDONLY | O_DIRECTORY);
    }
    if (!next.ok()) return std::move(next).error();
    cur = std::move(*next);
  }
  return cur;
}

// Makes room for a new entry at `leaf`: a directory over a directory merges
// (*merge = true); anything else removes what is there. The leaf itself is
// never followed.
Status LayerApplier::clear_slot(int parent_fd, const std::string& leaf, bool new_is_dir,
                                bool* merge) {
  *merge = false;
  struct stat st;
  if (::fstatat(parent_fd, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return ok_status();
    return Error::from_errno(errno, "stat");
  }
  if (S_ISDIR(st.st_mode) && new_is_dir) {
    *merge = true;
    return ok_status();
  }
  return remove_entry(parent_fd, leaf);
}

Status LayerApplier::apply_entry(archive_entry* entry, std::string_view name) {
  VESSEL_ASSIGN_OR_RETURN(std::vector<std::string> parts, split_path(name));
  const char* hardlink = archive_entry_hardlink(entry);
  mode_t type = archive_entry_filetype(entry);

  if (parts.empty()) {
    // "./": the root itself. Only a directory can stand there; its metadata
    // applies to the root like any merged directory.
    if (hardlink || type != AE_IFDIR) return bad_entry("the root must be a directory");
    VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, open_beneath(root_fd_, "", O_RDONLY | O_DIRECTORY));
    VESSEL_TRY(set_owner_mode(entry, fd.get(), -1, "", false));
    VESSEL_TRY(set_xattrs(entry, fd.get(), -1, ""));
    if (archive_entry_mtime_is_set(entry)) {
      DirTime t{"", {}};
      t.times[1] = {archive_entry_mtime(entry), archive_entry_mtime_nsec(entry)};
      t.times[0] = archive_entry_atime_is_set(entry)
                       ? timespec{archive_entry_atime(entry), archive_entry_atime_nsec(entry)}
                       : t.times[1];
      dir_times_.push_back(std::move(t));
    }
    return ok_status();
  }

  const std::string& leaf = parts.back();
  if (options_.whiteouts && leaf.starts_with(kWhiteoutPrefix)) {
    if (leaf == kOpaqueMarker) {
      parts.pop_back();
      return apply_opaque(parts);
    }
    // Other ".wh..wh." names are aufs bookkeeping (hardlink dirs): not content.
    if (leaf.starts_with(kWhiteoutMetaPrefix)) return ok_status();
    return apply_whiteout(parts);
  }

  std::string path = join(parts, parts.size());
  VESSEL_ASSIGN_OR_RETURN(UniqueFd parent, open_parent(parts));
  mark_created(parts);

  if (hardlink) return apply_hardlink(entry, parent.get(), leaf, path);

  bool merge = false;
  VESSEL_TRY(clear_slot(parent.get(), leaf, type == AE_IFDIR, &merge));

  timespec times[2];
  bool has_mtime = archive_entry_mtime_is_set(entry);
  times[1] = has_mtime ? timespec{archive_entry_mtime(entry), archive_entry_mtime_nsec(entry)}
                       : timespec{0, UTIME_OMIT};
  times[0] = archive_entry_atime_is_set(entry)
                 ? timespec{archive_entry_atime(entry), archive_entry_atime_nsec(entry)}
                 : times[1];

  switch (type) {
    case AE_IFREG: {
      // O_EXCL after clear_slot: the name is fresh, so nothing is followed.
      int raw = ::openat(parent.get(), leaf.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (raw < 0) return Error::from_errno(errno, "create file");
      UniqueFd fd(raw);
      VESSEL_TRY(write_content(entry, fd.get()));
      // chown clears setuid/setgid and security.capability (chown(2),
      // capabilities(7)), and writing clears them too: content, owner, mode,
      // xattrs, times, in that order.
      VESSEL_TRY(set_owner_mode(entry, fd.get(), -1, "", false));
      VESSEL_TRY(set_xattrs(entry, fd.get(), -1, ""));
      if (::futimens(fd.get(), times) != 0) return Error::from_errno(errno, "set times");
      return ok_status();
    }
    case AE_IFDIR: {
      if (!merge && ::mkdirat(parent.get(), leaf.c_str(), 0700) != 0)
        return Error::from_errno(errno, "create directory");
      VESSEL_ASSIGN_OR_RETURN(UniqueFd fd,
                              open_beneath(parent.get(), leaf, O_RDONLY | O_DIRECTORY));
      VESSEL_TRY(set_owner_mode(entry, fd.get(), -1, "", false));
      VESSEL_TRY(set_xattrs(entry, fd.get(), -1, ""));
      if (has_mtime) dir_times_.push_back(DirTime{path, {times[0], times[1]}});
      return ok_status();
    }
    case AE_IFLNK: {
      const char* target = archive_entry_symlink(entry);
      if (!target) target = archive_entry_symlink_utf8(entry);
      // The target is stored verbatim and never followed here: "/etc" is a
      // fine target for a symlink inside the image.
      if (!target || !*target) return bad_entry("symlink without a target");
      if (std::strlen(target) > kMaxPathLength) return bad_entry("symlink target too long");
      if (::symlinkat(target, parent.get(), leaf.c_str()) != 0)
        return Error::from_errno(errno, "create symlink");
      VESSEL_TRY(set_owner_mode(entry, -1, parent.get(), leaf, true));
      VESSEL_TRY(set_xattrs(entry, -1, parent.get(), leaf));
      if (::utimensat(parent.get(), leaf.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
        return Error::from_errno(errno, "set times");
      return ok_status();
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
      mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
      dev_t dev = kind == S_IFIFO
                      ? 0
                      : makedev(archive_entry_rdevmajor(entry), archive_entry_rdevminor(entry));
      if (::mknodat(parent.get(), leaf.c_str(), kind | 0600, dev) != 0)
        return Error::from_errno(errno, "create device node");
      VESSEL_TRY(set_owner_mode(entry, -1, parent.get(), leaf, false));
      VESSEL_TRY(set_xattrs(entry, -1, parent.get(), leaf));
      if (::utimensat(parent.get(), leaf.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
        return Error::from_errno(errno, "set times");
      return ok_status();
    }
    case AE_IFSOCK:
      // A socket in a tar has no content and cannot be bound from a file:
      // Docker and containerd drop it too.
      return ok_status();
    default:
      return bad_entry("unsupported entry type " + std::to_string(type));
  }
}

Status LayerApplier::apply_hardlink(archive_entry* entry, int parent_fd, const std::string& leaf,
                                    const std::string& path) {
  std::string_view target_name = archive_entry_hardlink(entry);
  auto target = split_path(target_name);
  if (!target.ok()) return std::move(target).error().wrap("hardlink target");
  if (target->empty()) return bad_entry("hardlink to the root");
  if (join(*target, target->size()) == path) return ok_status();  // a link to itself
  // The target is resolved like any entry name: beneath the root, through
  // no symlink, so a link cannot reach a file outside.
  auto target_parent =
      open_beneath(root_fd_, join(*target, target->size() - 1), O_RDONLY | O_DIRECTORY);
  if (!target_parent.ok()) return std::move(target_parent).error().wrap("hardlink target");
  struct stat st;
  if (::fstatat(target_parent->get(), target->back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::from_errno(errno, "hardlink target '" + printable(target_name) + "'");
  if (S_ISDIR(st.st_mode)) return bad_entry("hardlink to a directory");
  bool merge = false;
  VESSEL_TRY(clear_slot(parent_fd, leaf, false, &merge));
  // Flags 0: linkat(2) links the target itself, a symlink included, and
  // never follows it.
  if (::linkat(target_parent->get(), target->back().c_str(), parent_fd, leaf.c_str(), 0) != 0)
    return Error::from_errno(errno, "create hardlink");
  return ok_status();
}

Status LayerApplier::write_content(archive_entry* entry, int fd) {
  la_int64_t end = 0;
  while (true) {
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(archive_, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return bad_entry(std::string("read tar: ") + archive_message(archive_));
    // Blocks come with their offset: a sparse entry skips its holes, and
    // pwrite leaves them unallocated. Offsets are bounded so that a bogus
    // sparse map cannot seek to absurd positions.
    if (offset < 0 || size > static_cast<size_t>(INT64_MAX) ||
        offset > INT64_MAX - static_cast<la_int64_t>(size))
      return bad_entry("bad data offset");
    stats_.bytes += size;
    if (options_.max_bytes && stats_.bytes > options_.max_bytes)
      return bad_entry("layer content larger than " + std::to_string(options_.max_bytes) +
                       " bytes");
    const char* p = static_cast<const char*>(buf);
    off_t at = offset;
    size_t left = size;
    while (left > 0) {
      ssize_t n = ::pwrite(fd, p, left, at);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::from_errno(errno, "write file");
      p += n;
      at += n;
      left -= static_cast<size_t>(n);
    }
    end = std::max<la_int64_t>(end, offset + static_cast<la_int64_t>(size));
  }
  // A trailing hole has no data block: extend to the declared size without
  // writing (and allocating) zeros.
  la_int64_t declared = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
  if (declared < 0) return bad_entry("negative size");
  if (declared > end && ::ftruncate(fd, declared) != 0)
    return Error::from_errno(errno, "set file size");
  return ok_status();
}

Status LayerApplier::set_owner_mode(archive_entry* entry, int fd, int parent_fd,
                                    const std::string& leaf, bool is_symlink) {
  if (options_.preserve_ownership) {
    la_int64_t uid = archive_entry_uid(entry);
    la_int64_t gid = archive_entry_gid(entry);
    // (uid_t)-1 means "unchanged" to chown(2): refuse it with the rest.
    if (uid < 0 || uid >= UINT32_MAX || gid < 0 || gid >= UINT32_MAX)
      return bad_entry("uid or gid out of range");
    int r = fd >= 0 ? ::fchown(fd, static_cast<uid_t>(uid), static_cast<gid_t>(gid))
                    : ::fchownat(parent_fd, leaf.c_str(), static_cast<uid_t>(uid),
                                 static_cast<gid_t>(gid), AT_SYMLINK_NOFOLLOW);
    if (r != 0) return Error::from_errno(errno, "change owner");
  }
  if (is_symlink) return ok_status();  // a symlink's mode is always 0777
  mode_t mode = archive_entry_perm(entry) & 07777;
  int r =
      fd >= 0 ? ::fchmod(fd, mode) : ::fchmodat(parent_fd, leaf.c_str(), mode, AT_SYMLINK_NOFOLLOW);
  if (r != 0) return Error::from_errno(errno, "change mode");
  return ok_status();
}

// Sets the entry's xattrs (PAX SCHILY.xattr / LIBARCHIVE.xattr records).
// Bounds: name 1..XATTR_NAME_MAX bytes, value <= XATTR_SIZE_MAX, and 1 MiB
// per entry in all.
Status LayerApplier::set_xattrs(archive_entry* entry, int fd, int parent_fd,
                                const std::string& leaf) {
  size_t total = 0;
  archive_entry_xattr_reset(entry);
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
    std::string_view n = name ? name : "";
    if (n.empty() || n.size() > kMaxXattrNameLength) return bad_entry("bad xattr name");
    if (size > kMaxXattrValueSize) return bad_entry("xattr '" + printable(n) + "' too large");
    total += n.size() + size;
    if (total > kMaxXattrBytesPerEntry) return bad_entry("xattrs too large");
    // Only the namespaces an image can mean. system.* holds ACLs, which
    // libarchive reports separately; trusted.overlay.* would steer an
    // overlayfs that the guest may stack on this tree.
    bool known = n.starts_with("user.") || n.starts_with("security.") || n.starts_with("trusted.");
    if (!known || n.starts_with("trusted.overlay.")) continue;
    int r;
    if (fd >= 0) {
      r = ::fsetxattr(fd, name, value, size, 0);
    } else {
      // No fsetxattrat in glibc: name the node through the parent's fd;
      // lsetxattr does not follow the last component.
      std::string p = "/proc/self/fd/" + std::to_string(parent_fd) + "/" + leaf;
      r = ::lsetxattr(p.c_str(), name, value, size, 0);
    }
    if (r != 0) {
      if (errno == ENOTSUP) continue;  // the directory's filesystem has no xattrs
      return Error::from_errno(errno, "set xattr '" + printable(n) + "'");
    }
  }
  return ok_status();
}

Status LayerApplier::apply_whiteout(const std::vector<std::string>& parts) {
  std::string victim = parts.back().substr(kWhiteoutPrefix.size());
  if (victim.empty() || victim == "." || victim == "..") return bad_entry("bad whiteout name");
  std::vector<std::string> victim_parts(parts.begin(), parts.end() - 1);
  victim_parts.push_back(victim);
  // A whiteout hides lower layers only: keep what this layer already put there.
  if (created_.contains(join(victim_parts, victim_parts.size()))) return ok_status();
  auto parent = open_beneath(root_fd_, join(parts, parts.size() - 1), O_RDONLY | O_DIRECTORY);
  if (!parent.ok()) {
    // Nothing below a missing parent to hide.
    if (parent.error().errnum() == ENOENT) return ok_status();
    return std::move(parent).error();
  }
  return remove_entry(parent->get(), victim);
}

Status LayerApplier::apply_opaque(const std::vector<std::string>& dir_parts) {
  std::string dir = join(dir_parts, dir_parts.size());
  auto fd = open_beneath(root_fd_, dir, O_RDONLY | O_DIRECTORY);
  if (!fd.ok()) {
    if (fd.error().errnum() == ENOENT) return ok_status();
    return std::move(fd).error();
  }
  return clear_lower(fd->get(), dir);
}

// Removes from `dir_fd` every entry this layer did not create; descends into
// directories this layer did create (or merged), which may still hold lower
// entries.
Status LayerApplier::clear_lower(int dir_fd, const std::string& dir_path) {
  int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return Error::from_errno(errno, "dup");
  DIR* d = ::fdopendir(dup);
  if (!d) {
    int e = errno;
    ::close(dup);
    return Error::from_errno(e, "read directory");
  }
  std::vector<std::string> children;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") children.emplace_back(n);
  }
  ::closedir(d);
  for (const auto& c : children) {
    std::string child = dir_path.empty() ? c : dir_path + "/" + c;
    if (!created_.contains(child)) {
      VESSEL_TRY(remove_entry(dir_fd, c));
      continue;
    }
    struct stat st;
    if (::fstatat(dir_fd, c.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return Error::from_errno(errno, "stat '" + printable(child) + "'");
    if (!S_ISDIR(st.st_mode)) continue;
    VESSEL_ASSIGN_OR_RETURN(UniqueFd sub, open_beneath(dir_fd, c, O_RDONLY | O_DIRECTORY));
    VESSEL_TRY(clear_lower(sub.get(), child));
  }
  return ok_status();
}

// Adding a child bumps its directory's mtime, so directory times are set
// last. A directory removed or replaced later in the layer is skipped.
Status LayerApplier::set_dir_times() {
  for (const auto& t : dir_times_) {
    auto fd = open_beneath(root_fd_, t.path, O_RDONLY | O_DIRECTORY);
    if (!fd.ok()) {
      // Gone, or now behind a symlink (kInvalidArgument from open_beneath).
      int e = fd.error().errnum();
      if (e == ENOENT || e == ENOTDIR || fd.error().code() == ErrorCode::kInvalidArgument) continue;
      return std::move(fd).error().wrap("set times of '" + printable(t.path) + "'");
    }
    if (::futimens(fd->get(), t.times) != 0)
      return Error::from_errno(errno, "set times of '" + printable(t.path) + "'");
  }
  return ok_status();
}

std::string layer_label(const ApplyOptions& options) {
  return options.display_name.empty() ? "layer" : "layer " + options.display_name;
}

}  // namespace

Result<LayerStats> apply_layer(int tar_fd, const std::string& root_dir,
                               const ApplyOptions& options) {
  std::string label = layer_label(options);
  auto root = sys::open_fd(root_dir, O_RDONLY | O_DIRECTORY);
  if (!root.ok()) return std::move(root).error().wrap(label);

  ArchivePtr a(archive_read_new());
  if (!a) return Error(ErrorCode::kInternal, label + ": archive_read_new failed");
  // Only what OCI layer media types allow: tar, optionally gzip or zstd
  // compressed. Fewer decoders, less attack surface.
  if (archive_read_support_format_tar(a.get()) != ARCHIVE_OK ||
      archive_read_support_filter_gzip(a.get()) != ARCHIVE_OK ||
      archive_read_support_filter_zstd(a.get()) != ARCHIVE_OK)
    return Error(ErrorCode::kUnavailable, label + ": libarchive lacks tar, gzip or zstd support: " +
                                              archive_message(a.get()));
  if (archive_read_open_fd(a.get(), tar_fd, 1 << 16) != ARCHIVE_OK)
    return Error(ErrorCode::kInvalidArgument, std::string("read tar: ") + archive_message(a.get()))
        .wrap(label);

  LayerApplier applier(a.get(), root->get(), options);
  auto stats = applier.run();
  if (!stats.ok()) return std::move(stats).error().wrap(label);
  return stats;
}

Result<LayerStats> apply_layer_file(const std::string& tar_path, const std::string& root_dir,
                                    const ApplyOptions& options) {
  auto fd = sys::open_fd(tar_path, O_RDONLY);
  if (!fd.ok()) return std::move(fd).error().wrap(layer_label(options));
  return apply_layer(fd->get(), root_dir, options);
}

}  // namespace vessel::rootfs
