#include "guest/tar.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

namespace vessel::guest::tar {
namespace {

constexpr size_t kBlock = 512;
/// Largest PAX extended header (or GNU long name) the reader takes.
constexpr uint64_t kMaxPaxBytes = 1u << 20;
/// Longest entry or link name the reader takes (PATH_MAX).
constexpr size_t kMaxName = 4096;
/// Deepest directory nesting the writer descends (one fd per level).
constexpr int kMaxDepth = 512;
constexpr size_t kIoBuffer = 64u << 10;

// ustar header layout (POSIX.1-2001, pax(1) "ustar Interchange Format").
constexpr size_t kName = 0, kNameLen = 100;
constexpr size_t kMode = 100, kUid = 108, kGid = 116, kIdLen = 8;
constexpr size_t kSize = 124, kMtime = 136, kNumLen = 12;
constexpr size_t kChksum = 148;
constexpr size_t kType = 156;
constexpr size_t kLinkname = 157;
constexpr size_t kMagic = 257;
constexpr size_t kDevmajor = 329, kDevminor = 337;
constexpr size_t kPrefix = 345, kPrefixLen = 155;

int openat2_beneath(int dirfd, const char* path, uint64_t flags) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    if (fd >= 0 || errno != EAGAIN) return static_cast<int>(fd);
    // EAGAIN: a concurrent rename raced the lookup (openat2(2)); retry.
  }
}

std::string describe_errno(int errnum) {
  return lower_strerror(errnum);
}

// ---- writing --------------------------------------------------------------

/// A number in an octal field of `width` bytes (digits and a NUL), if it fits.
bool put_octal(uint8_t* field, size_t width, uint64_t value) {
  size_t digits = width - 1;
  if (digits < 22 && value >> (3 * digits) != 0) return false;
  for (size_t i = digits; i-- > 0;) {
    field[i] = static_cast<uint8_t>('0' + (value & 7));
    value >>= 3;
  }
  field[digits] = 0;
  return true;
}

/// "<len> <key>=<value>\n", where len counts the whole record.
void pax_record(std::string& out, const std::string& key, const std::string& value) {
  size_t body = key.size() + value.size() + 3;
  size_t len = body + 1;
  while (std::to_string(len).size() + body != len)
    len = std::to_string(len).size() + body;
  out += std::to_string(len);
  out += ' ';
  out += key;
  out += '=';
  out += value;
  out += '\n';
}

struct EntryHeader {
  std::string name;
  std::string linkname;
  char type = '0';
  uint32_t mode = 0;
  uint64_t uid = 0, gid = 0;
  uint64_t size = 0;
  int64_t mtime = 0;
  uint32_t devmajor = 0, devminor = 0;
};

/// The id of the mount `leaf` is on (statx(2) STATX_MNT_ID, Linux 5.8), or
/// 0 if unknown.
uint64_t mount_id(int dirfd, const char* leaf, bool follow) {
  struct statx stx {};
  int flags = follow ? 0 : AT_SYMLINK_NOFOLLOW;
  if (statx(dirfd, leaf, flags | AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) < 0) return 0;
  return (stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : 0;
}

class Writer {
 public:
  Writer(int out_fd, int err_fd, const WriteOptions& options)
      : out_(out_fd), err_(err_fd), options_(options) {
    buffer_.reserve(kIoBuffer);
  }

  bool failed() const { return failed_; }
  int write_errno() const { return write_errno_; }
  uint64_t problems() const { return problems_; }

  void add_top(const std::string& path, const struct stat& st, bool follow) {
    if (options_.one_file_system) root_mount_ = mount_id(AT_FDCWD, path.c_str(), follow);
    std::string name = options_.name;
    std::string trimmed = path;
    while (trimmed.size() > 1 && trimmed.back() == '/')
      trimmed.pop_back();
    std::string base = trimmed.substr(trimmed.rfind('/') + 1);
    if (name.empty()) name = base;
    if (name.empty()) name = ".";                        // "/"
    if (options_.top_only && name == ".") name = "top";  // a stat needs the entry
    if (name == "." && !S_ISDIR(st.st_mode)) name = base.empty() || base == "." ? "file" : base;
    add(AT_FDCWD, path.c_str(), name, st, follow, 0);
  }

  void finish() {
    uint8_t zero[2 * kBlock] = {};
    emit(zero, sizeof(zero));
    flush();
  }

 private:
  void problem(const std::string& what) {
    ++problems_;
    std::string line = what + "\n";
    write_all(err_, line.data(), line.size());
  }

  void emit(const void* data, size_t size) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    while (size > 0 && !failed_) {
      size_t n = std::min(size, kIoBuffer - buffer_.size());
      buffer_.insert(buffer_.end(), p, p + n);
      p += n;
      size -= n;
      if (buffer_.size() == kIoBuffer) flush();
    }
  }

  void flush() {
    if (failed_ || buffer_.empty()) return;
    if (!write_all(out_, buffer_.data(), buffer_.size())) {
      failed_ = true;
      write_errno_ = errno;
    }
    buffer_.clear();
  }

  void pad(uint64_t size) {
    static const uint8_t zero[kBlock] = {};
    size_t rest = static_cast<size_t>(size % kBlock);
    if (rest != 0) emit(zero, kBlock - rest);
  }

  /// One header block, preceded by a PAX header when a field does not fit.
  void header(const EntryHeader& h) {
    uint8_t b[kBlock] = {};
    std::string pax;
    // The name: in `name`, or split over `prefix` and `name` at a '/'.
    const std::string& n = h.name;
    if (n.size() <= kNameLen) {
      std::memcpy(b + kName, n.data(), n.size());
    } else {
      size_t split = std::string::npos;
      if (n.size() <= kPrefixLen + 1 + kNameLen) {
        for (size_t i = n.size() - kNameLen - 1; i < n.size() && i <= kPrefixLen; ++i) {
          if (n[i] == '/' && i + 1 < n.size()) {
            split = i;
            break;
          }
        }
      }
      if (split != std::string::npos) {
        std::memcpy(b + kPrefix, n.data(), split);
        std::memcpy(b + kName, n.data() + split + 1, n.size() - split - 1);
      } else {
        pax_record(pax, "path", n);
        std::memcpy(b + kName, n.data(), kNameLen);
      }
    }
    if (h.linkname.size() > kNameLen) {
      pax_record(pax, "linkpath", h.linkname);
      std::memcpy(b + kLinkname, h.linkname.data(), kNameLen);
    } else {
      std::memcpy(b + kLinkname, h.linkname.data(), h.linkname.size());
    }
    put_octal(b + kMode, kIdLen, h.mode & 07777);
    if (!put_octal(b + kUid, kIdLen, h.uid)) {
      pax_record(pax, "uid", std::to_string(h.uid));
      put_octal(b + kUid, kIdLen, 0);
    }
    if (!put_octal(b + kGid, kIdLen, h.gid)) {
      pax_record(pax, "gid", std::to_string(h.gid));
      put_octal(b + kGid, kIdLen, 0);
    }
    if (!put_octal(b + kSize, kNumLen, h.size)) {
      pax_record(pax, "size", std::to_string(h.size));
      put_octal(b + kSize, kNumLen, 0);
    }
    if (h.mtime < 0 || !put_octal(b + kMtime, kNumLen, static_cast<uint64_t>(h.mtime))) {
      pax_record(pax, "mtime", std::to_string(h.mtime));
      put_octal(b + kMtime, kNumLen, 0);
    }
    b[kType] = static_cast<uint8_t>(h.type);
    std::memcpy(b + kMagic,
                "ustar\0"
                "00",
                8);
    put_octal(b + kDevmajor, kIdLen, h.devmajor);
    put_octal(b + kDevminor, kIdLen, h.devminor);
    if (!pax.empty()) {
      EntryHeader x;
      x.name = "././@PaxHeader";
      x.type = 'x';
      x.mode = 0644;
      x.size = pax.size();
      header(x);
      emit(pax.data(), pax.size());
      pad(pax.size());
    }
    std::memset(b + kChksum, ' ', 8);
    unsigned sum = 0;
    for (uint8_t c : b)
      sum += c;
    put_octal(b + kChksum, 7, sum);  // six digits, NUL, and the space left
    emit(b, sizeof(b));
  }

  void add(int dirfd, const char* leaf, const std::string& name, const struct stat& st, bool follow,
           int depth) {
    if (failed_) return;
    bool top = depth == 0;
    // Another mount: a directory is archived empty (its mount point), the
    // rest left out. By mount id, not st_dev: overlayfs reports the st_dev
    // of the layer a non-directory comes from (filesystems/overlayfs.rst).
    bool other_mount =
        options_.one_file_system && !top && mount_id(dirfd, leaf, false) != root_mount_;
    if (other_mount && !S_ISDIR(st.st_mode)) return;
    EntryHeader h;
    h.name = name;
    h.mode = st.st_mode & 07777;
    h.uid = st.st_uid;
    h.gid = st.st_gid;
    h.mtime = st.st_mtim.tv_sec;
    int nofollow = follow ? 0 : O_NOFOLLOW;
    switch (st.st_mode & S_IFMT) {
      case S_IFREG: {
        if (st.st_nlink > 1 && !options_.top_only) {
          auto [it, inserted] = links_.emplace(std::make_pair(st.st_dev, st.st_ino), name);
          if (!inserted) {
            h.type = '1';
            h.linkname = it->second;
            header(h);
            return;
          }
        }
        h.type = '0';
        if (options_.top_only) {
          h.size = static_cast<uint64_t>(st.st_size);  // for the stat; no data follows
          header(h);
          return;
        }
        UniqueFd fd(openat(dirfd, leaf, O_RDONLY | O_CLOEXEC | O_NOCTTY | nofollow));
        if (!fd) {
          problem("read '" + name + "': " + describe_errno(errno));
          return;
        }
        h.size = static_cast<uint64_t>(st.st_size);
        header(h);
        copy_file(fd.get(), name, h.size);
        return;
      }
      case S_IFDIR: {
        bool contents_only = top && name == ".";
        std::string prefix = contents_only ? std::string() : name + "/";
        if (!contents_only) {
          h.type = '5';
          h.name = prefix;
          header(h);
        }
        if (options_.top_only) return;
        if (other_mount) return;
        if (depth >= kMaxDepth) {
          problem("'" + name + "' is nested too deep; its contents are left out");
          return;
        }
        UniqueFd fd(openat(dirfd, leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC | nofollow));
        if (!fd) {
          problem("read directory '" + name + "': " + describe_errno(errno));
          return;
        }
        std::vector<std::string> names;
        {
          int list_fd = fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
          DIR* dir = list_fd >= 0 ? fdopendir(list_fd) : nullptr;
          if (!dir) {
            if (list_fd >= 0) close(list_fd);
            problem("read directory '" + name + "': " + describe_errno(errno));
            return;
          }
          while (dirent* e = readdir(dir)) {
            if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
            names.emplace_back(e->d_name);
          }
          closedir(dir);
        }
        // Sorted: the same tree gives the same archive.
        std::sort(names.begin(), names.end());
        for (const std::string& child : names) {
          struct stat cst;
          if (fstatat(fd.get(), child.c_str(), &cst, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT) problem("stat '" + prefix + child + "': " + describe_errno(errno));
            continue;
          }
          add(fd.get(), child.c_str(), prefix + child, cst, false, depth + 1);
          if (failed_) return;
        }
        return;
      }
      case S_IFLNK: {
        std::vector<char> target(kMaxName + 1);
        ssize_t n = readlinkat(dirfd, leaf, target.data(), target.size());
        if (n < 0 || static_cast<size_t>(n) > kMaxName) {
          problem("read link '" + name + "': " + describe_errno(n < 0 ? errno : ENAMETOOLONG));
          return;
        }
        h.type = '2';
        h.linkname.assign(target.data(), static_cast<size_t>(n));
        header(h);
        return;
      }
      case S_IFCHR:
      case S_IFBLK:
        h.type = S_ISCHR(st.st_mode) ? '3' : '4';
        h.devmajor = major(st.st_rdev);
        h.devminor = minor(st.st_rdev);
        header(h);
        return;
      case S_IFIFO:
        h.type = '6';
        header(h);
        return;
      default:
        return;  // sockets: tar(1) leaves them out too
    }
  }

  void copy_file(int fd, const std::string& name, uint64_t size) {
    std::vector<uint8_t> chunk(kIoBuffer);
    uint64_t done = 0;
    while (done < size && !failed_) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), size - done));
      ssize_t n = read(fd, chunk.data(), want);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        problem(n < 0 ? "read '" + name + "': " + describe_errno(errno)
                      : "'" + name + "' shrank while it was copied; padded with zeros");
        std::fill(chunk.begin(), chunk.end(), 0);
        while (done < size && !failed_) {
          size_t z = static_cast<size_t>(std::min<uint64_t>(chunk.size(), size - done));
          emit(chunk.data(), z);
          done += z;
        }
        break;
      }
      emit(chunk.data(), static_cast<size_t>(n));
      done += static_cast<uint64_t>(n);
    }
    pad(size);
  }

  int out_, err_;
  const WriteOptions& options_;
  std::vector<uint8_t> buffer_;
  bool failed_ = false;
  int write_errno_ = 0;
  uint64_t problems_ = 0;
  uint64_t root_mount_ = 0;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

// ---- reading --------------------------------------------------------------

class Input {
 public:
  explicit Input(int fd) : fd_(fd), buffer_(kIoBuffer) {}

  /// Reads exactly `size` bytes; false at EOF or on an error (errno_ set).
  bool read(void* out, size_t size) {
    uint8_t* p = static_cast<uint8_t*>(out);
    while (size > 0) {
      if (pos_ == end_ && !fill()) return false;
      size_t n = std::min(size, end_ - pos_);
      std::memcpy(p, buffer_.data() + pos_, n);
      pos_ += n;
      p += n;
      size -= n;
    }
    return true;
  }
  /// Like read(), handing out chunks of the buffer to `fn(data, n)`.
  template <typename Fn>
  bool stream(uint64_t size, Fn fn) {
    while (size > 0) {
      if (pos_ == end_ && !fill()) return false;
      size_t n = static_cast<size_t>(std::min<uint64_t>(size, end_ - pos_));
      if (!fn(buffer_.data() + pos_, n)) return false;
      pos_ += n;
      size -= n;
    }
    return true;
  }
  /// Reads and drops what is left until EOF.
  void drain() {
    while (fill()) {
    }
  }
  /// The errno of the last failed read, 0 for EOF.
  int error() const { return errno_; }

 private:
  bool fill() {
    pos_ = end_ = 0;
    for (;;) {
      ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        errno_ = n < 0 ? errno : 0;
        return false;
      }
      end_ = static_cast<size_t>(n);
      return true;
    }
  }
  int fd_;
  std::vector<uint8_t> buffer_;
  size_t pos_ = 0, end_ = 0;
  int errno_ = 0;
};

/// An octal field (leading spaces, digits, then NUL or space), or GNU's
/// base-256 (the first byte's high bit set). False if malformed or above
/// 2^63.
bool get_number(const uint8_t* field, size_t width, uint64_t& out) {
  out = 0;
  if (field[0] & 0x80) {
    // Base-256: big-endian, the first byte's top bit is the marker; a
    // negative number (0xff marker) is refused.
    if (field[0] == 0xff) return false;
    uint64_t v = field[0] & 0x3f;
    for (size_t i = 1; i < width; ++i) {
      if (v >> 55) return false;
      v = (v << 8) | field[i];
    }
    out = v;
    return v >> 63 == 0;
  }
  size_t i = 0;
  while (i < width && field[i] == ' ')
    ++i;
  for (; i < width && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (out >> 60) return false;
    out = out * 8 + static_cast<uint64_t>(field[i] - '0');
  }
  // Digits end with a NUL or a space, or at the field's end; none is 0.
  return i == width || field[i] == 0 || field[i] == ' ';
}

std::string field_string(const uint8_t* field, size_t width) {
  size_t n = 0;
  while (n < width && field[n] != 0)
    ++n;
  return std::string(reinterpret_cast<const char*>(field), n);
}

bool parse_decimal(const std::string& s, uint64_t& out, bool allow_fraction) {
  out = 0;
  size_t i = 0;
  if (s.empty()) return false;
  for (; i < s.size() && s[i] != '.'; ++i) {
    if (s[i] < '0' || s[i] > '9' || out > (UINT64_MAX - 9) / 10) return false;
    out = out * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  return i == s.size() || (allow_fraction && i > 0);
}

/// The PAX records the reader uses; the rest (atime, xattrs, ...) is ignored.
struct PaxOverrides {
  bool has_path = false, has_linkpath = false, has_size = false, has_uid = false, has_gid = false,
       has_mtime = false;
  std::string path, linkpath;
  uint64_t size = 0, uid = 0, gid = 0;
  int64_t mtime = 0;
};

/// Parses "<len> <key>=<value>\n" records; false if one is malformed.
bool parse_pax(const std::string& data, PaxOverrides& pax) {
  size_t pos = 0;
  while (pos < data.size()) {
    size_t space = data.find(' ', pos);
    if (space == std::string::npos || space == pos || space - pos > 8) return false;
    uint64_t len = 0;
    if (!parse_decimal(data.substr(pos, space - pos), len, false)) return false;
    if (len < space - pos + 3 || len > data.size() - pos || data[pos + len - 1] != '\n') {
      return false;
    }
    std::string record = data.substr(space + 1, pos + len - 1 - (space + 1));
    pos += len;
    size_t eq = record.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    std::string key = record.substr(0, eq), value = record.substr(eq + 1);
    uint64_t v = 0;
    if (key == "path") {
      pax.has_path = true;
      pax.path = value;
    } else if (key == "linkpath") {
      pax.has_linkpath = true;
      pax.linkpath = value;
    } else if (key == "size") {
      if (!parse_decimal(value, v, false)) return false;
      pax.has_size = true;
      pax.size = v;
    } else if (key == "uid" || key == "gid") {
      if (!parse_decimal(value, v, false) || v > 0xfffffffeu) return false;
      (key == "uid" ? pax.has_uid : pax.has_gid) = true;
      (key == "uid" ? pax.uid : pax.gid) = v;
    } else if (key == "mtime") {
      // Seconds, possibly negative and with a fraction (dropped).
      bool negative = !value.empty() && value[0] == '-';
      if (!parse_decimal(value.substr(negative ? 1 : 0), v, true) || v > (1ull << 62)) return false;
      pax.has_mtime = true;
      pax.mtime = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    }
  }
  return true;
}

/// The components of an archive name beneath the destination, without "."
/// and empty ones; false for an absolute name or one with "..".
bool split_name(const std::string& name, std::vector<std::string>& parts) {
  parts.clear();
  if (name.empty() || name[0] == '/' || name.size() > kMaxName ||
      name.find('\0') != std::string::npos) {
    return false;
  }
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t next = name.find('/', pos);
    if (next == std::string::npos) next = name.size();
    std::string part = name.substr(pos, next - pos);
    if (part == "..") return false;
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
    pos = next + 1;
  }
  return true;
}

std::string join(const std::vector<std::string>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

class Extractor {
 public:
  Extractor(int in_fd, int dest_fd, const ExtractOptions& options)
      : in_(in_fd), dest_(dest_fd), options_(options) {}

  Status run() {
    uint8_t b[kBlock];
    PaxOverrides pax;
    std::string gnu_name, gnu_link;
    bool have_gnu_name = false, have_gnu_link = false;
    for (;;) {
      if (!in_.read(b, kBlock)) return truncated("a header");
      if (std::all_of(b, b + kBlock, [](uint8_t c) { return c == 0; })) {
        // The end: two zero blocks; a lone one followed by EOF is accepted.
        in_.read(b, kBlock);
        in_.drain();
        return finish();
      }
      uint64_t stored = 0;
      if (!get_number(b + kChksum, 8, stored)) return Status(EINVAL, "bad tar header checksum");
      uint64_t sum = 0;
      int64_t signed_sum = 0;
      for (size_t i = 0; i < kBlock; ++i) {
        uint8_t c = (i >= kChksum && i < kChksum + 8) ? ' ' : b[i];
        sum += c;
        signed_sum += static_cast<int8_t>(c);
      }
      if (stored != sum && static_cast<int64_t>(stored) != signed_sum) {
        return Status(EINVAL, "bad tar header checksum (not a tar archive?)");
      }
      char type = static_cast<char>(b[kType]);
      uint64_t size = 0, mode = 0, uid = 0, gid = 0, mtime = 0, major_n = 0, minor_n = 0;
      if (!get_number(b + kSize, kNumLen, size) || !get_number(b + kMode, kIdLen, mode) ||
          !get_number(b + kUid, kIdLen, uid) || !get_number(b + kGid, kIdLen, gid) ||
          !get_number(b + kMtime, kNumLen, mtime)) {
        return Status(EINVAL, "bad number in tar header");
      }
      if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
        if (size > kMaxPaxBytes) return Status(EINVAL, "tar extended header over 1 MiB");
        std::string data(static_cast<size_t>(size), '\0');
        if (!in_.read(data.data(), data.size()) || !skip_padding(size)) {
          return truncated("an extended header");
        }
        if (type == 'x') {
          if (!parse_pax(data, pax)) return Status(EINVAL, "malformed PAX extended header");
        } else if (type == 'L' || type == 'K') {
          // GNU long names: the data is the name, NUL-terminated.
          std::string value = data.substr(0, data.find('\0'));
          (type == 'L' ? gnu_name : gnu_link) = value;
          (type == 'L' ? have_gnu_name : have_gnu_link) = true;
        }
        continue;  // 'g' (global) records are ignored
      }
      Entry e;
      e.type = type == '\0' ? '0' : type;
      e.name = field_string(b + kName, kNameLen);
      if (std::memcmp(b + kMagic, "ustar", 5) == 0 && b[kPrefix] != 0) {
        e.name = field_string(b + kPrefix, kPrefixLen) + "/" + e.name;
      }
      e.linkname = field_string(b + kLinkname, kNameLen);
      if (have_gnu_name) e.name = gnu_name;
      if (have_gnu_link) e.linkname = gnu_link;
      if (pax.has_path) e.name = pax.path;
      if (pax.has_linkpath) e.linkname = pax.linkpath;
      e.size = pax.has_size ? pax.size : size;
      e.mode = static_cast<uint32_t>(mode & 07777);
      e.uid = pax.has_uid ? pax.uid : uid;
      e.gid = pax.has_gid ? pax.gid : gid;
      e.mtime = pax.has_mtime ? pax.mtime : static_cast<int64_t>(mtime);
      if (!get_number(b + kDevmajor, kIdLen, major_n) ||
          !get_number(b + kDevminor, kIdLen, minor_n)) {
        major_n = minor_n = 0;
      }
      e.devmajor = static_cast<uint32_t>(major_n);
      e.devminor = static_cast<uint32_t>(minor_n);
      pax = PaxOverrides();
      have_gnu_name = have_gnu_link = false;
      gnu_name.clear();
      gnu_link.clear();
      if (e.uid > 0xfffffffeu || e.gid > 0xfffffffeu) {
        return Status(EINVAL, "tar entry '" + e.name + "': uid or gid out of range");
      }
      Status s = apply(e);
      if (!s.ok()) return s;
    }
  }

 private:
  struct Entry {
    std::string name, linkname;
    char type = '0';
    uint32_t mode = 0;
    uint64_t uid = 0, gid = 0, size = 0;
    int64_t mtime = 0;
    uint32_t devmajor = 0, devminor = 0;
  };

  Status truncated(const char* what) {
    int err = in_.error();
    if (err != 0) return Status::from_errno(err, std::string("read the archive: ") + what);
    return Status(EINVAL, std::string("unexpected end of the archive in ") + what);
  }

  bool skip_padding(uint64_t size) {
    uint8_t pad[kBlock];
    size_t rest = static_cast<size_t>(size % kBlock);
    return rest == 0 || in_.read(pad, kBlock - rest);
  }

  bool skip_data(uint64_t size) {
    return in_.stream(size, [](const uint8_t*, size_t) { return true; }) && skip_padding(size);
  }

  Status bad(const Entry& e, const std::string& why) {
    return Status(EINVAL, "tar entry '" + e.name + "': " + why);
  }

  Status failed(const Entry& e, const std::string& what, int errnum) {
    return Status(errnum, "tar entry '" + e.name + "': " + what + ": " + lower_strerror(errnum));
  }

  /// Opens the directory made of the first `count` parts beneath the
  /// destination, one component at a time, never through a symlink;
  /// missing ones are created when `create`.
  Result<UniqueFd> open_parent(const Entry& e, const std::vector<std::string>& parts, size_t count,
                               bool create) {
    UniqueFd dir(fcntl(dest_, F_DUPFD_CLOEXEC, 3));
    if (!dir) return failed(e, "open the destination", errno);
    for (size_t i = 0; i < count; ++i) {
      const char* part = parts[i].c_str();
      int fd = openat2_beneath(dir.get(), part, O_PATH | O_DIRECTORY);
      if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(dir.get(), part, 0755) < 0 && errno != EEXIST) {
          return failed(e, "create directory '" + join(parts, i + 1) + "'", errno);
        }
        fd = openat2_beneath(dir.get(), part, O_PATH | O_DIRECTORY);
      }
      if (fd < 0) {
        if (errno == ELOOP || errno == EXDEV) {
          return Status(EINVAL, "tar entry '" + e.name + "': '" + join(parts, i + 1) +
                                    "' is a symlink; refusing to write through it");
        }
        return failed(e, "open directory '" + join(parts, i + 1) + "'", errno);
      }
      dir.reset(fd);
    }
    return dir;
  }

  /// Makes room for a new entry `leaf` in `parent`: removes a file there, or
  /// an empty directory unless the entry is a directory too. True (in
  /// `is_dir`) when a directory stays to merge into.
  Status clear_leaf(const Entry& e, int parent, const char* leaf, bool new_is_dir, bool& keep_dir) {
    keep_dir = false;
    struct stat st;
    if (fstatat(parent, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT) return {};
      return failed(e, "stat", errno);
    }
    if (options_.no_overwrite_dir_non_dir && S_ISDIR(st.st_mode) != new_is_dir) {
      std::string name = e.name;
      while (name.size() > 1 && name.back() == '/')
        name.pop_back();
      return Status(EEXIST, S_ISDIR(st.st_mode)
                                ? "cannot overwrite directory '" + name + "' with a non-directory"
                                : "cannot overwrite non-directory '" + name + "' with a directory");
    }
    if (S_ISDIR(st.st_mode)) {
      if (new_is_dir) {
        keep_dir = true;
        return {};
      }
      if (unlinkat(parent, leaf, AT_REMOVEDIR) < 0) return failed(e, "replace directory", errno);
      return {};
    }
    if (unlinkat(parent, leaf, 0) < 0) return failed(e, "replace", errno);
    return {};
  }

  /// Owner, then mode (chown clears setuid), of a non-symlink at `fd`.
  Status set_owner_mode(const Entry& e, int fd) {
    if (options_.keep_owner &&
        fchown(fd, static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid)) < 0) {
      return failed(e, "chown", errno);
    }
    if (fchmod(fd, e.mode) < 0) return failed(e, "chmod", errno);
    return {};
  }

  timespec mtime_of(const Entry& e) { return timespec{static_cast<time_t>(e.mtime), 0}; }

  Status apply(const Entry& e) {
    std::vector<std::string> parts;
    if (!split_name(e.name, parts)) {
      return bad(e, "absolute or with '..': it would land outside the destination");
    }
    bool is_dir = e.type == '5';
    if (parts.empty()) {
      // The destination itself ("./"): its metadata is left alone.
      if (!is_dir) return bad(e, "not a directory, but names the destination");
      return skip_data(e.size) ? Status() : truncated("an entry");
    }
    Result<UniqueFd> parent = open_parent(e, parts, parts.size() - 1, true);
    if (!parent.ok()) return parent.status();
    int pfd = parent.value().get();
    const char* leaf = parts.back().c_str();
    bool keep_dir = false;
    switch (e.type) {
      case '0':
      case '7': {  // regular (7: contiguous, a regular file everywhere now)
        if (Status s = clear_leaf(e, pfd, leaf, false, keep_dir); !s.ok()) return s;
        UniqueFd fd(openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd) return failed(e, "create", errno);
        int write_errno = 0;
        bool ok = in_.stream(e.size, [&](const uint8_t* data, size_t n) {
          if (write_errno == 0 && !write_all(fd.get(), data, n)) write_errno = errno ? errno : EIO;
          return true;
        });
        if (!ok || !skip_padding(e.size)) return truncated("a file's data");
        if (write_errno != 0) return failed(e, "write", write_errno);
        if (Status s = set_owner_mode(e, fd.get()); !s.ok()) return s;
        timespec times[2] = {{0, UTIME_OMIT}, mtime_of(e)};
        futimens(fd.get(), times);
        return {};
      }
      case '5': {
        if (Status s = clear_leaf(e, pfd, leaf, true, keep_dir); !s.ok()) return s;
        if (!keep_dir && mkdirat(pfd, leaf, 0700) < 0) return failed(e, "mkdir", errno);
        UniqueFd fd(openat2_beneath(pfd, leaf, O_RDONLY | O_DIRECTORY));
        if (!fd) return failed(e, "open", errno);
        if (Status s = set_owner_mode(e, fd.get()); !s.ok()) return s;
        // Its mtime is set at the end: extracting its entries changes it.
        dir_times_.emplace_back(join(parts, parts.size()), e.mtime);
        return skip_data(e.size) ? Status() : truncated("an entry");
      }
      case '2': {
        if (e.linkname.empty() || e.linkname.size() > kMaxName ||
            e.linkname.find('\0') != std::string::npos) {
          return bad(e, "bad symlink target");
        }
        if (Status s = clear_leaf(e, pfd, leaf, false, keep_dir); !s.ok()) return s;
        // The target is only text: nothing is written through it, and later
        // entries refuse to go through the link.
        if (symlinkat(e.linkname.c_str(), pfd, leaf) < 0) return failed(e, "symlink", errno);
        if (options_.keep_owner && fchownat(pfd, leaf, static_cast<uid_t>(e.uid),
                                            static_cast<gid_t>(e.gid), AT_SYMLINK_NOFOLLOW) < 0) {
          return failed(e, "chown", errno);
        }
        timespec times[2] = {{0, UTIME_OMIT}, mtime_of(e)};
        utimensat(pfd, leaf, times, AT_SYMLINK_NOFOLLOW);
        return skip_data(e.size) ? Status() : truncated("an entry");
      }
      case '1': {
        std::vector<std::string> target;
        if (!split_name(e.linkname, target) || target.empty()) {
          return bad(e, "hardlink target '" + e.linkname + "' is outside the destination");
        }
        if (target == parts) return skip_data(e.size) ? Status() : truncated("an entry");
        Result<UniqueFd> tparent = open_parent(e, target, target.size() - 1, false);
        if (!tparent.ok()) return tparent.status();
        if (Status s = clear_leaf(e, pfd, leaf, false, keep_dir); !s.ok()) return s;
        // No AT_SYMLINK_FOLLOW: a symlink target is linked as the link itself.
        if (linkat(tparent.value().get(), target.back().c_str(), pfd, leaf, 0) < 0) {
          return failed(e, "hardlink to '" + e.linkname + "'", errno);
        }
        return skip_data(e.size) ? Status() : truncated("an entry");
      }
      case '3':
      case '4':
      case '6': {
        if (!options_.devices && e.type != '6')
          return skip_data(e.size) ? Status() : truncated("an entry");
        if (Status s = clear_leaf(e, pfd, leaf, false, keep_dir); !s.ok()) return s;
        mode_t kind = e.type == '3' ? S_IFCHR : e.type == '4' ? S_IFBLK : S_IFIFO;
        dev_t dev = e.type == '6' ? 0 : makedev(e.devmajor, e.devminor);
        if (mknodat(pfd, leaf, kind | 0600, dev) < 0) return failed(e, "mknod", errno);
        if (options_.keep_owner && fchownat(pfd, leaf, static_cast<uid_t>(e.uid),
                                            static_cast<gid_t>(e.gid), AT_SYMLINK_NOFOLLOW) < 0) {
          return failed(e, "chown", errno);
        }
        // Just created, not a symlink: fchmodat cannot follow one here.
        if (fchmodat(pfd, leaf, e.mode, 0) < 0) return failed(e, "chmod", errno);
        timespec times[2] = {{0, UTIME_OMIT}, mtime_of(e)};
        utimensat(pfd, leaf, times, AT_SYMLINK_NOFOLLOW);
        return skip_data(e.size) ? Status() : truncated("an entry");
      }
      default:
        // Sockets and vendor types: tar(1) skips what it does not know too.
        return skip_data(e.size) ? Status() : truncated("an entry");
    }
  }

  Status finish() {
    // Innermost first, though the order does not matter for mtimes.
    for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
      // futimens(3) needs a real open: an O_PATH fd is refused (EBADF).
      UniqueFd fd(openat2_beneath(dest_, it->first.c_str(), O_RDONLY | O_DIRECTORY));
      if (!fd) continue;  // replaced by a later entry
      timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(it->second), 0}};
      futimens(fd.get(), times);
    }
    return {};
  }

  Input in_;
  int dest_;
  const ExtractOptions& options_;
  std::vector<std::pair<std::string, int64_t>> dir_times_;
};

}  // namespace

Result<uint64_t> write_archive(const std::string& path, const struct stat& top, bool follow_top,
                               const WriteOptions& options, int out_fd, int err_fd) {
  Writer w(out_fd, err_fd, options);
  w.add_top(path, top, follow_top);
  w.finish();
  if (w.failed())
    return Status::from_errno(w.write_errno() ? w.write_errno() : EIO, "write the archive");
  return w.problems();
}

Status extract_archive(int in_fd, int dest_fd, const ExtractOptions& options) {
  return Extractor(in_fd, dest_fd, options).run();
}

}  // namespace vessel::guest::tar
