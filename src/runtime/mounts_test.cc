#include "runtime/mounts.h"

#include <gtest/gtest.h>

namespace vessel::runtime {
namespace {

using Type = MountSpec::Type;

TEST(VolumeFlag, DockerForms) {
  auto bind = parse_volume_flag("/srv/data:/data:ro");
  ASSERT_TRUE(bind.ok()) << bind.error().to_string();
  EXPECT_EQ(bind->type, Type::kBind);
  EXPECT_EQ(bind->source, "/srv/data");
  EXPECT_EQ(bind->target, "/data");
  EXPECT_TRUE(bind->read_only);
  EXPECT_TRUE(bind->create_source);

  auto named = parse_volume_flag("cache:/var/cache");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->type, Type::kVolume);
  EXPECT_EQ(named->source, "cache");
  EXPECT_FALSE(named->read_only);

  auto anon = parse_volume_flag("/scratch");
  ASSERT_TRUE(anon.ok());
  EXPECT_EQ(anon->type, Type::kVolume);
  EXPECT_EQ(anon->source, "");
}

TEST(VolumeFlag, RejectsWhatDockerRejects) {
  for (const char* bad :
       {"data:relative", "/a:/b:rx", "./dir:/x", "a:/b:ro:extra", ":/x", "/a:/b/../c", "x:/y"})
    EXPECT_FALSE(parse_volume_flag(bad).ok()) << bad;
  auto e = parse_volume_flag("/a:/b:rx");
  EXPECT_NE(e.error().message().find("'rx'"), std::string::npos);
}

TEST(MountFlag, Types) {
  auto b = parse_mount_flag("type=bind,source=/etc/hosts,target=/x/hosts,readonly");
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  EXPECT_EQ(b->type, Type::kBind);
  EXPECT_TRUE(b->read_only);
  EXPECT_FALSE(b->create_source);
  auto v = parse_mount_flag("type=volume,src=data,dst=/data,ro=false");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->type, Type::kVolume);
  EXPECT_FALSE(v->read_only);
  auto t = parse_mount_flag("type=tmpfs,target=/run/x,tmpfs-size=64m,tmpfs-mode=1770");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->options, "size=64m,mode=1770");
  for (const char* bad :
       {"type=bind,target=/x", "type=nfs,target=/x", "type=tmpfs,src=a,target=/x",
        "type=volume,target=/x,color=red", "type=bind,source=/a,target=/x,ro=maybe",
        "type=bind,source=/a,target=/x,tmpfs-size=1m"})
    EXPECT_FALSE(parse_mount_flag(bad).ok()) << bad;
}

TEST(TmpfsFlag, Options) {
  auto t = parse_tmpfs_flag("/run:size=16m,mode=755");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->target, "/run");
  EXPECT_EQ(t->options, "size=16m,mode=755");
  EXPECT_FALSE(parse_tmpfs_flag("/run:size=lots").ok());
  EXPECT_FALSE(parse_tmpfs_flag("/run:uid=0").ok());
  EXPECT_FALSE(parse_tmpfs_flag("run").ok());
}

TEST(Mounts, NoDuplicatesNoRoot) {
  std::vector<MountSpec> ms = {*parse_tmpfs_flag("/a"), *parse_volume_flag("/a/")};
  EXPECT_FALSE(check_mounts(ms).ok());
  EXPECT_FALSE(check_mounts({*parse_tmpfs_flag("/")}).ok());
  EXPECT_TRUE(check_mounts({*parse_tmpfs_flag("/a"), *parse_tmpfs_flag("/b")}).ok());
}

}  // namespace
}  // namespace vessel::runtime
