#include "guest/cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace vessel::guest {
namespace {

/// Big enough for memory.stat (about 2 KiB on 6.12) and /proc/meminfo.
constexpr size_t kStatFileLimit = 16u << 10;

/// The file's text, or "" when it cannot be read (stats are best effort).
std::string read_text(const std::string& path) {
  Result<std::string> text = read_file(path, kStatFileLimit);
  return text.ok() ? text.take() : std::string();
}

/// Parses the decimal number at the start of `s`; false if there is none
/// or it overflows.
bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') break;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  out = v;
  return true;
}

std::string_view skip_spaces(std::string_view s) {
  while (!s.empty() && (s[0] == ' ' || s[0] == '\t'))
    s.remove_prefix(1);
  return s;
}

/// Calls fn(line) for each line of `text`, without its newline.
template <typename Fn>
void for_each_line(std::string_view text, Fn fn) {
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    fn(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

Status write_control(const std::string& path, const std::string& value) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || !write_all(fd.get(), value.data(), value.size())) {
    return Status::from_errno("write '" + value + "' to '" + path + "'");
  }
  return {};
}

std::string number_or_max_text(uint64_t value) {
  return value == 0 ? std::string("max") : std::to_string(value);
}

}  // namespace

namespace cgroup_text {

uint64_t keyed_value(std::string_view text, std::string_view key) {
  uint64_t value = 0;
  bool found = false;
  for_each_line(text, [&](std::string_view line) {
    if (found || !line.starts_with(key)) return;
    std::string_view rest = line.substr(key.size());
    if (rest.empty() || (rest[0] != ' ' && rest[0] != '\t')) return;
    found = parse_u64(skip_spaces(rest), value);
  });
  return found ? value : 0;
}

uint64_t number_or_max(std::string_view text, uint64_t max_value) {
  if (text.starts_with("max")) return max_value;
  uint64_t value = 0;
  return parse_u64(text, value) ? value : 0;
}

void io_bytes(std::string_view text, uint64_t& read, uint64_t& write) {
  read = write = 0;
  // "254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0", one per device.
  for_each_line(text, [&](std::string_view line) {
    size_t pos = 0;
    while (pos < line.size()) {
      size_t end = line.find(' ', pos);
      if (end == std::string_view::npos) end = line.size();
      std::string_view field = line.substr(pos, end - pos);
      uint64_t v = 0;
      if (field.starts_with("rbytes=") && parse_u64(field.substr(7), v)) read += v;
      if (field.starts_with("wbytes=") && parse_u64(field.substr(7), v)) write += v;
      pos = end + 1;
    }
  });
}

void net_bytes(std::string_view text, uint64_t& rx, uint64_t& tx) {
  rx = tx = 0;
  // "  eth0: <rx bytes> <packets> <errs> <drop> <fifo> <frame> <compressed>
  // <multicast> <tx bytes> ..." after two header lines (which have no ':'
  // before their first '|'; skipped because their name field is not followed
  // by numbers).
  for_each_line(text, [&](std::string_view line) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;
    std::string_view name = skip_spaces(line.substr(0, colon));
    if (name == "lo") return;
    std::string_view rest = line.substr(colon + 1);
    uint64_t fields[9];
    for (int i = 0; i < 9; ++i) {
      rest = skip_spaces(rest);
      if (!parse_u64(rest, fields[i])) return;
      size_t end = rest.find_first_of(" \t");
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    }
    rx += fields[0];
    tx += fields[8];
  });
}

}  // namespace cgroup_text

Result<ContainerCgroup> ContainerCgroup::create(uint32_t container) {
  std::string dir(kContainerCgroup);
  if (container != 0) dir = std::string(kCgroupMount) + "/c" + std::to_string(container);
  Status s = ensure_dir(dir, 0755);
  if (!s.ok()) return s;
  ContainerCgroup cgroup;
  cgroup.path_ = dir;
  cgroup.dir_.reset(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup.dir_) return Status::from_errno("open '" + dir + "'");
  std::string procs = cgroup.file("cgroup.procs");
  cgroup.procs_.reset(open(procs.c_str(), O_WRONLY | O_CLOEXEC));
  if (!cgroup.procs_) return Status::from_errno("open '" + procs + "'");
  return cgroup;
}

std::string ContainerCgroup::file(std::string_view name) const {
  std::string path = path_;
  path += '/';
  path += name;
  return path;
}

void ContainerCgroup::kill_and_remove() {
  if (!valid()) return;
  // cgroup.kill (Linux 5.14) SIGKILLs every process, those forked meanwhile too.
  Status killed = write_control(file("cgroup.kill"), "1");
  (void)killed;
  procs_.reset();
  dir_.reset();
  rmdir(path_.c_str());
}

Status ContainerCgroup::apply_limits(const protocol::Setup& setup) const {
  return apply_limits(protocol::Update{setup.memory_limit_bytes, setup.pids_limit,
                                       setup.cpu_quota_usec, setup.cpu_period_usec});
}

Status ContainerCgroup::apply_limits(const protocol::Update& limits) const {
  if (!valid()) {
    if (limits.memory_limit_bytes == 0 && limits.pids_limit == 0 && limits.cpu_quota_usec == 0) {
      return {};
    }
    return Status(EOPNOTSUPP, "resource limits: the guest kernel has no cgroup v2");
  }
  // Written even when 0, so that a Setup tried again (or an Update)
  // replaces earlier limits.
  Status s = write_control(file("memory.max"), number_or_max_text(limits.memory_limit_bytes));
  if (s.ok()) s = write_control(file("pids.max"), number_or_max_text(limits.pids_limit));
  if (s.ok()) {
    uint32_t period =
        limits.cpu_period_usec != 0 ? limits.cpu_period_usec : protocol::kDefaultCpuPeriodUsec;
    std::string quota =
        limits.cpu_quota_usec == 0 ? std::string("max") : std::to_string(limits.cpu_quota_usec);
    s = write_control(file("cpu.max"), quota + " " + std::to_string(period));
  }
  return s;
}

uint64_t ContainerCgroup::oom_kills() const {
  if (!valid()) return 0;
  return cgroup_text::keyed_value(read_text(file("memory.events")), "oom_kill");
}

std::string ContainerCgroup::control_text(std::string_view name) const {
  return valid() ? read_text(file(name)) : std::string();
}

Status ContainerCgroup::reclaim(uint64_t bytes) const {
  if (!valid()) return Status(EOPNOTSUPP, "no container cgroup");
  return write_control(file("memory.reclaim"), std::to_string(bytes));
}

protocol::Stats ContainerCgroup::sample() const {
  using namespace cgroup_text;
  protocol::Stats st;
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  st.timestamp_ns =
      static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);

  std::string meminfo = read_text("/proc/meminfo");
  st.guest_mem_total = keyed_value(meminfo, "MemTotal:") * 1024;
  st.guest_mem_available = keyed_value(meminfo, "MemAvailable:") * 1024;
  net_bytes(read_text("/proc/net/dev"), st.net_rx_bytes, st.net_tx_bytes);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  st.cpus = cpus > 0 ? static_cast<uint32_t>(cpus) : 0;

  if (!valid()) return st;
  std::string cpu = read_text(file("cpu.stat"));
  st.cpu_usage_usec = keyed_value(cpu, "usage_usec");
  st.cpu_user_usec = keyed_value(cpu, "user_usec");
  st.cpu_system_usec = keyed_value(cpu, "system_usec");
  st.memory_current = number_or_max(read_text(file("memory.current")), 0);
  st.memory_limit = number_or_max(read_text(file("memory.max")), st.guest_mem_total);
  std::string memory = read_text(file("memory.stat"));
  st.memory_anon = keyed_value(memory, "anon");
  st.memory_file = keyed_value(memory, "file");
  st.memory_inactive_file = keyed_value(memory, "inactive_file");
  st.oom_kills = keyed_value(read_text(file("memory.events")), "oom_kill");
  st.pids_current = number_or_max(read_text(file("pids.current")), 0);
  st.pids_limit = number_or_max(read_text(file("pids.max")), 0);
  io_bytes(read_text(file("io.stat")), st.io_read_bytes, st.io_write_bytes);
  return st;
}

}  // namespace vessel::guest
