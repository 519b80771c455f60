#include "net/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

namespace vessel::net {

Result<UniqueFd> open_tap(const std::string& name) {
  const std::string what = "create tap '" + name + "'";
  if (name.empty() || name.size() >= IFNAMSIZ)
    return Error(ErrorCode::kInvalidArgument, what + ": name must be 1 to 15 bytes");
  // The kernel expands "%d" in a TUNSETIFF name to a free number
  // (tun_set_iff -> dev_alloc_name); the caller asked for this exact name.
  if (name.find('%') != std::string::npos)
    return Error(ErrorCode::kInvalidArgument, what + ": name must not contain '%'");

  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) return Error::from_errno(errno, what + ": open '/dev/net/tun'");

  ifreq request{};
  std::memcpy(request.ifr_name, name.data(), name.size());
  // IFF_NO_PI: frames without the 4-byte packet-information prefix, which
  // QEMU's tap backend does not expect. IFF_VNET_HDR: each frame carries a
  // virtio_net_hdr, so QEMU can pass checksum and GSO offloads through to
  // virtio-net. No TUNSETPERSIST: the device lives as long as an fd on it.
  request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd.get(), TUNSETIFF, &request) != 0) {
    // EBUSY: a tap of that name is attached to another fd; EINVAL (among
    // others): a link of that name exists and is not a tap.
    return Error::from_errno(errno, what);
  }
  return fd;
}

}  // namespace vessel::net
