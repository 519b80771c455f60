// The Docker-shaped views of a container record, on a state store in a
// temporary directory (no VM, no root).
#include "containers/views.h"

#include <gtest/gtest.h>

#include "sys/fs.h"

namespace vessel::containers {
namespace {

using nlohmann::json;

class ContainerViewsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = sys::make_temp_dir("/tmp", "vessel-views-test-");
    ASSERT_TRUE(dir.ok()) << dir.error().to_string();
    dir_ = *dir;
    auto cs = Containers::open(dir_);
    ASSERT_TRUE(cs.ok()) << cs.error().to_string();
    cs_ = std::move(*cs);
  }
  void TearDown() override {
    cs_.reset();
    if (!dir_.empty()) (void)sys::remove_tree(dir_);
  }
  // An exited container with a label, a volume and a restart policy.
  ContainerRecord add() {
    runtime::ContainerConfig c;
    c.argv = {"sh", "-c", "exit 3"};
    c.image = "vessel/busybox:latest";
    c.labels = {{"role", "test"}};
    c.restart = *runtime::parse_restart_policy("on-failure:2");
    c.memory_bytes = 512ull << 20;
    c.memory_limit_bytes = 256ull << 20;  // lowered while it ran
    c.cap_drop = {"NET_RAW"};
    c.no_new_privileges = true;
    c.network_mode = "none";
    c.mounts.push_back(*runtime::parse_volume_flag("data:/data:ro"));
    ContainerRecord r;
    r.id = std::string(64, 'a');
    r.name = "web";
    r.image = c.image;
    r.image_id = "sha256:" + std::string(64, 'b');
    r.config = runtime::to_json(c);
    r.created = 1'700'000'000'000'000'000;
    r.state.status = state::RunState::kExited;
    r.state.exit_code = 3;
    r.state.started = r.created + 1'000'000'000;
    r.state.finished = r.created + 3'000'000'000;
    EXPECT_TRUE(cs_->store().add_container(r).ok());
    return r;
  }
  std::string dir_;
  std::unique_ptr<Containers> cs_;
};

TEST_F(ContainerViewsTest, InspectHasDockersShape) {
  ContainerRecord r = add();
  json j = inspect_view(*cs_, r);
  EXPECT_EQ(j["Id"], r.id);
  EXPECT_EQ(j["Name"], "/web");
  EXPECT_EQ(j["Path"], "sh");
  EXPECT_EQ(j["Args"], (json{"-c", "exit 3"}));
  EXPECT_EQ(j["State"]["Status"], "exited");
  EXPECT_EQ(j["State"]["Running"], false);
  EXPECT_EQ(j["State"]["ExitCode"], 3);
  EXPECT_EQ(j["State"]["StartedAt"], iso_time(r.state.started));
  EXPECT_EQ(j["Config"]["Labels"]["role"], "test");
  EXPECT_EQ(j["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
  EXPECT_EQ(j["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
  EXPECT_EQ(j["HostConfig"]["Memory"], 256 << 20);
  EXPECT_EQ(j["HostConfig"]["CapDrop"], (json{"NET_RAW"}));
  EXPECT_EQ(j["HostConfig"]["SecurityOpt"], (json{"no-new-privileges"}));
  ASSERT_EQ(j["Mounts"].size(), 1u);
  EXPECT_EQ(j["Mounts"][0]["Type"], "volume");
  EXPECT_EQ(j["Mounts"][0]["Name"], "data");
  EXPECT_EQ(j["Mounts"][0]["Source"], cs_->volume_data("data"));
  EXPECT_EQ(j["Mounts"][0]["RW"], false);
}

TEST_F(ContainerViewsTest, ListEntryHasDockersShape) {
  ContainerRecord r = add();
  json j = list_view(*cs_, r, r.state.finished + 5'000'000'000);
  EXPECT_EQ(j["Id"], r.id);
  EXPECT_EQ(j["Names"], (json{"/web"}));
  EXPECT_EQ(j["Command"], "sh -c exit 3");
  EXPECT_EQ(j["Created"], 1'700'000'000);
  EXPECT_EQ(j["State"], "exited");
  EXPECT_EQ(j["Status"], "Exited (3) 5 seconds ago");
  EXPECT_EQ(j["Labels"]["role"], "test");
  EXPECT_EQ(j["HostConfig"]["NetworkMode"], "none");
  EXPECT_EQ(j["Ports"], json::array());
  json ls = ls_view(*cs_, r, r.state.finished);
  EXPECT_EQ(ls["ID"], r.id);
  EXPECT_EQ(ls["Names"], "web");
  EXPECT_EQ(ls["ExitCode"], 3);
}

TEST_F(ContainerViewsTest, VolumeAndTimes) {
  auto v = cs_->create_volume("data", {{"k", "v"}});
  ASSERT_TRUE(v.ok()) << v.error().to_string();
  json j = volume_view(*cs_, *v);
  EXPECT_EQ(j["Name"], "data");
  EXPECT_EQ(j["Driver"], "local");
  EXPECT_EQ(j["Labels"]["k"], "v");
  EXPECT_EQ(j["Mountpoint"], cs_->volume_data("data"));
  EXPECT_EQ(iso_time(0), "0001-01-01T00:00:00Z");
}

}  // namespace
}  // namespace vessel::containers
