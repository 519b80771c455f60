#include "vmm/virtiofsd.h"

#include "sys/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace vessel::vmm {

std::string virtiofsd_path() {
  const char* env = ::getenv("VESSEL_VIRTIOFSD");
  return env && *env ? env : "/usr/lib/qemu/virtiofsd";
}

Result<sys::Process> start_virtiofsd(const std::string& dir, const std::string& socket_path,
                                     int log_fd, bool keep_cache) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Error::from_errno(errno, "share '" + dir + "'");
  if (!S_ISDIR(st.st_mode))
    return Error(ErrorCode::kInvalidArgument, "share '" + dir + "': not a directory");
  std::string bin = virtiofsd_path();
  if (::access(bin.c_str(), X_OK) != 0)
    return Error(ErrorCode::kUnavailable,
                 "virtiofsd not found at '" + bin + "' (install the qemu-system-common package)");

  VESSEL_ASSIGN_OR_RETURN(UniqueFd sock, sys::listen_unix(socket_path, 1));

  sys::SpawnOptions o;
  // cache=auto keeps the guest's page cache coherent with host changes on
  // open (it drops a file's pages at each open: FOPEN_KEEP_CACHE unset);
  // with keep_cache, cache=always sets FOPEN_KEEP_CACHE and timeout=1 keeps
  // auto's 1 s revalidation of attributes and names (its default would be a
  // day), so a file the host rewrites is dropped once the guest sees its
  // new size or mtime (FUSE_AUTO_INVAL_DATA). The sandbox (a mount namespace rooted at the
  // directory, bound there with its submounts) keeps the daemon from reaching outside it.
  // announce_submounts: each host mount under the directory (the runtime's
  // share tree binds every shared directory there) becomes a submount in
  // the guest with an st_dev of its own; without it the guest shows one
  // st_dev for all and host inode numbers collide across filesystems (cp
  // then refuses two different files as "the same file"). A guest without
  // submount support is served as before (virtiofsd drops the option).
  o.argv = {
      bin,  "--fd=3", "-o", "source=" + dir,      "-o", keep_cache ? "cache=always" : "cache=auto",
      "-o", "xattr",  "-o", "announce_submounts", "-o", "log_level=err"};
  if (keep_cache) o.argv.insert(o.argv.end(), {"-o", "timeout=1"});
  o.fds = {{3, sock.get()}};
  if (log_fd >= 0) o.fds.push_back({2, log_fd});
  auto p = sys::Process::spawn(o);
  if (!p.ok()) return p.error().wrap("start virtiofsd for '" + dir + "'");
  return p;
}

}  // namespace vessel::vmm
