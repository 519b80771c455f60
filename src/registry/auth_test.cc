#include "registry/auth.h"

#include <gtest/gtest.h>

namespace vessel::registry {
namespace {

TEST(ParseWwwAuthenticate, DockerHubBearer) {
  auto r = parse_www_authenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->size(), 1u);
  const Challenge& c = (*r)[0];
  EXPECT_EQ(c.scheme, "bearer");
  EXPECT_EQ(c.param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ(c.param("service"), "registry.docker.io");
  EXPECT_EQ(c.param("scope"), "repository:library/busybox:pull");
  EXPECT_EQ(c.param("missing"), "");
}

TEST(ParseWwwAuthenticate, BasicWithTokenValueAndCaseInsensitiveNames) {
  auto r = parse_www_authenticate("BASIC Realm=registry");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ((*r)[0].scheme, "basic");
  EXPECT_EQ((*r)[0].param("realm"), "registry");
}

TEST(ParseWwwAuthenticate, QuotedPairsAndSpaces) {
  auto r = parse_www_authenticate(R"(Bearer realm = "a \"quoted\" \\ value, with comma" ,  x=y)");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].param("realm"), R"(a "quoted" \ value, with comma)");
  EXPECT_EQ((*r)[0].param("x"), "y");
}

TEST(ParseWwwAuthenticate, MultipleChallenges) {
  auto r = parse_www_authenticate(
      R"(Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple")");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].scheme, "newauth");
  EXPECT_EQ((*r)[0].param("type"), "1");
  EXPECT_EQ((*r)[0].param("title"), R"(Login to "apps")");
  EXPECT_EQ((*r)[1].scheme, "basic");
  EXPECT_EQ((*r)[1].param("realm"), "simple");
}

TEST(ParseWwwAuthenticate, SchemeWithoutParamsAndToken68) {
  auto r = parse_www_authenticate("Negotiate, Foo abc+/==, Bearer realm=\"r\"");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].scheme, "negotiate");
  EXPECT_TRUE((*r)[0].params.empty());
  EXPECT_EQ((*r)[1].token68, "abc+/==");
  EXPECT_EQ((*r)[2].param("realm"), "r");
}

TEST(ParseWwwAuthenticate, EmptyListElementsAreSkipped) {
  auto r = parse_www_authenticate(" , Basic realm=\"x\" ,, ");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].param("realm"), "x");
}

TEST(ParseWwwAuthenticate, RejectsMalformed) {
  const char* bad[] = {
      "",
      "   ",
      "=realm",
      "Bearer realm=\"unterminated",
      "Bearer realm=\"ends in backslash\\",
      "Bearer realm=, service=x",  // "realm=" alone is a token68; then a bad scheme
      "Bearer realm=\"a\", =x",
      "Bearer realm=\"a\" service",
      "Bearer realm=\"a\" service=\"b\"",  // missing comma
      "Bearer realm=\"a\",realm=\"b\"",    // duplicate
      "Bearer realm=\"a\x01\"",            // control character
      "Bearer realm=\"a\nb\"",
      "Bearer\x01realm=x",
      "Bearer realm=a;b",
      "\"quoted\" realm=x",
  };
  for (const char* h : bad) {
    auto r = parse_www_authenticate(h);
    EXPECT_FALSE(r.ok()) << "accepted: " << h;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), ErrorCode::kProtocol);
    }
  }
}

TEST(ParseWwwAuthenticate, EnforcesBounds) {
  std::string long_header = "Bearer realm=\"" + std::string(kMaxAuthHeader, 'a') + "\"";
  EXPECT_FALSE(parse_www_authenticate(long_header).ok());
  std::string many;
  for (size_t i = 0; i <= kMaxChallenges; ++i)
    many += "Basic realm=x, ";
  EXPECT_FALSE(parse_www_authenticate(many).ok());
  std::string params = "Bearer ";
  for (size_t i = 0; i <= kMaxAuthParams; ++i)
    params += "p" + std::to_string(i) + "=v, ";
  EXPECT_FALSE(parse_www_authenticate(params).ok());
}

TEST(Base64, RoundTripsAndRejectsMalformed) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "user:pa:ss\xff"})
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  EXPECT_EQ(base64_encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_FALSE(base64_decode("abc"));
  EXPECT_FALSE(base64_decode("ab=c"));
  EXPECT_FALSE(base64_decode("a==="));
  EXPECT_FALSE(base64_decode("ab c"));
  EXPECT_FALSE(base64_decode("ab==abcd"));
}

TEST(BasicAuthorization, EncodesUserAndPassword) {
  EXPECT_EQ(basic_authorization({"user", "pass"}), "Basic dXNlcjpwYXNz");
}

TEST(ParseTokenResponse, AcceptsTokenOrAccessToken) {
  auto a = parse_token_response(R"({"token":"abc","expires_in":300})");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->token, "abc");
  auto b = parse_token_response(R"({"access_token":"xyz"})");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->token, "xyz");
}

TEST(ParseTokenResponse, RejectsMalformed) {
  for (const char* body : {"", "[]", "{}", R"({"token":""})", R"({"token":5})",
                           "{\"token\":\"a\\r\\nX-Injected: 1\"}", R"({"token":"a b"})", "{"}) {
    auto r = parse_token_response(body);
    EXPECT_FALSE(r.ok()) << "accepted: " << body;
  }
}

TEST(TokenCache, ExpiresTokens) {
  TokenCache cache;
  cache.put("s", BearerToken{"t", std::chrono::steady_clock::now() + std::chrono::minutes(5)});
  EXPECT_EQ(cache.get("s"), "t");
  EXPECT_FALSE(cache.get("other"));
  cache.put("s", BearerToken{"t", std::chrono::steady_clock::now() + std::chrono::seconds(5)});
  EXPECT_FALSE(cache.get("s"));  // within the 10 s margin
  cache.erase("s");
  EXPECT_FALSE(cache.get("s"));
}

}  // namespace
}  // namespace vessel::registry
