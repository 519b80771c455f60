#include "images/views.h"

#include <gtest/gtest.h>

#include "sys/fs.h"

namespace vessel::images {
namespace {

image::Digest digest(char c) {
  return *image::Digest::parse("sha256:" + std::string(64, c));
}

ImageRecord record(const std::string& name, char config, char manifest) {
  return ImageRecord{name, digest(manifest), digest(config), "linux/amd64", 1234, {}};
}

class ImageViewsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = sys::make_temp_dir("/tmp", "vessel-views-test-");
    ASSERT_TRUE(dir.ok()) << dir.error().to_string();
    dir_ = *dir;
    auto store = ImageStore::open(dir_);
    ASSERT_TRUE(store.ok()) << store.error().to_string();
    store_.emplace(std::move(*store));
  }
  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) (void)sys::remove_tree(dir_);
  }
  std::string dir_;
  std::optional<ImageStore> store_;
};

TEST_F(ImageViewsTest, ListGroupsNamesOfOneImageAsDockerDoes) {
  auto out = list_view(*store_, {record("docker.io/library/busybox:latest", 'a', 'b'),
                                 record("docker.io/team/box:1", 'a', 'b'),
                                 record("localhost:5000/app:2", 'c', 'd')});
  ASSERT_EQ(out.size(), 2u) << out.dump();
  EXPECT_EQ(out[0]["Id"], "sha256:" + std::string(64, 'a'));
  EXPECT_EQ(out[0]["RepoTags"], (nlohmann::json{"busybox:latest", "team/box:1"}));
  EXPECT_EQ(out[0]["RepoDigests"], (nlohmann::json{"busybox@sha256:" + std::string(64, 'b'),
                                                   "team/box@sha256:" + std::string(64, 'b')}));
  EXPECT_EQ(out[0]["Size"], 1234);
  EXPECT_EQ(out[0]["Labels"], nlohmann::json::object());  // no config blob: none
  EXPECT_EQ(out[1]["RepoTags"], (nlohmann::json{"localhost:5000/app:2"}));
}

TEST_F(ImageViewsTest, InspectFailsWhenTheConfigIsMissing) {
  auto v = inspect_view(*store_, record("docker.io/library/busybox:latest", 'a', 'b'));
  EXPECT_FALSE(v.ok());
}

TEST(ImageTimes, UnixSecondsOfRfc3339) {
  EXPECT_EQ(unix_seconds("1970-01-01T00:00:10Z"), 10);
  EXPECT_EQ(unix_seconds("2023-11-01T00:00:00.123456789Z"), 1698796800);
  EXPECT_EQ(unix_seconds("2023-11-01T01:00:00+01:00"), 1698796800);
  EXPECT_EQ(unix_seconds("2023-10-31T23:30:00-00:30"), 1698796800);
  EXPECT_EQ(unix_seconds(""), 0);
  EXPECT_EQ(unix_seconds("yesterday"), 0);
  EXPECT_EQ(unix_seconds("2023-11-01T00:00:00"), 0);  // no zone: not RFC 3339
}

}  // namespace
}  // namespace vessel::images
