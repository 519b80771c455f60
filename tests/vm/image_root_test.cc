// A container rooted on an ext4 image: the image is the read-only lower
// layer, each container gets its own writable layer (overlayfs in the guest).
#include <gtest/gtest.h>

#include "image/digest.h"
#include "support/cli_runner.h"
#include "sys/fs.h"

namespace vessel::test {
namespace {

class ImageRootTest : public VmTest {
 protected:
  void SetUp() override {
    VmTest::SetUp();
    if (IsSkipped()) return;
    image_ = scratch_dir() + "/busybox.ext4";
    // mkfs.ext4 -d copies the fixture into a fresh filesystem image.
    CliResult mk = run_process({"/usr/sbin/mkfs.ext4", "-q", "-F", "-d", paths().rootfs, "-O",
                                "^has_journal", image_, "64M"},
                               {});
    ASSERT_EQ(mk.exit_code, 0) << mk.err;
  }
  std::string image_hash() {
    auto content = sys::read_file(image_, 256u << 20);
    EXPECT_TRUE(content.ok());
    return image::Digest::of(*content).str();
  }
  CliResult run_image(std::vector<std::string> args) {
    args.insert(args.begin(), {"--rootfs-image", image_});
    return run(args);
  }
  std::string image_;
};

TEST_F(ImageRootTest, ContainersWriteTheirOwnLayerAndTheImageStaysUnchanged) {
  std::string before = image_hash();
  CliResult a = run_image({"sh", "-c", "echo a > /mine && cat /mine && mount"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.out.find("a\n"), std::string::npos);
  EXPECT_NE(a.out.find("overlay on / type overlay"), std::string::npos) << a.out;

  CliResult b = run_image({"sh", "-c", "test -e /mine && echo leaked || echo clean"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(b.out, "clean\n");
  EXPECT_EQ(image_hash(), before);
}

TEST_F(ImageRootTest, ReadOnlyRootRefusesWrites) {
  CliResult r = run_image({"--read-only", "touch", "/x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.err;
}

TEST_F(ImageRootTest, MissingImageIsAClearError) {
  CliResult r = run({"--rootfs-image", scratch_dir() + "/nope.ext4", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_NE(r.err.find("nope.ext4"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace vessel::test
