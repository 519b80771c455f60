#include "base/strings.h"

#include <gtest/gtest.h>

namespace vessel {
namespace {

TEST(Strings, Split) {
  EXPECT_EQ(split("a=b=c", '='), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(split("", ':'), (std::vector<std::string>{""}));
  EXPECT_EQ(split("a::", ':'), (std::vector<std::string>{"a", "", ""}));
}

TEST(Strings, ParseU64RejectsJunkAndOverflow) {
  EXPECT_EQ(parse_u64("0"), 0u);
  EXPECT_EQ(parse_u64("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(parse_u64("18446744073709551616"));
  EXPECT_FALSE(parse_u64("-1"));
  EXPECT_FALSE(parse_u64(" 1"));
  EXPECT_FALSE(parse_u64(""));
}

TEST(Strings, ParseSizeUnits) {
  EXPECT_EQ(parse_size("512m"), 512ull << 20);
  EXPECT_EQ(parse_size("512M"), 512ull << 20);
  EXPECT_EQ(parse_size("1g"), 1ull << 30);
  EXPECT_EQ(parse_size("1GiB"), 1ull << 30);
  EXPECT_EQ(parse_size("2048k"), 2048ull << 10);
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("10mb"), 10ull << 20);
  EXPECT_FALSE(parse_size("12x"));
  EXPECT_FALSE(parse_size("m"));
  EXPECT_FALSE(parse_size("99999999999999t"));
}

}  // namespace
}  // namespace vessel
