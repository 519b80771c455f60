#include "image/platform.h"

#include <gtest/gtest.h>
#include <sys/utsname.h>

#include <string>

namespace vessel::image {
namespace {

struct Case {
  std::string input, normalized;
};

class ParsesPlatform : public ::testing::TestWithParam<Case> {};

TEST_P(ParsesPlatform, Normalizes) {
  auto p = parse_platform(GetParam().input);
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ(p->str(), GetParam().normalized);
}

INSTANTIATE_TEST_SUITE_P(
    Platform, ParsesPlatform,
    ::testing::Values(
        Case{"linux/amd64", "linux/amd64"}, Case{"linux/x86_64", "linux/amd64"},
        Case{"linux/x86-64", "linux/amd64"}, Case{"linux/amd64/v1", "linux/amd64"},
        Case{"linux/amd64/v3", "linux/amd64/v3"}, Case{"Linux/AMD64", "linux/amd64"},
        Case{"linux/arm64", "linux/arm64/v8"}, Case{"linux/aarch64", "linux/arm64/v8"},
        Case{"linux/arm64/v8", "linux/arm64/v8"}, Case{"linux/arm64/8", "linux/arm64/v8"},
        Case{"linux/arm64/v9", "linux/arm64/v9"}, Case{"linux/arm", "linux/arm/v7"},
        Case{"linux/arm/v7", "linux/arm/v7"}, Case{"linux/arm/6", "linux/arm/v6"},
        Case{"linux/armhf", "linux/arm/v7"}, Case{"linux/armel", "linux/arm/v6"},
        Case{"linux/i386", "linux/386"}, Case{"linux/s390x", "linux/s390x"},
        Case{"linux/ppc64le", "linux/ppc64le"}, Case{"linux/riscv64", "linux/riscv64"},
        Case{"macos/arm64", "darwin/arm64/v8"}, Case{"windows/amd64", "windows/amd64"}));

TEST(Platform, RejectsMalformed) {
  for (const char* s : {"", "linux", "linux/", "/amd64", "linux/amd64/", "linux/amd64/v8/x",
                        "linux/am d64", "linux/amd64\n", "a//b"}) {
    auto p = parse_platform(s);
    EXPECT_FALSE(p.ok()) << s;
    if (!p.ok()) {
      EXPECT_EQ(p.error().code(), ErrorCode::kInvalidArgument);
    }
  }
  auto p = parse_platform("linux/" + std::string(65, 'a'));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("invalid platform 'linux/"), std::string::npos);
}

TEST(Platform, HostMatchesUname) {
  struct utsname u {};
  ASSERT_EQ(uname(&u), 0);
  const Platform host = host_platform();
  EXPECT_EQ(host.os, "linux");
  const std::string machine = u.machine;
  if (machine == "x86_64") {
    EXPECT_EQ(host.str(), "linux/amd64");
  } else if (machine == "aarch64") {
    EXPECT_EQ(host.str(), "linux/arm64/v8");
  } else {
    EXPECT_FALSE(host.architecture.empty());
  }
  EXPECT_EQ(normalize(host), host);
}

TEST(Platform, MatchingFollowsContainerd) {
  auto m = [](const char* wanted, Platform candidate) {
    return platform_matches(*parse_platform(wanted), candidate);
  };
  EXPECT_TRUE(m("linux/amd64", {"linux", "amd64", ""}));
  EXPECT_TRUE(m("linux/amd64", {"linux", "x86_64", ""}));
  EXPECT_TRUE(m("linux/amd64", {"linux", "amd64", "v2"}));  // empty variant: any
  EXPECT_FALSE(m("linux/amd64", {"linux", "arm64", ""}));
  EXPECT_FALSE(m("linux/amd64", {"windows", "amd64", ""}));
  EXPECT_FALSE(m("linux/amd64", {"linux", "386", ""}));  // no 32-bit compat in the guest
  // arm64's variant is optional: absent means v8.
  EXPECT_TRUE(m("linux/arm64", {"linux", "arm64", ""}));
  EXPECT_TRUE(m("linux/arm64/v8", {"linux", "arm64", ""}));
  EXPECT_TRUE(m("linux/arm64", {"linux", "aarch64", "8"}));
  EXPECT_FALSE(m("linux/arm64", {"linux", "arm64", "v9"}));
  EXPECT_FALSE(m("linux/arm64", {"linux", "arm", "v7"}));
  // Older variants of the same architecture run.
  EXPECT_TRUE(m("linux/arm/v7", {"linux", "arm", "v6"}));
  EXPECT_TRUE(m("linux/arm/v7", {"linux", "arm", "v5"}));
  EXPECT_FALSE(m("linux/arm/v6", {"linux", "arm", "v7"}));
  EXPECT_TRUE(m("linux/amd64/v3", {"linux", "amd64", "v2"}));
  EXPECT_TRUE(m("linux/amd64/v3", {"linux", "amd64", ""}));
  EXPECT_FALSE(m("linux/amd64/v2", {"linux", "amd64", "v3"}));
}

TEST(Platform, CompatibleVectorIsBestFirst) {
  auto names = [](const char* wanted) {
    std::string out;
    for (const Platform& p : compatible_platforms(*parse_platform(wanted)))
      out += (out.empty() ? "" : " ") + p.str();
    return out;
  };
  EXPECT_EQ(names("linux/amd64"), "linux/amd64");
  EXPECT_EQ(names("linux/amd64/v3"), "linux/amd64/v3 linux/amd64/v2 linux/amd64");
  EXPECT_EQ(names("linux/arm/v7"), "linux/arm/v7 linux/arm/v6 linux/arm/v5");
  EXPECT_EQ(names("linux/arm64"), "linux/arm64/v8");
}

}  // namespace
}  // namespace vessel::image
