// Privileged tier: every test moves this process into a network namespace of
// its own before creating a tap, and skips when it cannot.
#include "net/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "net/netlink.h"

#include "net/netns_fixture.h"

namespace vessel::net {
namespace {

class TapTest : public PrivateNetnsTest {
 protected:
  void SetUp() override {
    PrivateNetnsTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (::access("/dev/net/tun", R_OK | W_OK) != 0)
      GTEST_SKIP() << "no /dev/net/tun: " << std::strerror(errno);
  }
};

TEST_F(TapTest, TapOnBridgeVanishesWithItsFd) {
  ASSERT_TRUE(create_bridge("vtest0").ok());
  auto tap = open_tap("vtap0");
  ASSERT_TRUE(tap.ok()) << tap.error().to_string();

  // O_CLOEXEC: QEMU gets it only when it is passed explicitly.
  EXPECT_TRUE(::fcntl(tap->get(), F_GETFD) & FD_CLOEXEC);
  ifreq request{};
  ASSERT_EQ(::ioctl(tap->get(), TUNGETIFF, &request), 0) << std::strerror(errno);
  EXPECT_STREQ(request.ifr_name, "vtap0");
  EXPECT_EQ(request.ifr_flags & (IFF_TAP | IFF_TUN), IFF_TAP);
  EXPECT_TRUE(request.ifr_flags & IFF_NO_PI);
  EXPECT_TRUE(request.ifr_flags & IFF_VNET_HDR);
  EXPECT_FALSE(request.ifr_flags & IFF_PERSIST);

  auto link = find_link("vtap0");
  ASSERT_TRUE(link.ok()) << link.error().to_string();
  EXPECT_EQ(link->kind, "tun");
  EXPECT_EQ(link->master, 0);

  auto attached = set_master("vtap0", "vtest0");
  ASSERT_TRUE(attached.ok()) << attached.error().to_string();
  auto bridge = find_link("vtest0");
  ASSERT_TRUE(bridge.ok());
  EXPECT_EQ(find_link("vtap0")->master, bridge->index);
  ASSERT_TRUE(set_link_up("vtap0", true).ok());
  EXPECT_TRUE(find_link("vtap0")->up);

  // Not persistent: closing the only fd removes the link (a dead QEMU
  // leaves no tap behind).
  tap->reset();
  auto gone = find_link("vtap0");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  auto links = list_links();
  ASSERT_TRUE(links.ok());
  for (const LinkInfo& l : *links)
    EXPECT_NE(l.name, "vtap0");
  // The bridge stays.
  EXPECT_TRUE(find_link("vtest0").ok());
}

TEST_F(TapTest, RefusesBadNames) {
  for (const std::string& bad : {std::string(), std::string(16, 'a'), std::string("tap%d")}) {
    auto tap = open_tap(bad);
    ASSERT_FALSE(tap.ok()) << bad;
    EXPECT_EQ(tap.error().code(), ErrorCode::kInvalidArgument) << tap.error().to_string();
    EXPECT_NE(tap.error().message().find("create tap '" + bad + "'"), std::string::npos);
  }
  // Nothing was created under a template name either.
  auto links = list_links();
  ASSERT_TRUE(links.ok());
  for (const LinkInfo& l : *links)
    EXPECT_NE(l.kind, "tun") << l.name;
}

TEST_F(TapTest, NameInUseIsAnError) {
  auto first = open_tap("vtap0");
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  auto second = open_tap("vtap0");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().errnum(), EBUSY) << second.error().to_string();
  EXPECT_NE(second.error().message().find("create tap 'vtap0'"), std::string::npos);

  ASSERT_TRUE(create_bridge("vtest0").ok());
  auto over_bridge = open_tap("vtest0");
  ASSERT_FALSE(over_bridge.ok());
  EXPECT_NE(over_bridge.error().message().find("create tap 'vtest0'"), std::string::npos);
  EXPECT_EQ(find_link("vtest0")->kind, "bridge");
}

TEST_F(TapTest, SetMasterOfTapToMissingBridge) {
  auto tap = open_tap("vtap0");
  ASSERT_TRUE(tap.ok()) << tap.error().to_string();
  auto attached = set_master("vtap0", "nosuch0");
  ASSERT_FALSE(attached.ok());
  EXPECT_EQ(attached.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(find_link("vtap0")->master, 0);
}

}  // namespace
}  // namespace vessel::net
