#include "sys/unix_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace vessel::sys {
namespace {

Result<sockaddr_un> address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return Error(ErrorCode::kInvalidArgument, "socket path too long: '" + path + "'");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

Result<UniqueFd> listen_unix(const std::string& path, int backlog, bool nonblocking) {
  VESSEL_ASSIGN_OR_RETURN(sockaddr_un addr, address(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
  if (!fd) return Error::from_errno(errno, "socket");
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Error::from_errno(errno, "bind '" + path + "'");
  if (::listen(fd.get(), backlog) != 0) return Error::from_errno(errno, "listen");
  return fd;
}

Result<UniqueFd> connect_unix(const std::string& path) {
  VESSEL_ASSIGN_OR_RETURN(sockaddr_un addr, address(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::from_errno(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Error::from_errno(errno, "connect to '" + path + "'");
  return fd;
}

}  // namespace vessel::sys
