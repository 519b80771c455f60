#include "agent/capabilities.h"

#include <gtest/gtest.h>

namespace vessel::agent {
namespace {

uint64_t cap(const char* name) {
  return uint64_t{1} << *protocol::capability_number(name);
}

TEST(Capabilities, DockerDefaultSetHasFourteen) {
  uint64_t d = docker_default_capabilities();
  EXPECT_EQ(__builtin_popcountll(d), 14);
  EXPECT_TRUE(d & cap("CAP_NET_RAW"));
  EXPECT_TRUE(d & cap("CAP_AUDIT_WRITE"));
  EXPECT_FALSE(d & cap("CAP_SYS_ADMIN"));
  EXPECT_FALSE(d & cap("CAP_NET_ADMIN"));
  // As /proc/<pid>/status shows it in a docker run container.
  EXPECT_EQ(d, 0x00000000a80425fbull);
}

TEST(Capabilities, ParsesNamesAsDockerDoes) {
  EXPECT_EQ(*parse_capability("NET_ADMIN"), cap("CAP_NET_ADMIN"));
  EXPECT_EQ(*parse_capability("cap_net_admin"), cap("CAP_NET_ADMIN"));
  EXPECT_EQ(*parse_capability("Sys_Admin"), cap("CAP_SYS_ADMIN"));
  EXPECT_EQ(*parse_capability("all"), protocol::kAllCapabilities);
  auto bad = parse_capability("NET_ADMINN");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "unknown capability 'NET_ADMINN'");
  EXPECT_FALSE(parse_capability("").ok());
  EXPECT_FALSE(parse_capability("CAP_").ok());
}

TEST(Capabilities, AddsAndDropsOnTheDefaults) {
  const uint64_t d = docker_default_capabilities();
  EXPECT_EQ(*docker_capabilities({}, {}), d);
  EXPECT_EQ(*docker_capabilities({"NET_ADMIN"}, {"chown"}),
            (d | cap("CAP_NET_ADMIN")) & ~cap("CAP_CHOWN"));
  // Added wins over dropped.
  EXPECT_EQ(*docker_capabilities({"KILL"}, {"KILL"}), d);
  EXPECT_EQ(*docker_capabilities({"ALL"}, {}), protocol::kAllCapabilities);
  EXPECT_EQ(*docker_capabilities({"ALL"}, {"SYS_ADMIN"}),
            protocol::kAllCapabilities & ~cap("CAP_SYS_ADMIN"));
  EXPECT_EQ(*docker_capabilities({"NET_BIND_SERVICE"}, {"ALL"}), cap("CAP_NET_BIND_SERVICE"));
  EXPECT_EQ(*docker_capabilities({}, {"all"}), 0u);
  auto bad = docker_capabilities({}, {"NOPE"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "unknown capability 'NOPE'");
}

TEST(Capabilities, ContainerSetsAreBoundingEffectivePermitted) {
  protocol::Capabilities c = container_capabilities(0x5);
  EXPECT_EQ(c.bounding, 0x5u);
  EXPECT_EQ(c.effective, 0x5u);
  EXPECT_EQ(c.permitted, 0x5u);
  EXPECT_EQ(c.inheritable, 0u);
  EXPECT_EQ(c.ambient, 0u);
}

TEST(Capabilities, SecurityOptions) {
  bool nnp = false;
  EXPECT_TRUE(apply_security_opt("no-new-privileges", nnp).ok());
  EXPECT_TRUE(nnp);
  EXPECT_TRUE(apply_security_opt("no-new-privileges=false", nnp).ok());
  EXPECT_FALSE(nnp);
  EXPECT_TRUE(apply_security_opt("no-new-privileges:true", nnp).ok());
  EXPECT_TRUE(nnp);
  EXPECT_TRUE(apply_security_opt("seccomp=unconfined", nnp).ok());
  EXPECT_TRUE(apply_security_opt("label=disable", nnp).ok());
  EXPECT_TRUE(nnp);
  // A profile is named by its kind (the docker CLI sends a seccomp
  // profile's whole JSON).
  for (const char* profile : {"seccomp={\"defaultAction\": \"SCMP_ACT_ERRNO\"}",
                              "apparmor=docker-default", "label=level:s0:c100"}) {
    Status s = apply_security_opt(profile, nnp);
    ASSERT_FALSE(s.ok()) << profile;
    std::string kind(profile, std::string_view(profile).find('='));
    EXPECT_NE(s.error().message().find("unsupported security option '" + kind + "'"),
              std::string::npos)
        << s.error().message();
    EXPECT_EQ(s.error().message().find("defaultAction"), std::string::npos);
  }
  for (const char* bad :
       {"no-new-privileges=yes", "no-new-privilegesx", "systempaths=unconfined", ""}) {
    Status s = apply_security_opt(bad, nnp);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.error().message().find("unsupported security option '" + std::string(bad) + "'"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace vessel::agent
