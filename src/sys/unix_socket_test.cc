#include "sys/unix_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

namespace vessel::sys {
namespace {

TEST(SendWithFd, TheReceiverGetsTheBytesAndACopyOfTheFd) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]), w(p[1]);
  ASSERT_TRUE(send_with_fd(a.get(), "hello\n", w.get()).ok());

  char buf[16] = {};
  iovec iov{buf, sizeof buf};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(b.get(), &msg, MSG_CMSG_CLOEXEC);
  ASSERT_EQ(n, 6);
  EXPECT_EQ(std::string(buf, 6), "hello\n");
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->cmsg_type, SCM_RIGHTS);
  int got = -1;
  std::memcpy(&got, CMSG_DATA(c), sizeof got);
  UniqueFd copy(got);
  // The copy is the pipe's write end: what it writes, the read end reads.
  ASSERT_EQ(::write(copy.get(), "x", 1), 1);
  char x = 0;
  EXPECT_EQ(::read(r.get(), &x, 1), 1);
  EXPECT_EQ(x, 'x');
}

TEST(SendWithFd, NoBytesIsAnError) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  EXPECT_FALSE(send_with_fd(a.get(), "", 0).ok());
}

}  // namespace
}  // namespace vessel::sys
