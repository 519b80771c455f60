#include "rootfs/ext4.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <utility>
#include <vector>

#include "base/unique_fd.h"
#include "sys/fs.h"
#include "sys/process.h"

namespace vessel::rootfs {
namespace {

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kInodeSize = 256;          // mke2fs default for ext4 (-I)
constexpr uint64_t kFixedOverhead = 8 << 20;  // superblock copies, bitmaps, group descriptors
constexpr size_t kMaxLabel = 16;              // ext4 s_volume_name

uint64_t round_up(uint64_t n, uint64_t to) {
  return (n + to - 1) / to * to;
}

struct Walker {
  TreeUsage usage;
  dev_t dev = 0;
  std::set<std::pair<dev_t, ino_t>> seen;  // inodes with st_nlink > 1

  bool has_xattrs(int dir_fd, const char* name) {
    // No flistxattrat: name the node through the directory's fd; the l*
    // call does not follow the last component.
    std::string p = "/proc/self/fd/" + std::to_string(dir_fd) + "/" + name;
    return ::llistxattr(p.c_str(), nullptr, 0) > 0;
  }

  // Counts the directory open at `fd` (already stat'ed as `st`) and all below.
  Status walk(int fd, const std::string& path) {
    int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return Error::from_errno(errno, "dup");
    DIR* d = ::fdopendir(dup);
    if (!d) {
      int e = errno;
      ::close(dup);
      return Error::from_errno(e, "read directory '" + path + "'");
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    ::closedir(d);
    // ext4 directory entries: 8 bytes + the name padded to 4, plus "." and "..".
    uint64_t dir_bytes = 24;
    for (const auto& n : names)
      dir_bytes += 8 + round_up(n.size(), 4);
    usage.data_bytes += round_up(dir_bytes, kBlock);

    for (const auto& n : names) {
      std::string child = path + "/" + n;
      struct stat st;
      if (::fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return Error::from_errno(errno, "stat '" + child + "'");
      if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !seen.emplace(st.st_dev, st.st_ino).second)
        continue;  // another name of an inode already counted
      ++usage.inodes;
      if (has_xattrs(fd, n.c_str())) ++usage.xattr_inodes;
      if (S_ISREG(st.st_mode)) {
        // Allocated size: a sparse file's holes stay holes in the image
        // (mke2fs -d copies with SEEK_DATA/SEEK_HOLE).
        uint64_t allocated = static_cast<uint64_t>(st.st_blocks) * 512;
        usage.data_bytes += round_up(std::min<uint64_t>(st.st_size, allocated), kBlock);
      } else if (S_ISLNK(st.st_mode)) {
        if (st.st_size >= 60) usage.data_bytes += kBlock;  // longer targets leave the inode
      } else if (S_ISDIR(st.st_mode)) {
        if (st.st_dev != dev)
          return Error(ErrorCode::kFailedPrecondition, "'" + child + "' is a mount point");
        int sub = ::openat(fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) return Error::from_errno(errno, "open '" + child + "'");
        UniqueFd owned(sub);
        VESSEL_TRY(walk(owned.get(), child));
      }
    }
    return ok_status();
  }
};

Result<std::string> find_mkfs(const Ext4Options& options) {
  if (!options.mkfs_path.empty()) return options.mkfs_path;
  if (auto p = sys::find_program("mkfs.ext4")) return *p;
  for (const char* p : {"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"})
    if (::access(p, X_OK) == 0) return std::string(p);
  return Error(ErrorCode::kUnavailable, "mkfs.ext4 not found (install e2fsprogs)");
}

// The tail of what the child wrote, for the error message.
std::string read_tail(int fd, size_t limit) {
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size <= 0) return "";
  off_t from = size > static_cast<off_t>(limit) ? size - static_cast<off_t>(limit) : 0;
  std::string out(static_cast<size_t>(size - from), '\0');
  ssize_t n = ::pread(fd, out.data(), out.size(), from);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
    out.pop_back();
  return out;
}

Status run_mkfs(const std::string& mkfs, const std::string& dir, const std::string& image,
                const Ext4Options& options, uint64_t inodes) {
  // mke2fs(8): -d copies the tree (xattrs, hardlinks, devices included);
  // nothing reserved for root. A snapshot has no journal (it is only ever
  // read) and just the inodes the tree needs.
  std::vector<std::string> argv = {mkfs,
                                   "-q",
                                   "-F",
                                   "-t",
                                   "ext4",
                                   "-b",
                                   std::to_string(kBlock),
                                   "-I",
                                   std::to_string(kInodeSize),
                                   "-m",
                                   "0"};
  if (options.writable_room_bytes == 0) {
    argv.insert(argv.end(),
                {"-N", std::to_string(inodes), "-O", "^has_journal", "-E", "root_owner=0:0"});
  } else {
    // Written in place: a journal, and mke2fs's own inode ratio.
    argv.insert(argv.end(), {"-E", "root_owner=0:0,lazy_itable_init=0,lazy_journal_init=1"});
  }
  argv.insert(argv.end(), {"-L", options.label, "-d", dir, image});
  // Output goes to a memfd rather than a pipe: nothing to drain while
  // waiting, and only the tail is read back.
  int out = ::memfd_create("mkfs-output", MFD_CLOEXEC);
  if (out < 0) return Error::from_errno(errno, "memfd_create");
  UniqueFd out_fd(out);
  sys::SpawnOptions spawn;
  spawn.argv = argv;
  spawn.fds = {{1, out_fd.get()}, {2, out_fd.get()}};
  VESSEL_ASSIGN_OR_RETURN(sys::Process child, sys::Process::spawn(spawn));
  VESSEL_ASSIGN_OR_RETURN(sys::ExitStatus status, child.wait());
  if (status.signal != 0 || status.code != 0) {
    std::string msg = "mkfs.ext4 " + status.to_string();
    std::string tail = read_tail(out_fd.get(), 2048);
    if (!tail.empty()) msg += ": " + tail;
    return Error(ErrorCode::kInternal, msg);
  }
  return ok_status();
}

}  // namespace

Result<TreeUsage> measure_tree(const std::string& dir) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(dir, O_RDONLY | O_DIRECTORY));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Error::from_errno(errno, "stat '" + dir + "'");
  Walker w;
  w.dev = st.st_dev;
  w.usage.inodes = 1;
  VESSEL_TRY(w.walk(fd.get(), dir));
  return w.usage;
}

Status make_ext4_image(const std::string& dir, const std::string& image_path,
                       const Ext4Options& options) {
  std::string what = "make ext4 image '" + image_path + "' from '" + dir + "'";
  if (options.label.size() > kMaxLabel)
    return Error(ErrorCode::kInvalidArgument,
                 what + ": label '" + options.label + "' is longer than 16 bytes");
  auto mkfs = find_mkfs(options);
  if (!mkfs.ok()) return std::move(mkfs).error().wrap(what);
  auto usage = measure_tree(dir);
  if (!usage.ok()) return std::move(usage).error().wrap(what);

  // Reserved inodes (1..10, lost+found) plus a tenth for directory index
  // growth; mke2fs rounds up to fill whole inode tables anyway.
  uint64_t inodes = usage->inodes + usage->inodes / 10 + 32;
  uint64_t estimate =
      usage->data_bytes + inodes * kInodeSize + usage->xattr_inodes * kBlock + kFixedOverhead;
  uint64_t size = estimate + estimate / 100 * options.headroom_percent;
  size = round_up(std::max(size, options.min_size_bytes), 1 << 20);
  if (options.writable_room_bytes != 0) {
    // The tree, the journal (64 MiB at this size) and the inode tables of
    // the whole size (a 256-byte inode per 16 KiB) come on top of the room.
    uint64_t room = options.writable_room_bytes;
    size = round_up(size + room + (64ull << 20) + (size + room) / 16384 * kInodeSize, 1 << 20);
  }

  std::string tmp = image_path + ".tmp";
  ::unlink(tmp.c_str());
  Status s = [&]() -> Status {
    VESSEL_ASSIGN_OR_RETURN(UniqueFd fd,
                            sys::open_fd(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0644));
    // A sparse file: mke2fs writes only metadata and data blocks.
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
      return Error::from_errno(errno, "size '" + tmp + "'");
    VESSEL_TRY(run_mkfs(*mkfs, dir, tmp, options, inodes));
    if (::fsync(fd.get()) != 0) return Error::from_errno(errno, "fsync '" + tmp + "'");
    if (::rename(tmp.c_str(), image_path.c_str()) != 0)
      return Error::from_errno(errno, "rename '" + tmp + "'");
    return ok_status();
  }();
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s.error().wrap(what);
  }
  return ok_status();
}

}  // namespace vessel::rootfs
