#include "net/dns.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "sys/fs.h"

namespace vessel::net {
namespace {

Ipv4 ip(const char* s) {
  return *Ipv4::parse(s);
}

TEST(RenderHosts, EachNameAndItsQualifiedForm) {
  std::string out =
      render_hosts({{ip("10.88.0.2"), {"web", "frontend"}}, {ip("10.88.0.3"), {"db"}}});
  EXPECT_EQ(out,
            "# written by vessel: the containers of this network\n"
            "10.88.0.2\tweb web.vessel.internal frontend frontend.vessel.internal\n"
            "10.88.0.3\tdb db.vessel.internal\n");
}

TEST(RenderHosts, EmptyIsOnlyTheHeader) {
  EXPECT_EQ(render_hosts({}), "# written by vessel: the containers of this network\n");
}

TEST(RenderHosts, NoDuplicatesAndQualifiedNamesKeptOnce) {
  std::string out = render_hosts(
      {{ip("10.88.0.2"), {"web", "web", "web.vessel.internal", "api.vessel.internal", "my_app"}}});
  EXPECT_EQ(out,
            "# written by vessel: the containers of this network\n"
            "10.88.0.2\tweb web.vessel.internal api.vessel.internal my_app "
            "my_app.vessel.internal\n");
}

TEST(RenderHosts, SkipsNamesThatWouldBreakTheFile) {
  std::string out = render_hosts(
      {{ip("10.88.0.2"), {"ok", "two words", "x\n10.0.0.1 evil", "#c", "", ".dot", "-dash"}},
       {ip("10.88.0.3"), {"bad name"}}});
  EXPECT_EQ(out,
            "# written by vessel: the containers of this network\n"
            "10.88.0.2\tok ok.vessel.internal\n");
}

class DnsDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = sys::make_temp_dir(::testing::TempDir(), "vessel-dns-");
    ASSERT_TRUE(d.ok()) << d.error().to_string();
    config_.dir = *d;
    config_.bridge = "vessel-test0";
    config_.listen = ip("10.88.0.1");
  }
  void TearDown() override { (void)sys::remove_tree(config_.dir); }
  DnsConfig config_;
};

TEST_F(DnsDirTest, InvalidNameIsRefusedBeforeAnythingChanges) {
  Status s = sync_dns(config_, {{ip("10.88.0.2"), {"web"}}, {ip("10.88.0.3"), {"bad name"}}});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.error().message().find("'bad name'"), std::string::npos) << s.error().message();
  EXPECT_FALSE(sys::read_file(config_.dir + "/hosts").ok()) << "hosts written anyway";
}

TEST_F(DnsDirTest, NotRunningWithoutAPidFile) {
  EXPECT_FALSE(dns_running(config_));
  EXPECT_TRUE(stop_dns(config_).ok());
  EXPECT_TRUE(sync_dns(config_, {}).ok()) << "no records, nothing running: nothing to do";
}

TEST_F(DnsDirTest, APidFileNamingAnotherProcessIsNotTrusted) {
  // Our own pid is alive but is not this directory's dnsmasq: stop_dns must
  // not signal it (the test would die) and clears the stale file.
  for (std::string pid : {std::to_string(::getpid()), std::string("1"), std::string("garbage"),
                          std::string("999999999")}) {
    ASSERT_TRUE(sys::write_file_atomic(config_.dir + "/dnsmasq.pid", pid + "\n").ok());
    EXPECT_FALSE(dns_running(config_)) << pid;
    Status s = stop_dns(config_);
    EXPECT_TRUE(s.ok()) << s.error().to_string();
    EXPECT_FALSE(sys::read_file(config_.dir + "/dnsmasq.pid").ok()) << pid;
  }
}

}  // namespace
}  // namespace vessel::net
