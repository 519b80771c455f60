#include "rootfs/ext4.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "rootfs/layer.h"
#include "rootfs/test_tar.h"
#include "sys/fs.h"
#include "sys/process.h"

namespace vessel::rootfs {
namespace {

std::string find_tool(const char* name) {
  if (auto p = sys::find_program(name)) return *p;
  for (std::string dir : {"/usr/sbin/", "/sbin/", "/usr/bin/"})
    if (::access((dir + name).c_str(), X_OK) == 0) return dir + name;
  return "";
}

int run(const std::vector<std::string>& argv) {
  auto p = sys::Process::spawn({.argv = argv});
  if (!p.ok()) return -1;
  auto s = p->wait();
  return s.ok() ? s->shell_code() : -1;
}

class Ext4Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root (chown, mknod in the source tree)";
    }
    if (find_tool("mkfs.ext4").empty() || find_tool("e2fsck").empty()) {
      GTEST_SKIP() << "e2fsprogs (mkfs.ext4, e2fsck) not installed";
    }
    auto d = sys::make_temp_dir("/tmp", "vessel-ext4-test-");
    ASSERT_TRUE(d.ok()) << d.error().to_string();
    base_ = *d;
    root_ = base_ + "/root";
    image_ = base_ + "/rootfs.ext4";
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
  }
  void TearDown() override {
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
    if (!base_.empty()) {
      EXPECT_TRUE(sys::remove_tree(base_).ok());
    }
  }

  std::string base_, root_, image_, mnt_;
  bool mounted_ = false;
};

TEST_F(Ext4Test, SnapshotOfAppliedLayersPassesFsckAndMounts) {
  using testing::TarEntry;
  TarEntry suid = testing::file("usr/bin/su", "#!/bin/sh\n", 04755);
  TarEntry ping = testing::file("usr/bin/ping", "ELF", 0755);
  ping.xattrs = {{"user.test", "hello"}};
  TarEntry owned = testing::file("home/user/notes", "mine", 0600);
  owned.uid = owned.gid = 1000;
  owned.mtime = 1234567890;
  TarEntry null;
  null.name = "dev/null";
  null.type = AE_IFCHR;
  null.perm = 0666;
  null.dev_major = 1;
  null.dev_minor = 3;
  TarEntry fifo;
  fifo.name = "run/fifo";
  fifo.type = AE_IFIFO;
  TarEntry sparse = testing::file("var/sparse", std::string(16 << 20, '\0'));
  sparse.data.replace(0, 4, "head");
  sparse.sparse = {{0, 4096}, {16 << 20, 0}};
  std::string tar1 = base_ + "/l1.tar", tar2 = base_ + "/l2.tar.zst";
  ASSERT_TRUE(
      testing::write_tar(tar1,
                         {testing::file("etc/hostname", "vessel\n"), testing::file("etc/gone", "x"),
                          suid, ping, owned, null, fifo, sparse, testing::symlink("bin", "usr/bin"),
                          testing::hardlink("usr/bin/su2", "usr/bin/su")},
                         testing::Compression::kGzip));
  ASSERT_TRUE(
      testing::write_tar(tar2, {testing::file("etc/.wh.gone", "")}, testing::Compression::kZstd));
  for (const auto& t : {tar1, tar2}) {
    auto r = apply_layer_file(t, root_);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
  }

  auto usage = measure_tree(root_);
  ASSERT_TRUE(usage.ok()) << usage.error().to_string();
  EXPECT_GE(usage->inodes, 13u);
  EXPECT_LT(usage->data_bytes, 1u << 20) << "sparse file counted at its apparent size";

  Status s = make_ext4_image(root_, image_, {.label = "test-rootfs"});
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_NE(::access((image_ + ".tmp").c_str(), F_OK), 0);
  struct stat st;
  ASSERT_EQ(::stat(image_.c_str(), &st), 0);
  EXPECT_LT(st.st_blocks * 512, st.st_size) << "image is not sparse";

  EXPECT_EQ(run({find_tool("e2fsck"), "-fn", image_}), 0);

  // Mounting needs loop devices; skip this part (only) where they are missing.
  std::string mount = find_tool("mount");
  mnt_ = base_ + "/mnt";
  ASSERT_EQ(::mkdir(mnt_.c_str(), 0755), 0);
  if (mount.empty() || run({mount, "-t", "ext4", "-o", "loop,ro", image_, mnt_}) != 0) {
    GTEST_SKIP() << "fsck passed; loop mount unavailable, image contents not checked";
  }
  mounted_ = true;
  auto at = [&](const std::string& rel) { return mnt_ + "/" + rel; };
  EXPECT_EQ(*sys::read_file(at("etc/hostname")), "vessel\n");
  EXPECT_NE(::access(at("etc/gone").c_str(), F_OK), 0);
  ASSERT_EQ(::lstat(at("usr/bin/su").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(st.st_nlink, 2u);
  ASSERT_EQ(::lstat(at("home/user/notes").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1000u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1234567890);
  ASSERT_EQ(::lstat(at("dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  ASSERT_EQ(::lstat(at("run/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_EQ(::lstat(at("bin").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(::lstat(at("var/sparse").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 16 << 20);
  EXPECT_LT(st.st_blocks * 512, 1 << 20);
  ASSERT_EQ(::lstat(mnt_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  char buf[64];
  ssize_t n = ::getxattr(at("usr/bin/ping").c_str(), "user.test", buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "hello");
}

// A writable base (ImageStore::root_base): the tree plus the room asked for,
// a journal, an inode per 16 KiB, sparse on the host; e2fsck finds it clean.
TEST_F(Ext4Test, WritableBaseHasRoomAJournalAndInodesAndStaysSparse) {
  ASSERT_TRUE(sys::write_file_atomic(root_ + "/hello", std::string(10000, 'x'), 0644).ok());
  constexpr uint64_t kRoom = 1ull << 30;
  Status s = make_ext4_image(root_, image_, {.label = "vessel-root", .writable_room_bytes = kRoom});
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  struct stat st;
  ASSERT_EQ(::stat(image_.c_str(), &st), 0);
  EXPECT_GT(static_cast<uint64_t>(st.st_size), kRoom);
  // Sparse: journal and inode tables are holes, not zeros written.
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 16ull << 20);
  EXPECT_EQ(run({find_tool("e2fsck"), "-fn", image_}), 0);
  std::string dumpe2fs = find_tool("dumpe2fs");
  if (dumpe2fs.empty()) GTEST_SKIP() << "dumpe2fs not installed";
  auto out = sys::make_temp_dir("/tmp", "vessel-ext4-out-");
  ASSERT_TRUE(out.ok());
  std::string header = *out + "/h";
  int rc = run({"/bin/sh", "-c", "'" + dumpe2fs + "' -h '" + image_ + "' > '" + header + "' 2>&1"});
  ASSERT_EQ(rc, 0);
  auto text = sys::read_file(header);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("has_journal"), std::string::npos) << *text;
  auto at = text->find("Inode count:");
  ASSERT_NE(at, std::string::npos);
  EXPECT_GE(std::stoull(text->substr(at + 12)), kRoom / 16384) << *text;
  (void)sys::remove_tree(*out);
  // A snapshot (the default) has no journal.
  ASSERT_EQ(::unlink(image_.c_str()), 0);
  ASSERT_TRUE(make_ext4_image(root_, image_, {.label = "snap"}).ok());
  rc = run({"/bin/sh", "-c",
            "'" + dumpe2fs + "' -h '" + image_ + "' 2>/dev/null | grep -q has_journal"});
  EXPECT_NE(rc, 0);
}

TEST_F(Ext4Test, FailureLeavesNoImage) {
  Status s = make_ext4_image(root_, image_, {.label = "a-label-longer-than-16"});
  EXPECT_FALSE(s.ok());
  s = make_ext4_image(base_ + "/missing", image_);
  EXPECT_FALSE(s.ok());
  s = make_ext4_image(root_, image_, {.mkfs_path = "/bin/false"});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().to_string().find("mkfs.ext4"), std::string::npos) << s.error().to_string();
  EXPECT_NE(::access(image_.c_str(), F_OK), 0);
  EXPECT_NE(::access((image_ + ".tmp").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace vessel::rootfs
