#include "runtime/config.h"

#include "runtime/container_vm.h"

#include <algorithm>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace vessel::runtime {
namespace {

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(PrepareConfig, DockerDefaults) {
  ContainerConfig s;
  s.rootfs = "/";
  s.argv = {"true"};
  s.tty = true;
  ASSERT_TRUE(prepare_config(s, "0123456789abcdef").ok());
  EXPECT_EQ(s.hostname, "0123456789ab");
  EXPECT_TRUE(has(s.env, std::string("PATH=") + kDefaultPath));
  EXPECT_TRUE(has(s.env, "HOSTNAME=0123456789ab"));
  EXPECT_TRUE(has(s.env, "TERM=xterm"));
  EXPECT_TRUE(has(s.env, "HOME=/root"));
}

TEST(PrepareConfig, UserValuesWin) {
  ContainerConfig s;
  s.rootfs = "/";
  s.argv = {"true"};
  s.env = {"PATH=/x", "HOME=/h"};
  s.uid = 1000;
  ASSERT_TRUE(prepare_config(s, "abc").ok());
  EXPECT_TRUE(has(s.env, "PATH=/x"));
  EXPECT_FALSE(has(s.env, std::string("PATH=") + kDefaultPath));
  EXPECT_FALSE(has(s.env, "HOME=/"));
}

TEST(PrepareConfig, RejectsBadInput) {
  ContainerConfig s;
  s.rootfs = "/";
  EXPECT_FALSE(prepare_config(s, "id").ok());  // no command
  s.argv = {"true"};
  s.workdir = "relative";
  auto r = prepare_config(s, "id");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("'relative'"), std::string::npos);
  s.workdir = "/";
  s.env = {"=x"};
  EXPECT_FALSE(prepare_config(s, "id").ok());
  s.env = {};
  s.memory_bytes = 1 << 20;
  EXPECT_FALSE(prepare_config(s, "id").ok());
}

TEST(RestartPolicy, ParsesDockerForms) {
  EXPECT_EQ(parse_restart_policy("no")->kind, RestartPolicy::Kind::kNo);
  EXPECT_EQ(parse_restart_policy("always")->kind, RestartPolicy::Kind::kAlways);
  EXPECT_EQ(parse_restart_policy("unless-stopped")->kind, RestartPolicy::Kind::kUnlessStopped);
  auto p = parse_restart_policy("on-failure:3");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->kind, RestartPolicy::Kind::kOnFailure);
  EXPECT_EQ(p->max_retries, 3);
  EXPECT_EQ(p->to_string(), "on-failure:3");
  EXPECT_FALSE(parse_restart_policy("sometimes").ok());
  EXPECT_FALSE(parse_restart_policy("always:3").ok());
  EXPECT_FALSE(parse_restart_policy("on-failure:x").ok());
}

TEST(Signals, ByNameOrNumber) {
  EXPECT_EQ(*parse_signal("TERM"), 15);
  EXPECT_EQ(*parse_signal("SIGKILL"), 9);
  EXPECT_EQ(*parse_signal("sigint"), 2);
  EXPECT_EQ(*parse_signal("10"), 10);
  EXPECT_FALSE(parse_signal("0").ok());
  EXPECT_FALSE(parse_signal("NOPE").ok());
  EXPECT_FALSE(parse_signal("99").ok());
}

TEST(ConfigJson, RoundTrips) {
  ContainerConfig c;
  c.root_image = "/x/snap.ext4";
  c.argv = {"sh", "-c", "echo hi"};
  c.env = {"A=1"};
  c.user = "nobody";
  c.tty = true;
  c.labels = {{"k", "v"}};
  c.restart = *parse_restart_policy("on-failure:2");
  c.stop_signal = 3;
  c.pod_role = kPodMember;
  c.pod_sandbox = "abc123";
  c.pod_dir = "web";
  c.no_process = true;
  c.root_disk = true;
  auto back = config_from_json(to_json(c));
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(back->argv, c.argv);
  EXPECT_EQ(back->user, "nobody");
  EXPECT_TRUE(back->tty);
  EXPECT_EQ(back->labels.at("k"), "v");
  EXPECT_EQ(back->restart.max_retries, 2);
  EXPECT_EQ(back->stop_signal, 3);
  EXPECT_EQ(back->pod_role, kPodMember);
  EXPECT_EQ(back->pod_sandbox, "abc123");
  EXPECT_EQ(back->pod_dir, "web");
  EXPECT_TRUE(back->no_process);
  EXPECT_TRUE(back->root_disk);
  // A container recorded before root_disk existed keeps its overlay root.
  auto j = nlohmann::json::parse(to_json(c));
  j.erase("root_disk");
  auto old = config_from_json(j.dump());
  ASSERT_TRUE(old.ok()) << old.error().to_string();
  EXPECT_FALSE(old->root_disk);
  EXPECT_FALSE(config_from_json("{}").ok());
  EXPECT_FALSE(config_from_json("not json").ok());
}

// An update of a running container, kept in its config, gives the same
// limits at its next start; the VM keeps its size.
TEST(ContainerLimits, KeptUpdatesComeBackAtTheNextStart) {
  ContainerConfig c;
  c.memory_bytes = 512ull << 20;
  c.cpus = 2;
  protocol::Update u = container_limits(c);
  EXPECT_EQ(u.memory_limit_bytes, 512ull << 20);
  EXPECT_EQ(u.cpu_quota_usec, 0u);
  u.memory_limit_bytes = 128ull << 20;
  u.pids_limit = 64;
  u.cpu_quota_usec = 25'000;  // half a CPU of a 50 ms period
  u.cpu_period_usec = 50'000;
  keep_limits(c, u);
  EXPECT_EQ(c.memory_bytes, 512ull << 20);
  EXPECT_EQ(c.memory_limit_bytes, 128ull << 20);
  EXPECT_EQ(c.cpu_millis, 500u);
  auto again = config_from_json(to_json(c));
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  protocol::Update next = container_limits(*again);
  EXPECT_EQ(next.memory_limit_bytes, 128ull << 20);
  EXPECT_EQ(next.pids_limit, 64u);
  EXPECT_EQ(next.cpu_quota_usec, 50'000u);
  EXPECT_EQ(next.cpu_period_usec, 100'000u);
  // All the VM has again: no lower limit, no quota.
  keep_limits(c, protocol::Update{512ull << 20, 0, 200'000, 100'000});
  EXPECT_EQ(c.memory_limit_bytes, 0u);
  EXPECT_EQ(c.cpu_millis, 0u);
  EXPECT_EQ(container_limits(c).memory_limit_bytes, 512ull << 20);
}

}  // namespace
}  // namespace vessel::runtime
