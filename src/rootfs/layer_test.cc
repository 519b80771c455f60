#include "rootfs/layer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "rootfs/test_tar.h"
#include "sys/fs.h"

namespace vessel::rootfs {
namespace {

using testing::Compression;
using testing::TarEntry;

// A real security.capability value (VFS_CAP_REVISION_2, cap_net_bind_service
// permitted + effective), as setcap writes it.
std::string cap_net_bind_service() {
  const unsigned char v[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
                               0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  return std::string(reinterpret_cast<const char*>(v), sizeof v);
}

class LayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root (chown, mknod, security.* xattrs)";
    }
    auto d = sys::make_temp_dir("/tmp", "vessel-layer-test-");
    ASSERT_TRUE(d.ok()) << d.error().to_string();
    base_ = *d;
    root_ = base_ + "/root";
    outside_ = base_ + "/outside";
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(outside_.c_str(), 0755), 0);
  }
  void TearDown() override {
    if (!base_.empty()) {
      EXPECT_TRUE(sys::remove_tree(base_).ok());
    }
  }

  Result<LayerStats> apply(const std::vector<TarEntry>& entries,
                           Compression c = Compression::kNone) {
    std::string tar = base_ + "/layer" + std::to_string(n_++) + ".tar";
    std::string err;
    EXPECT_TRUE(testing::write_tar(tar, entries, c, &err)) << err;
    ApplyOptions o;
    o.display_name = "sha256:ab12";
    return apply_layer_file(tar, root_, o);
  }

  // Applies a hostile layer: it must fail naming `entry`, and leave nothing
  // in the outside directory.
  void expect_rejected(const std::vector<TarEntry>& entries, const std::string& entry) {
    auto r = apply(entries);
    ASSERT_FALSE(r.ok()) << "layer with '" << entry << "' was accepted";
    std::string msg = r.error().to_string();
    EXPECT_NE(msg.find("layer sha256:ab12: entry '" + entry + "'"), std::string::npos) << msg;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << msg;
    EXPECT_TRUE(empty_dir(outside_)) << "wrote outside the root";
  }

  static bool empty_dir(const std::string& p) {
    DIR* d = ::opendir(p.c_str());
    if (!d) return false;
    int n = 0;
    while (dirent* e = ::readdir(d))
      if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..") ++n;
    ::closedir(d);
    return n == 0;
  }

  bool exists(const std::string& rel) {
    struct stat st;
    return ::lstat((root_ + "/" + rel).c_str(), &st) == 0;
  }
  struct stat lstat_of(const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(::lstat((root_ + "/" + rel).c_str(), &st), 0) << rel;
    return st;
  }
  std::string read(const std::string& rel) {
    auto r = sys::read_file(root_ + "/" + rel);
    return r.ok() ? *r : "<" + r.error().to_string() + ">";
  }
  std::string xattr(const std::string& rel, const char* name) {
    char buf[256];
    ssize_t n = ::lgetxattr((root_ + "/" + rel).c_str(), name, buf, sizeof buf);
    return n < 0 ? "<none>" : std::string(buf, static_cast<size_t>(n));
  }

  std::string base_, root_, outside_;
  int n_ = 0;
};

std::vector<TarEntry> full_layer() {
  std::vector<TarEntry> l;
  l.push_back(testing::dir("etc"));
  l.push_back(testing::file("etc/hostname", "vessel\n"));
  TarEntry suid = testing::file("bin-su", "#!/bin/sh\n", 04755);
  l.push_back(suid);
  TarEntry sgid_dir = testing::dir("shared", 02775);
  l.push_back(sgid_dir);
  l.push_back(testing::dir("tmp", 01777));
  TarEntry owned = testing::file("home/user/notes", "mine", 0600);
  owned.uid = 1000;
  owned.gid = 1000;
  owned.mtime = 1234567890;
  l.push_back(owned);
  TarEntry x = testing::file("ping", "ELF", 0755);
  x.xattrs = {{"user.test", "hello"}, {"security.capability", cap_net_bind_service()}};
  l.push_back(x);
  l.push_back(testing::symlink("etc/localtime", "/usr/share/zoneinfo/UTC"));
  l.push_back(testing::hardlink("etc/hostname2", "etc/hostname"));
  TarEntry fifo;
  fifo.name = "run/fifo";
  fifo.type = AE_IFIFO;
  fifo.perm = 0620;
  l.push_back(fifo);
  TarEntry null;
  null.name = "dev/null";
  null.type = AE_IFCHR;
  null.perm = 0666;
  null.dev_major = 1;
  null.dev_minor = 3;
  l.push_back(null);
  TarEntry old_dir = testing::dir("old");
  old_dir.mtime = 1000000000;
  l.push_back(old_dir);
  l.push_back(testing::file("old/child", "x"));  // added after: the dir's mtime must survive
  return l;
}

TEST_F(LayerTest, AppliesEveryEntryType) {
  auto r = apply(full_layer());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->entries, full_layer().size());
  EXPECT_EQ(read("etc/hostname"), "vessel\n");

  EXPECT_EQ(lstat_of("bin-su").st_mode & 07777, 04755u);
  EXPECT_EQ(lstat_of("shared").st_mode & 07777, 02775u);
  EXPECT_EQ(lstat_of("tmp").st_mode & 07777, 01777u);

  struct stat st = lstat_of("home/user/notes");
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1000u);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1234567890);
  EXPECT_EQ(lstat_of("home").st_mode & 07777, 0755u);  // implicit parent

  EXPECT_EQ(xattr("ping", "user.test"), "hello");
  EXPECT_EQ(xattr("ping", "security.capability"), cap_net_bind_service());

  st = lstat_of("etc/localtime");
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  char target[256] = {};
  ASSERT_GT(::readlink((root_ + "/etc/localtime").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "/usr/share/zoneinfo/UTC");

  EXPECT_EQ(lstat_of("etc/hostname2").st_ino, lstat_of("etc/hostname").st_ino);
  EXPECT_EQ(lstat_of("etc/hostname").st_nlink, 2u);

  st = lstat_of("run/fifo");
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0620u);
  st = lstat_of("dev/null");
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(major(st.st_rdev), 1u);
  EXPECT_EQ(minor(st.st_rdev), 3u);
  EXPECT_EQ(st.st_mode & 07777, 0666u);

  EXPECT_EQ(lstat_of("old").st_mtim.tv_sec, 1000000000);
}

TEST_F(LayerTest, DecompressesGzipAndZstd) {
  for (auto c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    std::string name = "f" + std::to_string(static_cast<int>(c));
    std::string data(100000, 'a');
    auto r = apply({testing::file(name, data)}, c);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->bytes, data.size());
    EXPECT_EQ(read(name), data);
  }
}

TEST_F(LayerTest, WhiteoutRemovesLowerFile) {
  ASSERT_TRUE(apply({testing::dir("a"), testing::file("a/gone", "1"), testing::file("a/keep", "2"),
                     testing::dir("a/subdir"), testing::file("a/subdir/f", "3")})
                  .ok());
  auto r = apply({testing::file("a/.wh.gone", ""), testing::file("a/.wh.subdir", ""),
                  testing::file(".wh.never-existed", "")});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_FALSE(exists("a/gone"));
  EXPECT_FALSE(exists("a/subdir"));
  EXPECT_FALSE(exists("a/.wh.gone"));
  EXPECT_FALSE(exists(".wh.never-existed"));
  EXPECT_EQ(read("a/keep"), "2");
}

TEST_F(LayerTest, OpaqueDirectoryKeepsOnlyThisLayer) {
  ASSERT_TRUE(apply({testing::dir("d"), testing::file("d/old", "1"), testing::dir("d/sub"),
                     testing::file("d/sub/old2", "2"), testing::file("other", "3")})
                  .ok());
  // Same-layer entries on both sides of the marker survive it.
  auto r = apply({testing::dir("d"), testing::file("d/before", "b"), testing::dir("d/sub"),
                  testing::file("d/sub/new2", "n"), testing::file("d/.wh..wh..opq", ""),
                  testing::file("d/after", "a")});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_FALSE(exists("d/old"));
  EXPECT_FALSE(exists("d/sub/old2"));
  EXPECT_FALSE(exists("d/.wh..wh..opq"));
  EXPECT_EQ(read("d/before"), "b");
  EXPECT_EQ(read("d/after"), "a");
  EXPECT_EQ(read("d/sub/new2"), "n");
  EXPECT_EQ(read("other"), "3");
}

TEST_F(LayerTest, ReplacesAndMerges) {
  ASSERT_TRUE(apply({testing::dir("x"), testing::file("x/inner", "1"), testing::dir("m", 0700),
                     testing::file("m/kept", "k"), testing::file("f", "file"),
                     testing::symlink("s", "/etc")})
                  .ok());
  // A file over a directory, a directory over a file, a directory over a
  // directory (merge: metadata updated, children kept), a file over a symlink
  // (the symlink is replaced, not followed).
  auto r = apply({testing::file("x", "now a file"), testing::dir("f"), testing::dir("m", 0751),
                  testing::file("s", "plain")});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(read("x"), "now a file");
  EXPECT_TRUE(S_ISDIR(lstat_of("f").st_mode));
  EXPECT_EQ(lstat_of("m").st_mode & 07777, 0751u);
  EXPECT_EQ(read("m/kept"), "k");
  EXPECT_TRUE(S_ISREG(lstat_of("s").st_mode));
  EXPECT_EQ(read("s"), "plain");
}

TEST_F(LayerTest, SparseFileStaysSparse) {
  TarEntry e = testing::file("sparse", std::string(64 << 20, '\0'));
  e.data.replace(0, 5, "start");
  e.data.replace((32 << 20), 3, "mid");
  e.sparse = {{0, 4096}, {32 << 20, 4096}, {64 << 20, 0}};
  auto r = apply({e});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  struct stat st = lstat_of("sparse");
  EXPECT_EQ(st.st_size, 64 << 20);
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "holes were written out";
  std::string data = read("sparse");
  EXPECT_EQ(data.substr(0, 5), "start");
  EXPECT_EQ(data.substr(32 << 20, 3), "mid");
}

TEST_F(LayerTest, RejectsDotDot) {
  expect_rejected({testing::file("../x", "evil")}, "../x");
  auto r = apply({testing::file("../y", "evil")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().to_string(), "layer sha256:ab12: entry '../y': path escapes the root");
  EXPECT_NE(::access((base_ + "/x").c_str(), F_OK), 0);
  expect_rejected({testing::file("a/../../x", "evil")}, "a/../../x");
}

TEST_F(LayerTest, RejectsAbsoluteName) {
  std::string abs = outside_ + "/abs";
  expect_rejected({testing::file(abs, "evil")}, abs);
}

TEST_F(LayerTest, RejectsWriteThroughSymlinkOut) {
  // Same layer, then across layers.
  expect_rejected({testing::symlink("evil", outside_), testing::file("evil/file", "x")},
                  "evil/file");
  EXPECT_TRUE(S_ISLNK(lstat_of("evil").st_mode));
  expect_rejected({testing::file("evil/file2", "x")}, "evil/file2");
  expect_rejected({testing::dir("evil/newdir")}, "evil/newdir/");
  expect_rejected({testing::file("evil/.wh.anything", "")}, "evil/.wh.anything");
}

TEST_F(LayerTest, RejectsSymlinkDotDotGames) {
  // A symlink inside the root whose target climbs out through "..".
  expect_rejected(
      {testing::dir("d"), testing::symlink("d/up", "../.."), testing::file("d/up/outside/x", "x")},
      "d/up/outside/x");
  expect_rejected({testing::symlink("in", "d"), testing::file("in/f", "x")}, "in/f");
}

TEST_F(LayerTest, RejectsHardlinkOutOfRoot) {
  ASSERT_EQ(::close(::open((outside_ + "/secret").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)),
            0);
  auto r = apply({testing::hardlink("h", "../outside/secret")});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("entry 'h'"), std::string::npos) << r.error().to_string();
  EXPECT_FALSE(exists("h"));
  r = apply({testing::hardlink("h2", "../../etc/passwd")});
  EXPECT_FALSE(r.ok());
  r = apply({testing::hardlink("h3", "/etc/passwd")});
  EXPECT_FALSE(r.ok());
  // Through a symlink: the link target must not be reached via "etc" -> /etc.
  r = apply({testing::symlink("etc", "/etc"), testing::hardlink("h4", "etc/passwd")});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("entry 'h4'"), std::string::npos) << r.error().to_string();
  EXPECT_FALSE(exists("h4"));
  struct stat st;
  ASSERT_EQ(::stat((outside_ + "/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST_F(LayerTest, HardlinkToSymlinkLinksTheSymlink) {
  auto r = apply({testing::symlink("p", "/etc/passwd"), testing::hardlink("h", "p")});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(S_ISLNK(lstat_of("h").st_mode));
  EXPECT_EQ(lstat_of("h").st_ino, lstat_of("p").st_ino);
}

TEST_F(LayerTest, TruncatedStreamFails) {
  std::string tar = base_ + "/whole.tar";
  ASSERT_TRUE(testing::write_tar(tar, {testing::file("big", std::string(200000, 'z'))}));
  ASSERT_EQ(::truncate(tar.c_str(), 100000), 0);
  auto r = apply_layer_file(tar, root_, {.display_name = "sha256:ab12"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("layer sha256:ab12"), std::string::npos)
      << r.error().to_string();

  std::string gz = base_ + "/whole.tar.gz";
  ASSERT_TRUE(
      testing::write_tar(gz, {testing::file("big", std::string(200000, 'z'))}, Compression::kGzip));
  struct stat st;
  ASSERT_EQ(::stat(gz.c_str(), &st), 0);
  ASSERT_EQ(::truncate(gz.c_str(), st.st_size / 2), 0);
  EXPECT_FALSE(apply_layer_file(gz, root_).ok());
}

TEST_F(LayerTest, RejectsGarbageAndLimits) {
  std::string junk = base_ + "/junk";
  ASSERT_TRUE(sys::write_file_atomic(junk, std::string(4096, 'q')).ok());
  EXPECT_FALSE(apply_layer_file(junk, root_).ok());

  std::string tar = base_ + "/many.tar";
  ASSERT_TRUE(testing::write_tar(
      tar, {testing::file("a", "1"), testing::file("b", "2"), testing::file("c", "3")}));
  auto r = apply_layer_file(tar, root_, {.max_entries = 2});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("more than 2 entries"), std::string::npos);
}

TEST_F(LayerTest, DirectoryReplacedBySymlinkInSameLayer) {
  // The final mtime pass must skip a directory that a later entry replaced.
  auto r = apply({testing::dir("d"), testing::file("d/f", "1"), testing::symlink("d", "/tmp")});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(S_ISLNK(lstat_of("d").st_mode));
  EXPECT_TRUE(empty_dir(outside_));
}

TEST_F(LayerTest, RootEntryUpdatesRootMetadata) {
  TarEntry root = testing::dir("./", 0751);
  root.mtime = 1111111111;
  auto r = apply({root, testing::file("./a", "1")});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  struct stat st;
  ASSERT_EQ(::stat(root_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0751u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1111111111);
  EXPECT_EQ(read("a"), "1");
}

}  // namespace
}  // namespace vessel::rootfs
