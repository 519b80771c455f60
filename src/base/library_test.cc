#include "base/library.h"

#include <gtest/gtest.h>

#include <cstring>

namespace vessel {
namespace {

TEST(Library, BindsFunctionsOfAnOpenedLibrary) {
  // libc is always there (and already loaded: dlopen finds it).
  Library libc("libc.so.6", "libc6");
  decltype(&std::strlen) length = nullptr;
  libc.bind(length, "strlen");
  ASSERT_TRUE(libc.status().ok()) << libc.status().error().to_string();
  ASSERT_NE(length, nullptr);
  EXPECT_EQ(length("vessel"), 6u);
}

TEST(Library, NamesTheMissingSymbols) {
  Library libc("libc.so.6", "libc6");
  decltype(&std::strlen) a = nullptr, b = nullptr;
  libc.bind(a, "vessel_no_such_function");
  libc.bind(b, "vessel_nor_this_one");
  EXPECT_EQ(a, nullptr);
  Status s = libc.status();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("vessel_no_such_function, vessel_nor_this_one"),
            std::string::npos);
  EXPECT_NE(s.error().message().find("libc6"), std::string::npos);
}

TEST(Library, AMissingLibraryNamesItsPackage) {
  Library none("libvessel-does-not-exist.so.9", "vessel-nothing");
  decltype(&std::strlen) fn = reinterpret_cast<decltype(&std::strlen)>(1);
  none.bind(fn, "strlen");
  EXPECT_EQ(fn, nullptr);
  Status s = none.status();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(s.error().message().find("libvessel-does-not-exist.so.9"), std::string::npos);
  EXPECT_NE(s.error().message().find("install vessel-nothing"), std::string::npos);
}

}  // namespace
}  // namespace vessel
