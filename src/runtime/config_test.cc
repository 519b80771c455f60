#include "runtime/run.h"

#include <algorithm>

#include <gtest/gtest.h>

namespace vessel::runtime {
namespace {

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(PrepareSpec, DockerDefaults) {
  RunSpec s;
  s.argv = {"true"};
  s.tty = true;
  ASSERT_TRUE(prepare_spec(s, "0123456789abcdef").ok());
  EXPECT_EQ(s.hostname, "0123456789ab");
  EXPECT_TRUE(has(s.env, std::string("PATH=") + kDefaultPath));
  EXPECT_TRUE(has(s.env, "HOSTNAME=0123456789ab"));
  EXPECT_TRUE(has(s.env, "TERM=xterm"));
  EXPECT_TRUE(has(s.env, "HOME=/root"));
}

TEST(PrepareSpec, UserValuesWin) {
  RunSpec s;
  s.argv = {"true"};
  s.env = {"PATH=/x", "HOME=/h"};
  s.uid = 1000;
  ASSERT_TRUE(prepare_spec(s, "abc").ok());
  EXPECT_TRUE(has(s.env, "PATH=/x"));
  EXPECT_FALSE(has(s.env, std::string("PATH=") + kDefaultPath));
  EXPECT_FALSE(has(s.env, "HOME=/"));
}

TEST(PrepareSpec, RejectsBadInput) {
  RunSpec s;
  EXPECT_FALSE(prepare_spec(s, "id").ok());  // no command
  s.argv = {"true"};
  s.workdir = "relative";
  auto r = prepare_spec(s, "id");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("'relative'"), std::string::npos);
  s.workdir = "/";
  s.env = {"=x"};
  EXPECT_FALSE(prepare_spec(s, "id").ok());
  s.env = {};
  s.memory_bytes = 1 << 20;
  EXPECT_FALSE(prepare_spec(s, "id").ok());
}

}  // namespace
}  // namespace vessel::runtime
