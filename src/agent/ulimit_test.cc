#include "agent/ulimit.h"

#include <gtest/gtest.h>

namespace vessel::agent {
namespace {

TEST(Ulimit, ParsesDockerSyntax) {
  auto r = parse_ulimit("nofile=1024:2048");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->resource, 7u);
  EXPECT_EQ(r->soft, 1024u);
  EXPECT_EQ(r->hard, 2048u);

  r = parse_ulimit("nproc=64");  // hard defaults to soft
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->resource, 6u);
  EXPECT_EQ(r->soft, 64u);
  EXPECT_EQ(r->hard, 64u);

  r = parse_ulimit("core=-1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->resource, 4u);
  EXPECT_EQ(r->soft, protocol::kRlimInfinity);
  EXPECT_EQ(r->hard, protocol::kRlimInfinity);

  r = parse_ulimit("memlock=0:-1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->soft, 0u);
  EXPECT_EQ(r->hard, protocol::kRlimInfinity);
}

TEST(Ulimit, EveryNameRoundTrips) {
  for (uint32_t i = 0; i < protocol::kRlimitResources; ++i) {
    const char* name = protocol::rlimit_name(i);
    ASSERT_NE(name, nullptr) << i;
    auto r = parse_ulimit(std::string(name) + "=1");
    ASSERT_TRUE(r.ok()) << name;
    EXPECT_EQ(r->resource, i);
  }
  EXPECT_EQ(protocol::rlimit_name(protocol::kRlimitResources), nullptr);
}

TEST(Ulimit, RejectsWhatDockerRejects) {
  for (const char* bad :
       {"nofile", "nofile=", "files=10", "nofile=1:2:3", "nofile=x", "nofile=1024:y", "nofile=-2",
        "nofile=2048:1024", "nofile=-1:1024", "nofile= 1", "=1"}) {
    auto r = parse_ulimit(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(r.error().to_string().find(bad), std::string::npos) << r.error().to_string();
  }
  auto r = parse_ulimit("nofile=2048:1024");
  EXPECT_NE(r.error().to_string().find("soft limit is above the hard limit (2048 > 1024)"),
            std::string::npos)
      << r.error().to_string();
}

}  // namespace
}  // namespace vessel::agent
