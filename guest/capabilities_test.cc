// The checks behind Spawn.capabilities and the capset(2) data they make:
// plain functions, tested on the host.
#include "guest/capabilities.h"

#include <gtest/gtest.h>

#include <string>

namespace vessel::guest {
namespace {

constexpr uint64_t bit(uint32_t cap) {
  return uint64_t{1} << cap;
}

// Docker's default set (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID,
// SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD,
// AUDIT_WRITE, SETFCAP) as runc's config has it for root.
constexpr uint64_t kDocker = bit(CAP_CHOWN) | bit(CAP_DAC_OVERRIDE) | bit(CAP_FOWNER) |
                             bit(CAP_FSETID) | bit(CAP_KILL) | bit(CAP_SETGID) | bit(CAP_SETUID) |
                             bit(CAP_SETPCAP) | bit(CAP_NET_BIND_SERVICE) | bit(CAP_NET_RAW) |
                             bit(CAP_SYS_CHROOT) | bit(CAP_MKNOD) | bit(CAP_AUDIT_WRITE) |
                             bit(CAP_SETFCAP);

TEST(GuestCapabilities, ParsesCapLastCap) {
  EXPECT_EQ(parse_cap_last("40\n"), 40u);
  EXPECT_EQ(parse_cap_last("0"), 0u);
  EXPECT_EQ(parse_cap_last("63\n"), 63u);
  EXPECT_EQ(parse_cap_last("64\n"), std::nullopt);
  EXPECT_EQ(parse_cap_last(""), std::nullopt);
  EXPECT_EQ(parse_cap_last("-1"), std::nullopt);
  EXPECT_EQ(parse_cap_last("4x"), std::nullopt);
  EXPECT_EQ(parse_cap_last("400"), std::nullopt);
}

TEST(GuestCapabilities, ListsNames) {
  EXPECT_EQ(capability_list(0), "");
  EXPECT_EQ(capability_list(bit(CAP_CHOWN) | bit(CAP_SYS_ADMIN)), "CAP_CHOWN, CAP_SYS_ADMIN");
  EXPECT_EQ(capability_list(bit(45)), "capability 45");
}

TEST(GuestCapabilities, PlansDockerDefaultsSplitIntoCapsetWords) {
  protocol::Capabilities caps{kDocker | bit(CAP_BPF), kDocker, kDocker | bit(CAP_BPF), 0, 0};
  CapabilityPlan plan;
  ASSERT_TRUE(plan_capabilities(caps, 40, plan).ok());
  EXPECT_EQ(plan.last_cap, 40u);
  EXPECT_EQ(plan.bounding, kDocker | bit(CAP_BPF));
  // capset(2)'s version 3 data: capabilities 0-31 in [0], 32-63 in [1].
  EXPECT_EQ(plan.data[0].effective, static_cast<uint32_t>(kDocker));
  EXPECT_EQ(plan.data[1].effective, 0u);
  EXPECT_EQ(plan.data[0].permitted, static_cast<uint32_t>(kDocker));
  EXPECT_EQ(plan.data[1].permitted, bit(CAP_BPF - 32));
  EXPECT_EQ(plan.data[0].inheritable, 0u);
  EXPECT_EQ(plan.data[1].inheritable, 0u);
  EXPECT_EQ(plan.ambient, 0u);
}

TEST(GuestCapabilities, AmbientNeedsPermittedAndInheritable) {
  protocol::Capabilities caps{kDocker, kDocker, kDocker, bit(CAP_KILL), bit(CAP_KILL)};
  CapabilityPlan plan;
  EXPECT_TRUE(plan_capabilities(caps, 40, plan).ok());
  EXPECT_EQ(plan.ambient, bit(CAP_KILL));
  EXPECT_EQ(plan.data[0].inheritable, bit(CAP_KILL));

  caps.ambient = bit(CAP_CHOWN);  // permitted, not inheritable
  Status s = plan_capabilities(caps, 40, plan);
  EXPECT_EQ(s.errnum(), EINVAL);
  EXPECT_EQ(s.message(),
            "capabilities: ambient CAP_CHOWN not in both the permitted and the inheritable set");
}

TEST(GuestCapabilities, RefusesWhatCapsetWould) {
  CapabilityPlan plan;
  protocol::Capabilities caps{kDocker, kDocker | bit(CAP_SYS_ADMIN), kDocker, 0, 0};
  Status s = plan_capabilities(caps, 40, plan);
  EXPECT_EQ(s.message(), "capabilities: effective CAP_SYS_ADMIN not in the permitted set");

  caps = {kDocker, kDocker, kDocker, bit(CAP_NET_ADMIN), 0};
  s = plan_capabilities(caps, 40, plan);
  EXPECT_EQ(s.message(), "capabilities: inheritable CAP_NET_ADMIN not in the bounding set");
}

TEST(GuestCapabilities, RefusesWhatTheKernelDoesNotKnow) {
  CapabilityPlan plan;
  // An older guest kernel (5.4: cap_last_cap 37) has no CAP_PERFMON.
  protocol::Capabilities caps{kDocker | bit(CAP_PERFMON), kDocker, kDocker, 0, 0};
  Status s = plan_capabilities(caps, 37, plan);
  EXPECT_EQ(s.errnum(), EINVAL);
  EXPECT_EQ(s.message(),
            "capabilities: bounding set: CAP_PERFMON unknown to the guest kernel (it has 0 to 37)");
  EXPECT_TRUE(plan_capabilities(caps, 40, plan).ok());
  caps.permitted |= bit(50);
  s = plan_capabilities(caps, 40, plan);
  EXPECT_EQ(s.message(),
            "capabilities: permitted set: capability 50 unknown to the guest kernel (it has 0 to "
            "40)");
  // Every capability of a 63-capability kernel is known.
  caps = {~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0}, 0, 0};
  EXPECT_TRUE(plan_capabilities(caps, 63, plan).ok());
}

TEST(GuestCapabilities, EmptySetsArePlannedAsEmpty) {
  CapabilityPlan plan;
  plan.ambient = 7;
  ASSERT_TRUE(plan_capabilities(protocol::Capabilities{}, 40, plan).ok());
  EXPECT_EQ(plan.bounding, 0u);
  EXPECT_EQ(plan.ambient, 0u);
  EXPECT_EQ(plan.data[0].permitted, 0u);
}

}  // namespace
}  // namespace vessel::guest
