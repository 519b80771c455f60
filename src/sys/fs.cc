#include "sys/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <vector>

namespace vessel::sys {

Result<UniqueFd> open_fd(const std::string& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Error::from_errno(errno, "open '" + path + "'");
  return UniqueFd(fd);
}

Result<std::string> read_file(const std::string& path, size_t limit) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, open_fd(path, O_RDONLY));
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno(errno, "read '" + path + "'");
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit)
      return Error(ErrorCode::kInvalidArgument,
                   "read '" + path + "': larger than " + std::to_string(limit) + " bytes");
  }
  return out;
}

Result<FileLock> FileLock::acquire(const std::string& path, bool shared) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, open_fd(path, O_RDWR | O_CREAT, 0600));
  int r;
  do {
    r = ::flock(fd.get(), shared ? LOCK_SH : LOCK_EX);
  } while (r != 0 && errno == EINTR);
  if (r != 0) return Error::from_errno(errno, "lock '" + path + "'");
  return FileLock(std::move(fd));
}

Result<std::optional<FileLock>> FileLock::try_acquire(const std::string& path) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, open_fd(path, O_RDONLY));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return std::optional<FileLock>();
    return Error::from_errno(errno, "lock '" + path + "'");
  }
  return std::optional<FileLock>(FileLock(std::move(fd)));
}

Status write_all(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd pfd{fd, POLLOUT, 0};
        ::poll(&pfd, 1, -1);
        continue;
      }
      return Error::from_errno(errno, "write");
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return ok_status();
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp";
  VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, open_fd(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode));
  Status s = write_all(fd.get(), data.data(), data.size());
  if (s.ok() && ::fsync(fd.get()) != 0) s = Error::from_errno(errno, "fsync '" + tmp + "'");
  fd.reset();
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    s = Error::from_errno(errno, "rename '" + tmp + "'");
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

Status make_dirs(const std::string& path, mode_t mode) {
  if (path.empty()) return ok_status();
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST)
      return Error::from_errno(errno, "mkdir '" + cur + "'");
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Error::from_errno(errno, "stat '" + path + "'");
  if (!S_ISDIR(st.st_mode))
    return Error(ErrorCode::kAlreadyExists, "'" + path + "' exists and is not a directory");
  return ok_status();
}

namespace {

// remove_at holds a directory open per level. A tree an untrusted archive
// made may nest ~2048 deep (a 4096-byte name of one-letter components),
// past the usual soft limit of 1024 open files: the soft limit goes up to
// the hard one then, as Go's runtime does for every program.
bool raise_open_file_limit() {
  rlimit r;
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= r.rlim_max) return false;
  r.rlim_cur = r.rlim_max;
  return ::setrlimit(RLIMIT_NOFILE, &r) == 0;
}

Status remove_at(int dirfd, const char* name, dev_t dev) {
  struct stat st;
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? ok_status()
                           : Error::from_errno(errno, std::string("stat '") + name + "'");
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != dev)
      return Error(ErrorCode::kFailedPrecondition, std::string("'") + name + "' is a mount point");
    int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = ::openat(dirfd, name, flags);
    if (fd < 0 && errno == EMFILE && raise_open_file_limit()) fd = ::openat(dirfd, name, flags);
    if (fd < 0) return Error::from_errno(errno, std::string("open '") + name + "'");
    DIR* d = ::fdopendir(fd);
    if (!d) {
      ::close(fd);
      return Error::from_errno(errno, "fdopendir");
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    Status s;
    for (const auto& n : names) {
      s = remove_at(::dirfd(d), n.c_str(), dev);
      if (!s.ok()) break;
    }
    ::closedir(d);
    if (!s.ok()) return s;
    if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
      return Error::from_errno(errno, std::string("rmdir '") + name + "'");
    return ok_status();
  }
  if (::unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
    return Error::from_errno(errno, std::string("unlink '") + name + "'");
  return ok_status();
}

}  // namespace

Status remove_tree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0)
    return errno == ENOENT ? ok_status() : Error::from_errno(errno, "stat '" + path + "'");
  Status s = remove_at(AT_FDCWD, path.c_str(), st.st_dev);
  if (!s.ok()) return s.error().wrap("remove '" + path + "'");
  return s;
}

Result<std::vector<std::string>> list_dir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return Error::from_errno(errno, "open directory '" + path + "'");
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  return names;
}

Result<std::string> make_temp_dir(const std::string& parent, const std::string& prefix) {
  std::string templ = parent + "/" + prefix + "XXXXXX";
  if (!::mkdtemp(templ.data())) return Error::from_errno(errno, "mkdtemp in '" + parent + "'");
  return templ;
}

Status copy_sparse(const std::string& from, const std::string& to, uint64_t size) {
  VESSEL_ASSIGN_OR_RETURN(UniqueFd in, open_fd(from, O_RDONLY));
  struct stat st;
  if (::fstat(in.get(), &st) != 0) return Error::from_errno(errno, "stat '" + from + "'");
  VESSEL_ASSIGN_OR_RETURN(UniqueFd out, open_fd(to, O_WRONLY | O_CREAT | O_EXCL, 0600));
  auto fail = [&](const std::string& what) {
    Error e = Error::from_errno(errno, what);
    ::unlink(to.c_str());
    return e;
  };
  off_t end = st.st_size;
  off_t pos = 0;
  while (pos < end) {
    off_t data = ::lseek(in.get(), pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole is left
    if (data < 0) return fail("seek in '" + from + "'");
    off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0) return fail("seek in '" + from + "'");
    loff_t src = data, dst = data;
    while (src < hole) {
      ssize_t n =
          ::copy_file_range(in.get(), &src, out.get(), &dst, static_cast<size_t>(hole - src), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail("copy '" + from + "' to '" + to + "'");
      if (n == 0) break;  // the source shrank
    }
    pos = hole;
  }
  off_t length = std::max<off_t>(end, static_cast<off_t>(size));
  if (::ftruncate(out.get(), length) != 0) return fail("size '" + to + "'");
  if (::fsync(out.get()) != 0) return fail("sync '" + to + "'");
  return ok_status();
}

Result<std::string> random_hex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (::getrandom(buf.data(), buf.size(), 0) != static_cast<ssize_t>(buf.size()))
    return Error::from_errno(errno, "getrandom");
  static const char* const kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : buf) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace vessel::sys
