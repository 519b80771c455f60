// libFuzzer target for the guest's tar extractor
// (guest::tar::extract_archive), which vessel-init runs on archives that
// clients send: `vessel cp` and the Docker API's PUT /containers/{id}/archive.
//
// Input: byte 0 selects the options and how the archive arrives, the rest is
// the archive.
//   bit 0  keep_owner            bit 1  no_overwrite_dir_non_dir
//   bit 2  devices               bit 3  fix the header checksums first
//   bit 4  through a pipe fed by a thread (otherwise a memfd)
//   bits 5-7  the size of the pipe writes (kChunks)
// Bit 3 is a help for the fuzzer, which cannot keep a checksum right by
// mutation: the harness walks the headers as the extractor would (sizes
// only, no PAX) and writes their checksums. Without it, the checksum check
// itself is fuzzed.
//
// Layout per input, under a per-process parent (TMPDIR or /tmp,
// vessel-guest-tar-fuzz-XXXXXX, removed at exit):
//   <parent>/N/dest                      the destination
//   <parent>/N/dest/out -> ../outside    a symlink out, made beforehand
//   <parent>/N/dest/abs -> <parent>/N/outside
//   <parent>/N/dest/sentinel -> ../outside/sentinel
//   <parent>/N/outside/sentinel          "sentinel\n", 0644
// Beyond "no crash, no sanitizer report" it checks and aborts when one fails:
//   - <parent> holds only N, and N only dest and outside;
//   - outside holds only the sentinel, and neither changed: same inode,
//     type, mode, owner, link count (1) and contents;
//   - dest is the same directory with the same mode and owner;
//   - no non-directory under dest is the sentinel's inode, and every one
//     has all its links under dest (st_nlink equals the links found there),
//     so nothing was hardlinked from outside the destination;
//   - on success the whole input was read (tar.h: "reads in_fd to its end").
// The tree is then removed without following symlinks (sys::remove_tree).
//
// Bounds: inputs over 1 MiB are skipped (the extractor's own bound on a PAX
// header is 1 MiB; file data must be in the input). Nothing is fsynced.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "guest/tar.h"
#include "sys/fs.h"

namespace vessel::guest::tar {
namespace {

constexpr size_t kMaxInput = 1u << 20;
constexpr size_t kBlock = 512;
constexpr size_t kChunks[8] = {1, 7, 100, 511, 512, 513, 4096, 65537};
constexpr char kSentinelData[] = "sentinel\n";

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "guest_tar_fuzz: %s\n", what.c_str());
  std::abort();
}

void check(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::abort();
}

// The per-process parent directory, removed at exit. Heap-allocated so it
// outlives static destruction and the atexit handler can still name it.
const std::string& parent_dir() {
  static const std::string* parent = [] {
    // A failed extraction stops reading: the pipe's writer gets EPIPE.
    ::signal(SIGPIPE, SIG_IGN);
    // A 4096-byte name nests about 2048 directories; the walk below and
    // sys::remove_tree hold one fd per level.
    struct rlimit nofile;
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    const char* tmp = std::getenv("TMPDIR");
    auto* templ =
        new std::string(std::string(tmp && *tmp ? tmp : "/tmp") + "/vessel-guest-tar-fuzz-XXXXXX");
    if (!::mkdtemp(templ->data())) die("guest_tar_fuzz: mkdtemp");
    std::atexit([] { (void)sys::remove_tree(*parent); });
    return templ;
  }();
  return *parent;
}

struct stat lstat_or_die(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) fail("lstat '" + path + "': " + std::strerror(errno));
  return st;
}

std::vector<std::string> names_in(const std::string& dir) {
  auto names = sys::list_dir(dir);
  if (!names.ok()) fail(names.error().message());
  return *names;
}

bool same_identity(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_mode == b.st_mode &&
         a.st_uid == b.st_uid && a.st_gid == b.st_gid;
}

/// Walks `name` in `dirfd` without following symlinks: gives each
/// directory 0700 (so a non-root run can read and remove what an archive
/// left without permissions), and counts the links found to each
/// non-directory inode. By fd, not by path: a 4096-byte entry name below
/// dest is longer than PATH_MAX as a path from here.
void walk(int dirfd, const char* name, std::map<std::pair<dev_t, ino_t>, nlink_t>& found,
          std::map<std::pair<dev_t, ino_t>, struct stat>& stats) {
  struct stat st;
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) die("guest_tar_fuzz: fstatat");
  if (!S_ISDIR(st.st_mode)) {
    ++found[{st.st_dev, st.st_ino}];
    stats[{st.st_dev, st.st_ino}] = st;
    return;
  }
  if ((st.st_mode & 0700) != 0700) ::fchmodat(dirfd, name, 0700, 0);
  int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR* dir = fd >= 0 ? ::fdopendir(fd) : nullptr;
  if (!dir) die("guest_tar_fuzz: open directory");
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
      names.emplace_back(e->d_name);
  }
  for (const std::string& n : names)
    walk(::dirfd(dir), n.c_str(), found, stats);
  ::closedir(dir);
}

/// The extractor's header walk, sizes only, writing each header's checksum.
void fix_checksums(std::vector<uint8_t>& tar) {
  size_t pos = 0;
  while (tar.size() - pos >= kBlock) {
    uint8_t* b = tar.data() + pos;
    pos += kBlock;
    bool zero = true;
    for (size_t i = 0; i < kBlock && zero; ++i)
      zero = b[i] == 0;
    if (zero) continue;
    std::memset(b + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < kBlock; ++i)
      sum += b[i];
    char digits[8];
    std::snprintf(digits, sizeof(digits), "%06o", sum & 0777777);
    std::memcpy(b + 148, digits, 7);  // six digits and a NUL; the space stays
    uint64_t size = 0;
    for (size_t i = 124; i < 136 && b[i] >= '0' && b[i] <= '7'; ++i)
      size = size * 8 + static_cast<uint64_t>(b[i] - '0');
    uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    if (padded < size || padded >= tar.size() - pos) break;
    pos += static_cast<size_t>(padded);
  }
}

UniqueFd open_dir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) die("guest_tar_fuzz: open dest");
  return fd;
}

void make_symlink(const std::string& target, const std::string& path) {
  if (::symlink(target.c_str(), path.c_str()) != 0) die("guest_tar_fuzz: symlink");
}

}  // namespace
}  // namespace vessel::guest::tar

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel;
  using namespace vessel::guest::tar;
  if (size == 0 || size > kMaxInput) return 0;
  const std::string& parent = parent_dir();
  static uint64_t counter = 0;

  const uint8_t flags = data[0];
  ExtractOptions options;
  options.keep_owner = flags & 1;
  options.no_overwrite_dir_non_dir = flags & 2;
  options.devices = flags & 4;
  std::vector<uint8_t> tar(data + 1, data + size);
  if (flags & 8) fix_checksums(tar);
  const bool through_pipe = flags & 16;
  const size_t chunk = kChunks[flags >> 5];

  // The scratch tree.
  const std::string leaf = std::to_string(counter++);
  const std::string top = parent + "/" + leaf;
  const std::string dest = top + "/dest", outside = top + "/outside";
  const std::string sentinel = outside + "/sentinel";
  for (const std::string* dir : {&top, &dest, &outside})
    if (::mkdir(dir->c_str(), 0755) != 0) die("guest_tar_fuzz: mkdir");
  {
    UniqueFd fd(::open(sentinel.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd || ::write(fd.get(), kSentinelData, sizeof(kSentinelData) - 1) !=
                   static_cast<ssize_t>(sizeof(kSentinelData) - 1)) {
      die("guest_tar_fuzz: write sentinel");
    }
  }
  make_symlink("../outside", dest + "/out");
  make_symlink(outside, dest + "/abs");
  make_symlink("../outside/sentinel", dest + "/sentinel");
  const struct stat dest_before = lstat_or_die(dest);
  const struct stat outside_before = lstat_or_die(outside);
  const struct stat sentinel_before = lstat_or_die(sentinel);

  // The archive, through a memfd or a pipe written in `chunk`-byte pieces.
  UniqueFd in;
  UniqueFd pipe_write;
  size_t written = 0;
  std::thread writer;
  if (through_pipe) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) die("guest_tar_fuzz: pipe2");
    in.reset(p[0]);
    pipe_write.reset(p[1]);
    writer = std::thread([&] {
      while (written < tar.size()) {
        size_t n = std::min(chunk, tar.size() - written);
        ssize_t w = ::write(pipe_write.get(), tar.data() + written, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;  // EPIPE: the extractor stopped reading
        written += static_cast<size_t>(w);
      }
      pipe_write.reset();
    });
  } else {
    in.reset(::memfd_create("guest-tar", MFD_CLOEXEC));
    if (!in) die("guest_tar_fuzz: memfd_create");
    for (size_t off = 0; off < tar.size();) {
      ssize_t n = ::write(in.get(), tar.data() + off, tar.size() - off);
      if (n <= 0) die("guest_tar_fuzz: write memfd");
      off += static_cast<size_t>(n);
    }
    if (::lseek(in.get(), 0, SEEK_SET) != 0) die("guest_tar_fuzz: lseek");
  }

  guest::Status s;
  {
    UniqueFd dest_fd = open_dir(dest);
    s = extract_archive(in.get(), dest_fd.get(), options);
  }
  if (through_pipe) {
    const bool ok = s.ok();
    in.reset();  // unblocks a writer the extractor stopped reading
    writer.join();
    check(!ok || written == tar.size(), "succeeded without reading the whole pipe");
  } else {
    check(!s.ok() || ::lseek(in.get(), 0, SEEK_CUR) == static_cast<off_t>(tar.size()),
          "succeeded without reading the memfd to its end");
  }

  // Nothing beside dest and outside, nothing new in outside.
  std::vector<std::string> names = names_in(parent);
  check(names.size() == 1 && names[0] == leaf, "an entry appeared beside the scratch tree");
  names = names_in(top);
  check(names.size() == 2 && ((names[0] == "dest" && names[1] == "outside") ||
                              (names[0] == "outside" && names[1] == "dest")),
        "an entry appeared beside dest");
  names = names_in(outside);
  check(names.size() == 1 && names[0] == "sentinel", "an entry appeared in outside");

  // outside, the sentinel and dest are what they were.
  check(same_identity(lstat_or_die(outside), outside_before), "outside changed");
  const struct stat sentinel_after = lstat_or_die(sentinel);
  check(same_identity(sentinel_after, sentinel_before), "the sentinel's inode or mode changed");
  check(sentinel_after.st_nlink == 1, "the sentinel got a hardlink");
  check(sentinel_after.st_size == sentinel_before.st_size, "the sentinel's size changed");
  {
    auto contents = sys::read_file(sentinel);
    check(contents.ok() && *contents == kSentinelData, "the sentinel's contents changed");
  }
  check(same_identity(lstat_or_die(dest), dest_before), "dest itself changed");

  // Every link of every non-directory under dest is under dest.
  std::map<std::pair<dev_t, ino_t>, nlink_t> found;
  std::map<std::pair<dev_t, ino_t>, struct stat> stats;
  walk(AT_FDCWD, dest.c_str(), found, stats);
  for (const auto& [id, count] : found) {
    check(id != std::make_pair(sentinel_before.st_dev, sentinel_before.st_ino),
          "an entry under dest is the sentinel");
    check(stats[id].st_nlink == count, "an entry under dest has a link outside it (" +
                                           std::to_string(stats[id].st_nlink) + " links, " +
                                           std::to_string(count) + " under dest)");
  }

  auto removed = sys::remove_tree(top);
  if (!removed.ok()) fail(removed.error().message());
  check(names_in(parent).empty(), "the scratch tree was not removed");
  return 0;
}
