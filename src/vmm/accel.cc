#include "vmm/accel.h"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "base/strings.h"

namespace vessel::vmm {

const char* accel_name(Accel a) {
  return a == Accel::kKvm ? "kvm" : "tcg";
}

Result<std::optional<Accel>> parse_accel(std::string_view s) {
  if (s == "kvm") return std::optional<Accel>(Accel::kKvm);
  if (s == "tcg") return std::optional<Accel>(Accel::kTcg);
  if (s == "auto" || s.empty()) return std::optional<Accel>();
  return Error(ErrorCode::kInvalidArgument,
               "invalid accelerator '" + std::string(s) + "' (expected kvm, tcg or auto)");
}

HostFacts read_host_facts() {
  HostFacts f;
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    f.kvm_device_usable = true;
    ::close(fd);
  }
  // Only the first "flags" line matters; read a bounded prefix.
  int cfd = ::open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
  if (cfd >= 0) {
    char buf[16384];
    ssize_t n = ::read(cfd, buf, sizeof buf);
    if (n > 0) f.cpuinfo.assign(buf, static_cast<size_t>(n));
    ::close(cfd);
  }
  utsname u;
  if (::uname(&u) == 0) f.machine = u.machine;
  return f;
}

uint64_t cpu_khz(const std::string& cpuinfo) {
  for (const auto& line : split(cpuinfo, '\n')) {
    if (!starts_with(line, "cpu MHz")) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) return 0;
    std::string_view v = trim(std::string_view(line).substr(colon + 1));
    auto dot = v.find('.');
    auto mhz = parse_u64(v.substr(0, dot));
    if (!mhz || *mhz == 0 || *mhz > 100000) return 0;
    uint64_t khz = *mhz * 1000;
    if (dot != std::string_view::npos) {
      std::string frac(v.substr(dot + 1, 3));
      while (frac.size() < 3)
        frac += '0';
      if (auto f = parse_u64(frac)) khz += *f;
    }
    return khz;
  }
  return 0;
}

namespace {

bool cpu_has_hw_virt(const HostFacts& f) {
  if (f.machine == "aarch64") return true;
  for (const auto& line : split(f.cpuinfo, '\n')) {
    if (!starts_with(line, "flags")) continue;
    for (const auto& flag : split(line, ' '))
      if (flag == "vmx" || flag == "svm") return true;
    return false;
  }
  return false;
}

}  // namespace

AccelChoice choose_accel(const HostFacts& f) {
  if (!f.kvm_device_usable) return {Accel::kTcg, "/dev/kvm is not available read-write"};
  if (!cpu_has_hw_virt(f))
    return {Accel::kTcg, "the CPU does not advertise hardware virtualization (vmx/svm)"};
  return {Accel::kKvm, "/dev/kvm usable and the CPU has hardware virtualization"};
}

Result<AccelChoice> resolve_accel(std::optional<Accel> requested, const HostFacts& facts) {
  if (!requested) return choose_accel(facts);
  if (*requested == Accel::kTcg) return AccelChoice{Accel::kTcg, "requested"};
  AccelChoice automatic = choose_accel(facts);
  if (!facts.kvm_device_usable)
    return Error(ErrorCode::kUnavailable, "accelerator 'kvm' requested but " + automatic.reason);
  // KVM asked for explicitly is honoured even without vmx/svm: the user knows.
  return AccelChoice{Accel::kKvm, "requested"};
}

}  // namespace vessel::vmm
