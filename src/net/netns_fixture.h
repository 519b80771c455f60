// For the privileged net tests: a fixture whose SetUp moves the test's
// process into a network namespace of its own (ctest runs each test in its
// own process), so links, addresses and nftables rules never touch the
// host's. Skips when not root.
#pragma once

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/netlink.h"

namespace vessel::net {

class PrivateNetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: works in a private network namespace";
    const ino_t before = netns_inode();
    if (::unshare(CLONE_NEWNET) != 0)
      GTEST_SKIP() << "cannot make a network namespace: unshare: " << std::strerror(errno);
    // Never run a test body in the namespace we started in.
    ASSERT_NE(netns_inode(), before) << "unshare(CLONE_NEWNET) left the namespace unchanged";
    auto lo = set_link_up("lo", true);
    ASSERT_TRUE(lo.ok()) << lo.error().to_string();
  }

  static ino_t netns_inode() {
    struct stat st {};
    if (::stat("/proc/thread-self/ns/net", &st) != 0) return 0;
    return st.st_ino;
  }
};

}  // namespace vessel::net
