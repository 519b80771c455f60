// libFuzzer target for the layer applier: the input is a layer blob as a
// registry could serve it (tar, gzip- or zstd-compressed tar) and is applied
// with rootfs::apply_layer onto a fresh directory.
//
// Layout per input:  <parent>/root-XXXXXX   (parent: one mkdtemp per process)
// The layer is applied onto root-XXXXXX. Beyond "no crash, no sanitizer
// report" it checks and aborts when one fails:
//   - afterwards <parent> holds exactly that one directory: nothing was
//     created beside it (an entry or symlink that escaped via "..");
//   - on success the stats respect the limits given (max_entries, max_bytes);
//   - the directory can be removed again, and <parent> is then empty.
//
// Limits are small so each input is cheap. preserve_ownership is false so the
// target behaves the same as root and non-root (device nodes still need
// root; without it they fail cleanly).
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "rootfs/layer.h"
#include "sys/fs.h"

namespace vessel::rootfs {
namespace {

constexpr uint64_t kMaxEntries = 1000;
constexpr uint64_t kMaxBytes = 8u << 20;

void check(bool ok) {
  if (!ok) std::abort();
}

void die(const char* what) {
  std::perror(what);
  std::abort();
}

// The per-process parent directory, removed at exit. Heap-allocated so it
// outlives static destruction and the atexit handler can still name it.
const std::string& parent_dir() {
  static const std::string* parent = [] {
    const char* tmp = std::getenv("TMPDIR");
    auto* templ =
        new std::string(std::string(tmp && *tmp ? tmp : "/tmp") + "/vessel-layer-fuzz-XXXXXX");
    if (!::mkdtemp(templ->data())) die("layer_fuzz: mkdtemp");
    return templ;
  }();
  static const bool registered = [] {
    std::atexit([] { (void)sys::remove_tree(*parent); });
    return true;
  }();
  (void)registered;
  return *parent;
}

std::vector<std::string> entries(const std::string& dir) {
  auto names = sys::list_dir(dir);
  if (!names.ok()) die("layer_fuzz: list parent");
  return *names;
}

// A layer can leave directories without search or write permission; as
// non-root remove_tree then fails. Give every directory 0700 and retry.
void make_removable(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
  ::chmod(path.c_str(), 0700);
  auto names = sys::list_dir(path);
  if (!names.ok()) return;
  for (const std::string& n : *names)
    make_removable(path + "/" + n);
}

void remove_root(const std::string& root) {
  if (sys::remove_tree(root).ok()) return;
  make_removable(root);
  auto s = sys::remove_tree(root);
  if (!s.ok()) {
    std::fprintf(stderr, "layer_fuzz: %s\n", s.error().message().c_str());
    std::abort();
  }
}

}  // namespace
}  // namespace vessel::rootfs

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel;
  using namespace vessel::rootfs;
  const std::string& parent = parent_dir();

  // The tar arrives through a memfd, as a file descriptor like a blob would.
  int fd = ::memfd_create("layer", MFD_CLOEXEC);
  if (fd < 0) rootfs::die("layer_fuzz: memfd_create");
  for (size_t off = 0; off < size;) {
    ssize_t n = ::write(fd, data + off, size - off);
    if (n <= 0) rootfs::die("layer_fuzz: write");
    off += static_cast<size_t>(n);
  }
  if (::lseek(fd, 0, SEEK_SET) != 0) rootfs::die("layer_fuzz: lseek");

  auto root = sys::make_temp_dir(parent, "root-");
  if (!root.ok()) rootfs::die("layer_fuzz: make_temp_dir");

  ApplyOptions options;
  options.display_name = "fuzz";
  options.max_entries = kMaxEntries;
  options.max_bytes = kMaxBytes;
  options.preserve_ownership = false;
  auto stats = apply_layer(fd, *root, options);
  ::close(fd);
  if (stats.ok()) {
    check(stats->entries <= kMaxEntries);
    check(stats->bytes <= kMaxBytes);
  }

  // Nothing beside the root: an escape through ".." or a symlink would show.
  const std::vector<std::string> names = entries(parent);
  const std::string leaf = root->substr(parent.size() + 1);
  if (names.size() != 1 || names[0] != leaf) {
    std::fprintf(stderr, "layer_fuzz: entry created outside the root:");
    for (const std::string& n : names)
      std::fprintf(stderr, " '%s'", n.c_str());
    std::fprintf(stderr, "\n");
    std::abort();
  }
  rootfs::remove_root(*root);
  check(rootfs::entries(parent).empty());
  return 0;
}
