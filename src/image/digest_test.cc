#include "image/digest.h"

#include <gtest/gtest.h>

namespace vessel::image {
namespace {

constexpr const char* kEmpty =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(Digest, HashesKnownValues) {
  EXPECT_EQ(Digest::of(std::string_view("")).str(), kEmpty);
  Sha256 h;
  h.update("ab", 2);
  h.update("c", 1);
  EXPECT_EQ(h.bytes(), 3u);
  EXPECT_EQ(h.finish().hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Digest, ParsesAndRejects) {
  auto d = Digest::parse(kEmpty);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->short_hex(), "e3b0c44298fc");
  EXPECT_FALSE(Digest::parse("sha256:abc").ok());
  EXPECT_FALSE(
      Digest::parse("md5:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").ok());
  EXPECT_FALSE(
      Digest::parse("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").ok());
  EXPECT_FALSE(
      Digest::parse("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855")
          .ok());
  auto bad = Digest::parse("sha256:../../etc/passwd");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("'sha256:../../etc/passwd'"), std::string::npos);
}

}  // namespace
}  // namespace vessel::image
