#include "sys/fs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace vessel::sys {
namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = make_temp_dir("/tmp", "vessel-fs-test-");
    ASSERT_TRUE(d.ok());
    dir_ = *d;
  }
  void TearDown() override { ASSERT_TRUE(remove_tree(dir_).ok()); }
  std::string dir_;
};

TEST_F(FsTest, AtomicWriteThenRead) {
  std::string p = dir_ + "/f";
  ASSERT_TRUE(write_file_atomic(p, "hello").ok());
  ASSERT_TRUE(write_file_atomic(p, "world!").ok());
  EXPECT_EQ(*read_file(p), "world!");
  EXPECT_NE(::access((p + ".tmp").c_str(), F_OK), 0);
}

TEST_F(FsTest, ReadFileLimit) {
  std::string p = dir_ + "/big";
  ASSERT_TRUE(write_file_atomic(p, std::string(100, 'x')).ok());
  auto r = read_file(p, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(FsTest, MissingFileNamesPath) {
  auto r = read_file(dir_ + "/nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().to_string().find("/nope"), std::string::npos);
}

TEST_F(FsTest, MakeDirsAndRemoveTree) {
  ASSERT_TRUE(make_dirs(dir_ + "/a/b/c").ok());
  ASSERT_TRUE(write_file_atomic(dir_ + "/a/b/c/f", "x").ok());
  ASSERT_EQ(::symlink("/etc", (dir_ + "/a/link").c_str()), 0);
  ASSERT_TRUE(remove_tree(dir_ + "/a").ok());
  EXPECT_NE(::access((dir_ + "/a").c_str(), F_OK), 0);
  EXPECT_EQ(::access("/etc/passwd", F_OK), 0);  // the symlink was not followed
  EXPECT_TRUE(remove_tree(dir_ + "/missing").ok());
}

TEST_F(FsTest, MakeDirsOverFileFails) {
  ASSERT_TRUE(write_file_atomic(dir_ + "/file", "x").ok());
  EXPECT_FALSE(make_dirs(dir_ + "/file").ok());
}

}  // namespace
}  // namespace vessel::sys
