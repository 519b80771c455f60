#include "registry/credentials.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "sys/fs.h"

namespace vessel::registry {
namespace {

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    auto dir = sys::make_temp_dir(tmp && *tmp ? tmp : "/tmp", "vessel-creds-");
    ASSERT_TRUE(dir.ok());
    root_ = *dir;
    vessel_ = root_ + "/vessel";
    docker_ = root_ + "/docker";
  }
  void TearDown() override { ASSERT_TRUE(sys::remove_tree(root_).ok()); }

  std::string root_, vessel_, docker_;
};

TEST(CanonicalRegistry, FoldsDockerHubAliases) {
  for (const char* k : {"docker.io", "index.docker.io", "registry-1.docker.io",
                        "https://index.docker.io/v1/", "HTTPS://Index.Docker.IO/v1/"})
    EXPECT_EQ(canonical_registry(k), "docker.io") << k;
  EXPECT_EQ(canonical_registry("https://127.0.0.1:5000/"), "127.0.0.1:5000");
  EXPECT_EQ(canonical_registry("Quay.io"), "quay.io");
}

TEST_F(CredentialsTest, MissingFileHasNoCredentials) {
  auto c = lookup_credentials(vessel_, docker_, "127.0.0.1:5000");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_FALSE(c->has_value());
}

TEST_F(CredentialsTest, StoreThenReadWithMode0600) {
  ASSERT_TRUE(store_credentials(vessel_, "127.0.0.1:5000", {"alice", "s3:cret"}).ok());
  auto c = read_credentials(vessel_, "127.0.0.1:5000");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ(**c, (Credentials{"alice", "s3:cret"}));
  struct stat st {};
  ASSERT_EQ(::stat((vessel_ + "/config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto text = sys::read_file(vessel_ + "/config.json");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("\"127.0.0.1:5000\""), std::string::npos);
  EXPECT_NE(text->find(base64_encode("alice:s3:cret")), std::string::npos);
}

TEST_F(CredentialsTest, DockerHubIsStoredUnderDockersKey) {
  ASSERT_TRUE(store_credentials(vessel_, "docker.io", {"bob", "pw"}).ok());
  auto text = sys::read_file(vessel_ + "/config.json");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("https://index.docker.io/v1/"), std::string::npos);
  auto c = read_credentials(vessel_, "registry-1.docker.io");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->username, "bob");
}

TEST_F(CredentialsTest, StorePreservesOtherEntriesAndReplacesAliases) {
  ASSERT_TRUE(sys::make_dirs(vessel_).ok());
  ASSERT_TRUE(sys::write_file_atomic(vessel_ + "/config.json",
                                     R"({"auths":{"index.docker.io":{"auth":")" +
                                         base64_encode("old:old") + R"("},"quay.io":{"auth":")" +
                                         base64_encode("q:q") + R"("}},"psFormat":"x"})")
                  .ok());
  ASSERT_TRUE(store_credentials(vessel_, "docker.io", {"new", "new"}).ok());
  auto text = sys::read_file(vessel_ + "/config.json");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->find("index.docker.io\""), std::string::npos);  // alias replaced
  EXPECT_NE(text->find("psFormat"), std::string::npos);
  auto q = read_credentials(vessel_, "quay.io");
  ASSERT_TRUE(q.ok() && q->has_value());
  EXPECT_EQ((*q)->username, "q");
  auto d = read_credentials(vessel_, "docker.io");
  ASSERT_TRUE(d.ok() && d->has_value());
  EXPECT_EQ((*d)->username, "new");
}

TEST_F(CredentialsTest, FallsBackToDockerConfig) {
  ASSERT_TRUE(sys::make_dirs(docker_).ok());
  ASSERT_TRUE(sys::write_file_atomic(docker_ + "/config.json",
                                     R"({"auths":{"https://index.docker.io/v1/":{"auth":")" +
                                         base64_encode("dock:er") + R"("},)" +
                                         R"("old.example":{"username":"u","password":"p"}}})")
                  .ok());
  auto c = lookup_credentials(vessel_, docker_, "docker.io");
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ(**c, (Credentials{"dock", "er"}));
  auto old = lookup_credentials(vessel_, docker_, "old.example");
  ASSERT_TRUE(old.ok() && old->has_value());
  EXPECT_EQ(**old, (Credentials{"u", "p"}));
  // Vessel's own entry wins.
  ASSERT_TRUE(store_credentials(vessel_, "docker.io", {"mine", "x"}).ok());
  c = lookup_credentials(vessel_, docker_, "docker.io");
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->username, "mine");
}

TEST_F(CredentialsTest, RemoveDeletesEntryAndReportsMissing) {
  ASSERT_TRUE(store_credentials(vessel_, "127.0.0.1:5000", {"a", "b"}).ok());
  ASSERT_TRUE(store_credentials(vessel_, "quay.io", {"c", "d"}).ok());
  ASSERT_TRUE(remove_credentials(vessel_, "127.0.0.1:5000").ok());
  auto c = read_credentials(vessel_, "127.0.0.1:5000");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
  auto q = read_credentials(vessel_, "quay.io");
  ASSERT_TRUE(q.ok() && q->has_value());
  auto again = remove_credentials(vessel_, "127.0.0.1:5000");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
}

TEST_F(CredentialsTest, MalformedFilesAreErrors) {
  ASSERT_TRUE(sys::make_dirs(vessel_).ok());
  ASSERT_TRUE(sys::write_file_atomic(vessel_ + "/config.json", "not json").ok());
  EXPECT_FALSE(read_credentials(vessel_, "x").ok());
  ASSERT_TRUE(
      sys::write_file_atomic(vessel_ + "/config.json", R"({"auths":{"x":{"auth":"!!"}}})").ok());
  auto r = read_credentials(vessel_, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(
      sys::write_file_atomic(vessel_ + "/config.json",
                             R"({"auths":{"x":{"auth":")" + base64_encode("nocolon") + R"("}}})")
          .ok());
  EXPECT_FALSE(read_credentials(vessel_, "x").ok());
}

}  // namespace
}  // namespace vessel::registry
