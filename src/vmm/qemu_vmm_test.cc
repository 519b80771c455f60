#include "vmm/qemu_vmm.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>

#include <gtest/gtest.h>

#include "sys/fs.h"

namespace vessel::vmm {
namespace {

// find_qemu over a PATH of one directory that links to a QEMU installation
// elsewhere, as scripts/install-backports-qemu.sh lays it out.
class FindQemuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = sys::make_temp_dir("/tmp", "vessel-find-qemu-");
    ASSERT_TRUE(dir.ok());
    dir_ = *dir;
    ASSERT_EQ(::mkdir((dir_ + "/bin").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((dir_ + "/qemu").c_str(), 0755), 0);
    program(dir_ + "/qemu/qemu-system-x86_64");
    ASSERT_EQ(::symlink((dir_ + "/qemu/qemu-system-x86_64").c_str(),
                        (dir_ + "/bin/qemu-system-x86_64").c_str()),
              0);
    if (const char* p = ::getenv("PATH")) saved_path_ = p;
    if (const char* q = ::getenv("VESSEL_QEMU")) saved_qemu_ = q;
    ::setenv("PATH", (dir_ + "/bin").c_str(), 1);
    ::unsetenv("VESSEL_QEMU");
    c_.accel = Accel::kKvm;
  }
  void TearDown() override {
    ::setenv("PATH", saved_path_.c_str(), 1);
    if (saved_qemu_) ::setenv("VESSEL_QEMU", saved_qemu_->c_str(), 1);
    if (!dir_.empty()) {
      EXPECT_TRUE(sys::remove_tree(dir_).ok());
    }
  }
  static void program(const std::string& path) {
    std::ofstream(path) << "#!/bin/sh\n";
    ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
  }

  std::string dir_;
  std::string saved_path_;
  std::optional<std::string> saved_qemu_;
  VmConfig c_;
};

TEST_F(FindQemuTest, AKvmVmWithoutSharesGetsTheLeanBuildBesideTheFullOne) {
  program(dir_ + "/qemu/qemu-system-x86_64-microvm");
  auto q = find_qemu(c_);
  ASSERT_TRUE(q.ok()) << q.error().to_string();
  EXPECT_EQ(*q, dir_ + "/qemu/qemu-system-x86_64-microvm");
}

TEST_F(FindQemuTest, SharesTcgOrNoLeanBuildGetTheFullOne) {
  auto q = find_qemu(c_);  // no lean build installed
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, dir_ + "/bin/qemu-system-x86_64");
  program(dir_ + "/qemu/qemu-system-x86_64-microvm");
  c_.shared_dirs = {SharedDir{"root", "/r"}};
  EXPECT_EQ(*find_qemu(c_), dir_ + "/bin/qemu-system-x86_64");
  c_.shared_dirs.clear();
  c_.accel = Accel::kTcg;
  EXPECT_EQ(*find_qemu(c_), dir_ + "/bin/qemu-system-x86_64");
}

TEST_F(FindQemuTest, VesselQemuWinsOverTheLeanBuild) {
  program(dir_ + "/qemu/qemu-system-x86_64-microvm");
  program(dir_ + "/bin/wrapper");
  ::setenv("VESSEL_QEMU", "wrapper", 1);
  EXPECT_EQ(*find_qemu(c_), dir_ + "/bin/wrapper");
  ::unsetenv("VESSEL_QEMU");
}

TEST_F(FindQemuTest, NoQemuIsAClearError) {
  ::setenv("PATH", (dir_ + "/qemu-none").c_str(), 1);
  auto q = find_qemu(c_);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().to_string().find("qemu-system-x86_64"), std::string::npos);
}

}  // namespace
}  // namespace vessel::vmm
