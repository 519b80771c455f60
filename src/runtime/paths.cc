#include "runtime/paths.h"

#include <limits.h>
#include <unistd.h>

#include <cstdlib>

namespace vessel::runtime {
namespace {

std::string env(const char* name) {
  const char* v = ::getenv(name);
  return v ? v : "";
}

}  // namespace

std::string share_dir() {
  if (auto s = env("VESSEL_SHARE_DIR"); !s.empty()) return s;
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "/usr/local/share/vessel";
  std::string path(exe, static_cast<size_t>(n));
  std::string dir = path.substr(0, path.rfind('/'));
  return dir.substr(0, dir.rfind('/')) + "/share/vessel";
}

std::string embedded_image_layout(const std::string& repository) {
  // Repository names are validated references: no "..", no leading "/".
  std::string dir = share_dir() + "/images/" + repository;
  return ::access((dir + "/index.json").c_str(), R_OK) == 0 ? dir : "";
}

std::string resolve_root(const std::optional<std::string>& flag) {
  if (flag && !flag->empty()) return *flag;
  if (auto r = env("VESSEL_ROOT"); !r.empty()) return r;
  if (::geteuid() == 0) return "/var/lib/vessel";
  if (auto x = env("XDG_DATA_HOME"); !x.empty()) return x + "/vessel";
  return env("HOME") + "/.local/share/vessel";
}

Result<GuestAssets> find_guest_assets(const std::optional<std::string>& kernel_flag, bool machine) {
  GuestAssets a;
  a.share_dir = share_dir();
  if (kernel_flag && !kernel_flag->empty())
    a.kernel = *kernel_flag;
  else if (auto k = env(machine ? "VESSEL_MACHINE_KERNEL" : "VESSEL_KERNEL"); !k.empty())
    a.kernel = k;
  else
    a.kernel = a.share_dir + (machine ? "/kernel-machine" : "/kernel");
  if (auto i = env("VESSEL_INITRD"); !i.empty())
    a.initrd = i;
  else
    a.initrd = a.share_dir + "/initramfs.cpio.gz";

  if (::access(a.kernel.c_str(), R_OK) != 0)
    return Error(ErrorCode::kUnavailable,
                 "guest kernel not found at '" + a.kernel +
                     "' (build it with scripts/setup.sh or kernel/build.sh, or pass --kernel)");
  if (::access(a.initrd.c_str(), R_OK) != 0)
    return Error(ErrorCode::kUnavailable, "guest initramfs not found at '" + a.initrd +
                                              "' (build the project: scripts/setup.sh)");
  return a;
}

}  // namespace vessel::runtime
