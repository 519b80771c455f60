// The pod pieces of container_vm.h that need neither root nor a VM: the
// Setup that adds a pod's container to its sandbox's VM.
#include <gtest/gtest.h>

#include "runtime/container_vm.h"

namespace vessel::runtime {
namespace {

TEST(MemberSetup, RootAndMountsComeFromThePodShare) {
  ContainerConfig c;
  c.pod_role = kPodMember;
  c.pod_dir = "web";
  c.hostname = "pod1";
  c.read_only = true;
  c.memory_bytes = 128ull << 20;
  c.pids_limit = 50;
  c.mounts = {
      {MountSpec::Type::kBind, "/srv/www", "/www", true, ""},
      {MountSpec::Type::kTmpfs, "", "/scratch", false, "size=1m"},
      {MountSpec::Type::kVolume, "data", "/data", false, ""},
  };
  protocol::Setup s = member_setup(c, 3, "hosts\n", "resolv\n");
  EXPECT_EQ(s.container, 3u);
  EXPECT_EQ(s.rootfs_tag, "rootfs");
  EXPECT_EQ(s.rootfs_subpath, "web/rootfs");
  EXPECT_EQ(s.read_only, 1);
  EXPECT_EQ(s.hostname, "pod1");
  EXPECT_EQ(s.hosts, "hosts\n");
  EXPECT_EQ(s.resolv_conf, "resolv\n");
  EXPECT_EQ(s.memory_limit_bytes, 128ull << 20);
  EXPECT_EQ(s.pids_limit, 50u);
  EXPECT_EQ(s.memory_reclaim, 0);  // container 0's alone
  EXPECT_TRUE(s.interfaces.empty());
  ASSERT_EQ(s.mounts.size(), 3u);
  // Bind mounts and volumes are numbered apart from tmpfs mounts, as
  // bind_into_pod binds them.
  EXPECT_EQ(s.mounts[0].kind, protocol::Mount::kVirtiofs);
  EXPECT_EQ(s.mounts[0].tag, "rootfs");
  EXPECT_EQ(s.mounts[0].subpath, "web/m0");
  EXPECT_EQ(s.mounts[0].target, "/www");
  EXPECT_EQ(s.mounts[0].read_only, 1);
  EXPECT_EQ(s.mounts[1].kind, protocol::Mount::kTmpfs);
  EXPECT_EQ(s.mounts[1].options, "size=1m");
  EXPECT_EQ(s.mounts[2].subpath, "web/m1");
  // What the guest will accept.
  protocol::Setup decoded;
  EXPECT_TRUE(protocol::decode(protocol::encode(s), decoded));
}

}  // namespace
}  // namespace vessel::runtime
