#include "sys/fs.h"

#include <fcntl.h>
#include <sys/resource.h>
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

// A tree nested deeper than the soft limit of open files (an archive's
// 4096-byte name of one-letter components nests ~2048 deep) is removed: the
// limit goes up to the hard one.
TEST_F(FsTest, RemoveTreeDeeperThanTheOpenFileSoftLimit) {
  rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_max < 512) GTEST_SKIP() << "hard limit of open files below 512";
  ASSERT_TRUE(make_dirs(dir_ + "/deep").ok());
  int fd = ::open((dir_ + "/deep").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(::mkdirat(fd, "d", 0755), 0);
    int next = ::openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ::close(fd);
    ASSERT_GE(next, 0);
    fd = next;
  }
  ::close(fd);
  rlimit low = saved;
  low.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  Status s = remove_tree(dir_ + "/deep");
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_NE(::access((dir_ + "/deep").c_str(), F_OK), 0);
}

TEST_F(FsTest, MakeDirsOverFileFails) {
  ASSERT_TRUE(write_file_atomic(dir_ + "/file", "x").ok());
  EXPECT_FALSE(make_dirs(dir_ + "/file").ok());
}

}  // namespace
}  // namespace vessel::sys
