#include "image/reference.h"

#include <gtest/gtest.h>

#include <string>

namespace vessel::image {
namespace {

const std::string kHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string kDigest = "sha256:" + kHex;

struct Good {
  std::string input;
  std::string registry, repository, tag, digest;
  std::string canonical, familiar;
};

void PrintTo(const Good& g, std::ostream* os) {
  *os << "'" << g.input << "'";
}

class ParsesValid : public ::testing::TestWithParam<Good> {};

TEST_P(ParsesValid, Fields) {
  const Good& g = GetParam();
  auto r = parse_reference(g.input);
  ASSERT_TRUE(r.ok()) << g.input << ": " << r.error().to_string();
  EXPECT_EQ(r->registry, g.registry);
  EXPECT_EQ(r->repository, g.repository);
  EXPECT_EQ(r->tag, g.tag);
  EXPECT_EQ(r->digest ? r->digest->str() : "", g.digest);
  EXPECT_EQ(r->str(), g.canonical);
  EXPECT_EQ(r->familiar(), g.familiar);
  // Both printed forms parse back to the same reference.
  auto again = parse_reference(r->str());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *r);
  auto from_familiar = parse_reference(r->familiar());
  ASSERT_TRUE(from_familiar.ok());
  EXPECT_EQ(*from_familiar, *r);
}

INSTANTIATE_TEST_SUITE_P(
    Reference, ParsesValid,
    ::testing::Values(
        Good{"ubuntu", "docker.io", "library/ubuntu", "latest", "",
             "docker.io/library/ubuntu:latest", "ubuntu:latest"},
        Good{"library/ubuntu", "docker.io", "library/ubuntu", "latest", "",
             "docker.io/library/ubuntu:latest", "ubuntu:latest"},
        Good{"docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", "",
             "docker.io/library/ubuntu:latest", "ubuntu:latest"},
        Good{"docker.io/library/ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", "",
             "docker.io/library/ubuntu:22.04", "ubuntu:22.04"},
        Good{"index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", "",
             "docker.io/library/busybox:latest", "busybox:latest"},
        Good{"busybox:1.36.1-musl", "docker.io", "library/busybox", "1.36.1-musl", "",
             "docker.io/library/busybox:1.36.1-musl", "busybox:1.36.1-musl"},
        Good{"owner/app", "docker.io", "owner/app", "latest", "", "docker.io/owner/app:latest",
             "owner/app:latest"},
        Good{"library/a/b", "docker.io", "library/a/b", "latest", "",
             "docker.io/library/a/b:latest", "library/a/b:latest"},
        Good{"localhost/foo", "localhost", "foo", "latest", "", "localhost/foo:latest",
             "localhost/foo:latest"},
        Good{"localhost:5000/foo", "localhost:5000", "foo", "latest", "",
             "localhost:5000/foo:latest", "localhost:5000/foo:latest"},
        // Without a slash "localhost:5000" is Docker Hub's "localhost", tag 5000.
        Good{"localhost:5000", "docker.io", "library/localhost", "5000", "",
             "docker.io/library/localhost:5000", "localhost:5000"},
        Good{"127.0.0.1:5000/a/b:tag", "127.0.0.1:5000", "a/b", "tag", "", "127.0.0.1:5000/a/b:tag",
             "127.0.0.1:5000/a/b:tag"},
        Good{"[::1]:5000/img", "[::1]:5000", "img", "latest", "", "[::1]:5000/img:latest",
             "[::1]:5000/img:latest"},
        Good{"ghcr.io/x/y:1", "ghcr.io", "x/y", "1", "", "ghcr.io/x/y:1", "ghcr.io/x/y:1"},
        Good{"ghcr.io/owner/repo@" + kDigest, "ghcr.io", "owner/repo", "", kDigest,
             "ghcr.io/owner/repo@" + kDigest, "ghcr.io/owner/repo@" + kDigest},
        Good{"busybox@" + kDigest, "docker.io", "library/busybox", "", kDigest,
             "docker.io/library/busybox@" + kDigest, "busybox@" + kDigest},
        Good{"busybox:1@" + kDigest, "docker.io", "library/busybox", "1", kDigest,
             "docker.io/library/busybox:1@" + kDigest, "busybox:1@" + kDigest},
        Good{"Registry.Example.COM/a", "Registry.Example.COM", "a", "latest", "",
             "Registry.Example.COM/a:latest", "Registry.Example.COM/a:latest"},
        // Uppercase in the first component makes it a registry, as in Docker.
        Good{"Foo/bar", "Foo", "bar", "latest", "", "Foo/bar:latest", "Foo/bar:latest"},
        Good{"a-b.c--d.e/g", "a-b.c--d.e", "g", "latest", "", "a-b.c--d.e/g:latest",
             "a-b.c--d.e/g:latest"},
        Good{"foo/a.b_c__d-e---f", "docker.io", "foo/a.b_c__d-e---f", "latest", "",
             "docker.io/foo/a.b_c__d-e---f:latest", "foo/a.b_c__d-e---f:latest"},
        Good{"x:_Tag.With-Upper_", "docker.io", "library/x", "_Tag.With-Upper_", "",
             "docker.io/library/x:_Tag.With-Upper_", "x:_Tag.With-Upper_"},
        // Docker Hub paths whose first component looks like a host keep
        // "docker.io/" in the familiar form, or it would name another image.
        Good{"docker.io/in0r.io/in0", "docker.io", "in0r.io/in0", "latest", "",
             "docker.io/in0r.io/in0:latest", "docker.io/in0r.io/in0:latest"},
        Good{"docker.io/localhost/x", "docker.io", "localhost/x", "latest", "",
             "docker.io/localhost/x:latest", "docker.io/localhost/x:latest"},
        Good{"docker.io/localhost", "docker.io", "library/localhost", "latest", "",
             "docker.io/library/localhost:latest", "localhost:latest"},
        Good{"my-registry.local:443/team/sub/app:v1", "my-registry.local:443", "team/sub/app", "v1",
             "", "my-registry.local:443/team/sub/app:v1",
             "my-registry.local:443/team/sub/app:v1"}));

struct Bad {
  std::string input;
  std::string message;  // a substring of the error message
};

void PrintTo(const Bad& b, std::ostream* os) {
  *os << "'" << b.input.substr(0, 80) << "'";
}

class RejectsInvalid : public ::testing::TestWithParam<Bad> {};

TEST_P(RejectsInvalid, WithMessage) {
  const Bad& b = GetParam();
  auto r = parse_reference(b.input);
  ASSERT_FALSE(r.ok()) << b.input << " parsed as " << r->str();
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find(b.message), std::string::npos)
      << b.input << ": " << r.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Reference, RejectsInvalid,
    ::testing::Values(
        Bad{"", "invalid reference '': empty reference"}, Bad{":tag", "empty repository name"},
        Bad{"@" + kDigest, "empty repository name"},
        Bad{"UPPER", "invalid reference 'UPPER': repository name must be lowercase"},
        Bad{"Foo:bar", "invalid reference 'Foo:bar': repository name must be lowercase"},
        Bad{"docker.io/Library/ubuntu", "repository name must be lowercase"},
        Bad{"a//b", "empty path component"}, Bad{"a/", "empty path component"},
        Bad{"/a", "empty path component"}, Bad{"a:", "empty tag"},
        Bad{"-a", "invalid path component '-a'"}, Bad{"a-", "invalid path component 'a-'"},
        Bad{"a..b", "invalid path component 'a..b'"},
        Bad{"a___b", "invalid path component 'a___b'"},
        Bad{"a._b", "invalid path component 'a._b'"}, Bad{"a b", "invalid path component"},
        Bad{"name:" + std::string(129, 'a'), "tag longer than 128 characters"},
        Bad{"name:-tag", "invalid tag '-tag'"}, Bad{"name:.tag", "invalid tag"},
        Bad{"name:ta+g", "invalid tag"}, Bad{"name@sha256:abc", "invalid digest"},
        Bad{"name@md5:" + kHex, "invalid digest"}, Bad{"name@", "invalid digest"},
        Bad{"name@" + kDigest + "@" + kDigest, "invalid digest"},
        Bad{"localhost:/a", "invalid registry 'localhost:'"},
        Bad{"localhost:5x/a", "invalid registry"}, Bad{"localhost:65536/a", "invalid registry"},
        Bad{"-bad.io/a", "invalid registry"}, Bad{"bad-.io/a", "invalid registry"},
        Bad{"a..io/x", "invalid registry"}, Bad{"[::1/x", "invalid registry"},
        Bad{"[]:5000/x", "invalid registry"}, Bad{"[zz]/x", "invalid path component '[zz]'"},
        Bad{"[zz]:1/x", "invalid registry"}, Bad{"a_b.io/x", "invalid registry 'a_b.io'"},
        Bad{"[::1]5000/x", "invalid registry"}, Bad{":5000/x", "invalid registry"},
        Bad{kHex, "image ID"}, Bad{"a\x01\xff", "invalid reference 'a\\x01\\xff'"}));

TEST(Reference, NameLengthLimitCountsTheNormalizedName) {
  // docker.io/library/ + 237 = 255 bytes: accepted; one more is not.
  const std::string ok_name(255 - std::string("docker.io/library/").size(), 'a');
  auto ok = parse_reference(ok_name);
  ASSERT_TRUE(ok.ok()) << ok.error().to_string();
  EXPECT_EQ(ok->name().size(), 255u);
  auto bad = parse_reference(ok_name + "a");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("longer than 255"), std::string::npos);
}

TEST(Reference, TagOf128IsAccepted) {
  auto r = parse_reference("name:" + std::string(128, 'a'));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tag.size(), 128u);
}

TEST(Reference, LongInputIsTruncatedInTheMessage) {
  auto r = parse_reference(std::string(5000, 'A'));
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.error().message().size(), 400u);
}

TEST(Reference, RegistryHostMapsDockerHub) {
  EXPECT_EQ(parse_reference("busybox")->registry_host(), "registry-1.docker.io");
  EXPECT_EQ(parse_reference("docker.io/x/y")->registry_host(), "registry-1.docker.io");
  EXPECT_EQ(parse_reference("ghcr.io/x/y")->registry_host(), "ghcr.io");
  EXPECT_EQ(parse_reference("localhost:5000/x")->registry_host(), "localhost:5000");
}

}  // namespace
}  // namespace vessel::image
