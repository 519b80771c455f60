#include "sys/unix_socket.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sys/fs.h"

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

Status send_with_fd(int sock, std::string_view data, int fd) {
  if (data.empty())
    return Error(ErrorCode::kInvalidArgument, "send_with_fd: no data to carry the fd");
  iovec iov{const_cast<char*>(data.data()), data.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return Error::from_errno(n < 0 ? errno : EIO, "send an fd");
  // A stream socket may take fewer bytes; the fd went with the first.
  return write_all(sock, data.data() + n, data.size() - static_cast<size_t>(n));
}

}  // namespace vessel::sys
