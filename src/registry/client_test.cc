#include "registry/client.h"

#include <gtest/gtest.h>

namespace vessel::registry {
namespace {

TEST(IsLoopbackHost, RecognisesLoopback) {
  for (const char* h : {"127.0.0.1", "127.0.0.1:5000", "127.1.2.3:80", "localhost",
                        "LOCALHOST:5000", "[::1]:5000", "[::1]", "::1"})
    EXPECT_TRUE(is_loopback_host(h)) << h;
  for (const char* h :
       {"docker.io", "10.0.0.1:5000", "128.0.0.1", "[::2]:5000", "localhost.example"})
    EXPECT_FALSE(is_loopback_host(h)) << h;
}

TEST(RegistryClient, AutoSchemeUsesHttpOnlyForLoopback) {
  auto local = RegistryClient::create({.host = "127.0.0.1:5000"});
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->base_url(), "http://127.0.0.1:5000");
  auto remote = RegistryClient::create({.host = "registry.example:443"});
  ASSERT_TRUE(remote.ok());
  EXPECT_EQ(remote->base_url(), "https://registry.example:443");
  auto forced = RegistryClient::create({.host = "localhost:5000", .scheme = Scheme::kHttps});
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(forced->base_url(), "https://localhost:5000");
}

TEST(RegistryClient, RejectsMalformedHosts) {
  for (const char* h : {"", "http://x", "x/y", "x:", "x:0", "x:65536", "x:1a", "[::1", "[::1]x",
                        "a b", "user@host", ":5000"}) {
    auto r = RegistryClient::create({.host = h});
    EXPECT_FALSE(r.ok()) << h;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    }
  }
}

TEST(ResolveLocation, HandlesAbsoluteRootedAndRelative) {
  std::string req = "http://127.0.0.1:5000/v2/a/blobs/uploads/";
  EXPECT_EQ(resolve_location(req, "http://other:1/up?x=1"), "http://other:1/up?x=1");
  EXPECT_EQ(resolve_location(req, "/v2/a/blobs/uploads/uuid?_state=s"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/uuid?_state=s");
  EXPECT_EQ(resolve_location(req, "uuid"), "http://127.0.0.1:5000/v2/a/blobs/uploads/uuid");
  EXPECT_EQ(resolve_location("http://h/v2/a/blobs/uploads/u1?s=1", "u2"),
            "http://h/v2/a/blobs/uploads/u2");
}

TEST(ValidateRepository, FollowsDistributionGrammar) {
  for (const char* r : {"busybox", "library/busybox", "a/b/c", "my-org/my_app.v2", "a0"})
    EXPECT_TRUE(validate_repository(r).ok()) << r;
  for (const char* r :
       {"", "Busybox", "a//b", "/a", "a/", "-a", "a-", "a/../b", "a?b", "a b", "a%2fb"})
    EXPECT_FALSE(validate_repository(r).ok()) << r;
}

TEST(ValidateReference, AcceptsTagsAndDigests) {
  EXPECT_TRUE(validate_reference("latest").ok());
  EXPECT_TRUE(validate_reference("v1.2.3-rc_1").ok());
  EXPECT_TRUE(validate_reference("sha256:" + std::string(64, 'a')).ok());
  for (std::string r : {std::string(), std::string(".x"), std::string("-x"), std::string("a/b"),
                        std::string(129, 'a'), std::string("sha256:abc"), std::string("a?b")})
    EXPECT_FALSE(validate_reference(r).ok()) << r;
}

}  // namespace
TEST(ParseRetryAfter, SecondsAndHttpDates) {
  const std::time_t now = 1445412480;  // Wed, 21 Oct 2015 07:28:00 GMT
  EXPECT_EQ(parse_retry_after("120", now), std::chrono::seconds(120));
  EXPECT_EQ(parse_retry_after(" 0 ", now), std::chrono::seconds(0));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), std::chrono::seconds(30));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), std::chrono::seconds(0));
  EXPECT_GT(*parse_retry_after("99999999999999999999", now), kMaxRetryAfter);
  EXPECT_EQ(parse_retry_after("", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("-5", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("soon", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:30 PST", now), std::nullopt);
}

}  // namespace vessel::registry
