#include "base/error.h"

#include <gtest/gtest.h>

namespace vessel {
namespace {

Result<int> half(int v) {
  if (v % 2) return Error(ErrorCode::kInvalidArgument, "odd value " + std::to_string(v));
  return v / 2;
}

Result<int> quarter(int v) {
  VESSEL_ASSIGN_OR_RETURN(int h, half(v));
  return half(h);
}

TEST(Error, ChainsCausesInMessage) {
  Error root = Error::from_errno(ENOENT, "open '/x'");
  Error outer = root.wrap("start vm");
  EXPECT_EQ(outer.code(), ErrorCode::kNotFound);
  EXPECT_EQ(outer.to_string(), "start vm: open '/x' (No such file or directory)");
  ASSERT_NE(outer.cause(), nullptr);
  EXPECT_EQ(outer.cause()->message(), "open '/x'");
}

TEST(Result, PropagatesErrors) {
  EXPECT_EQ(*quarter(8), 2);
  auto r = quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "odd value 3");
}

TEST(Result, VoidStatus) {
  Status s;
  EXPECT_TRUE(s.ok());
  Status bad = Error(ErrorCode::kTimeout, "late");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kTimeout);
}

}  // namespace
}  // namespace vessel
