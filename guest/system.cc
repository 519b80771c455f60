#include "guest/system.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <new>
#include <vector>

namespace vessel::guest {

Status Status::from_errno(int errnum, std::string_view what) {
  std::string message(what);
  message += ": ";
  message += std::strerror(errnum);
  return Status(errnum, std::move(message));
}

Status Status::from_errno(std::string_view what) {
  return from_errno(errno, what);
}

void log_error(const char* format, ...) {
  // One write per line, so that lines from the kernel and from us do not
  // interleave mid-line on the console.
  char line[1024];
  constexpr char kPrefix[] = "vessel-init: ";
  constexpr size_t kPrefixLen = sizeof(kPrefix) - 1;
  std::memcpy(line, kPrefix, kPrefixLen);
  va_list args;
  va_start(args, format);
  int n = std::vsnprintf(line + kPrefixLen, sizeof(line) - kPrefixLen - 1, format, args);
  va_end(args);
  size_t len = kPrefixLen;
  if (n > 0) len += std::min(static_cast<size_t>(n), sizeof(line) - kPrefixLen - 2);
  line[len++] = '\n';
  write_all(STDERR_FILENO, line, len);
}

std::string lower_strerror(int errnum) {
  std::string s = std::strerror(errnum);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

Status ensure_dir(const std::string& path, mode_t mode) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    return Status::from_errno(ENOTDIR, "mkdir '" + path + "'");
  }
  if (errno != ENOENT) return Status::from_errno("stat '" + path + "'");
  // EEXIST here is a dangling symlink: an error too.
  if (mkdir(path.c_str(), mode) < 0) return Status::from_errno("mkdir '" + path + "'");
  // mkdir(2) applies the umask; the modes we ask for (01777 for /tmp) must hold.
  if (chmod(path.c_str(), mode) < 0) return Status::from_errno("chmod '" + path + "'");
  return {};
}

Status ensure_dirs(const std::string& path, mode_t mode) {
  for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
    Status s = ensure_dir(path.substr(0, pos), mode);
    if (!s.ok()) return s;
  }
  return ensure_dir(path, mode);
}

Status write_file(const std::string& path, std::string_view data, mode_t mode) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) return Status::from_errno("open '" + path + "'");
  if (!write_all(fd.get(), data.data(), data.size())) {
    return Status::from_errno("write '" + path + "'");
  }
  return {};
}

bool resolves_to_itself(const std::string& path) {
  char* real = realpath(path.c_str(), nullptr);
  bool same = real != nullptr && path == real;
  std::free(real);
  return same;
}

Result<std::string> read_file(const std::string& path, size_t limit) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::from_errno("open '" + path + "'");
  std::string data(limit, '\0');
  size_t used = 0;
  while (used < limit) {
    ssize_t n = read(fd.get(), data.data() + used, limit - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::from_errno("read '" + path + "'");
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  data.resize(used);
  return data;
}

bool write_all(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

Status mount_fs(const char* source, const std::string& target, const char* type,
                unsigned long flags, const char* data, std::string_view what) {
  if (mount(source, target.c_str(), type, flags, data) < 0) return Status::from_errno(what);
  return {};
}

int64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms) {
  timespec left{ms / 1000, static_cast<long>(ms % 1000) * 1000000};
  while (nanosleep(&left, &left) < 0 && errno == EINTR) {
  }
}

namespace {
struct Mark {
  const char* label;
  int64_t ns;
};
// In a shared anonymous mapping made by PID 1's first mark(), before it
// forks anything: its children (the spawn child before its exec, the
// setup helpers) mark into the same list.
struct Marks {
  std::atomic<uint32_t> count;
  Mark at[64];
};
Marks* marks() {
  static Marks* shared = [] {
    void* p =
        mmap(nullptr, sizeof(Marks), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : new (p) Marks{};
  }();
  return shared;
}
}  // namespace

void mark(const char* label) {
  Marks* m = marks();
  if (m == nullptr) return;
  uint32_t i = m->count.fetch_add(1, std::memory_order_relaxed);
  if (i >= std::size(m->at)) return;
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  m->at[i] = {label, ts.tv_sec * 1000000000LL + ts.tv_nsec};
}

void write_marks(int fd) {
  Result<std::string> cmdline = read_file("/proc/cmdline");
  if (!cmdline.ok() || cmdline.value().find("vessel.timings") == std::string::npos) return;
  Marks* m = marks();
  if (m == nullptr) return;
  size_t n = std::min<size_t>(m->count.load(), std::size(m->at));
  std::vector<Mark> sorted(m->at, m->at + n);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Mark& a, const Mark& b) { return a.ns < b.ns; });
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i].label == nullptr) continue;  // taken by a child that did not get to write it
    int64_t since = i == 0 ? 0 : sorted[i].ns - sorted[i - 1].ns;
    dprintf(fd, "vessel-init: mark %8.1f %6.1f %s\n", static_cast<double>(sorted[i].ns) / 1e6,
            static_cast<double>(since) / 1e6, sorted[i].label);
  }
}

void set_clock_from_host(uint64_t ns) {
  if (ns == 0) return;
  timespec ts{static_cast<time_t>(ns / 1000000000u), static_cast<long>(ns % 1000000000u)};
  if (clock_settime(CLOCK_REALTIME, &ts) != 0) log_error("set the clock: %s", std::strerror(errno));
}

void add_host_entropy(std::string_view bytes) {
  if (bytes.empty()) return;
  UniqueFd random(open("/dev/urandom", O_RDWR | O_CLOEXEC));
  if (!random) {
    log_error("open /dev/urandom: %s", std::strerror(errno));
    return;
  }
  // struct rand_pool_info with its flexible buffer (random(4)).
  std::vector<uint8_t> info(sizeof(rand_pool_info) + bytes.size());
  auto* pool = reinterpret_cast<rand_pool_info*>(info.data());
  pool->entropy_count = static_cast<int>(bytes.size() * 8);
  pool->buf_size = static_cast<int>(bytes.size());
  std::memcpy(info.data() + sizeof(rand_pool_info), bytes.data(), bytes.size());
  if (ioctl(random.get(), RNDADDENTROPY, pool) != 0 || ioctl(random.get(), RNDRESEEDCRNG) != 0)
    log_error("add the host's entropy: %s", std::strerror(errno));
}

void drop_disk_caches() {
  DIR* dir = opendir("/sys/block");
  if (dir == nullptr) return;
  while (dirent* e = readdir(dir)) {
    if (std::strncmp(e->d_name, "vd", 2) != 0) continue;
    std::string dev = std::string("/dev/") + e->d_name;
    UniqueFd fd(open(dev.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd || ioctl(fd.get(), BLKFLSBUF, 0) != 0)
      log_error("drop the cache of %s: %s", dev.c_str(), std::strerror(errno));
  }
  closedir(dir);
}

void bind_late_devices() {
  static constexpr const char* kDevices = "/sys/bus/platform/devices";
  DIR* dir = opendir(kDevices);
  if (dir == nullptr) return;
  UniqueFd bind;
  while (dirent* e = readdir(dir)) {
    if (std::strncmp(e->d_name, "virtio-mmio.", 12) != 0) continue;
    std::string driver = std::string(kDevices) + "/" + e->d_name + "/driver";
    if (access(driver.c_str(), F_OK) == 0) continue;
    if (!bind) bind.reset(open("/sys/bus/platform/drivers/virtio-mmio/bind", O_WRONLY | O_CLOEXEC));
    if (!bind) {
      log_error("open virtio-mmio's bind: %s", std::strerror(errno));
      break;
    }
    // Probes the transport now: its virtio driver (virtiofs) is ready when
    // the write returns. ENODEV: still empty (no device there).
    size_t n = std::strlen(e->d_name);
    if (write(bind.get(), e->d_name, n) != static_cast<ssize_t>(n) && errno != ENODEV)
      log_error("bind %s: %s", e->d_name, std::strerror(errno));
  }
  closedir(dir);
}

void power_off() {
  sync();
  // RB_AUTOBOOT, not RB_POWER_OFF: the microvm machine runs without ACPI, so a
  // power-off would only halt the CPUs and leave QEMU running. The kernel is
  // booted with reboot=t (triple fault) and QEMU with -no-reboot, so a reboot
  // ends QEMU.
  reboot(RB_AUTOBOOT);
  log_error("reboot: %s", std::strerror(errno));
  // Still PID 1: never exit. Every signal is blocked, so this sleeps for good.
  for (;;)
    pause();
}

}  // namespace vessel::guest
