// The network model and IPAM without root: a recording backend stands in
// for the host objects (the bridge backend itself is exercised by the
// privileged net tests and the VM-tier network tests).
#include "networks/networks.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "sys/fs.h"

namespace vessel::networks {
namespace {

class RecordingBackend final : public Backend {
 public:
  explicit RecordingBackend(std::set<std::string>* up) : up_(up) {}
  Status setup(const Network& n, const std::vector<Network>&) override {
    up_->insert(n.bridge);
    return ok_status();
  }
  Status teardown(const Network& n, const std::vector<Network>&) override {
    up_->erase(n.bridge);
    return ok_status();
  }
  Result<UniqueFd> plug(const Nic&) override { return UniqueFd(::dup(0)); }
  Result<std::vector<std::string>> sweep(const std::vector<Network>&) override {
    return std::vector<std::string>{};
  }
  bool present(const Network& n) override { return up_->count(n.bridge) > 0; }
  Status serve_dns(const Network&, const std::string&,
                   const std::vector<net::DnsRecord>&) override {
    return ok_status();
  }
  bool dns_running(const Network&, const std::string&) override { return false; }

 private:
  std::set<std::string>* up_;
};

const std::string kIdA = "aaaa1111" + std::string(56, '0');
const std::string kIdB = "bbbb2222" + std::string(56, '0');

class NetworksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vessel-networks-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = state::Store::open(dir_ + "/state.db");
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    store_ = std::move(*s);
    nets_ = make();
  }
  void TearDown() override { (void)sys::remove_tree(dir_); }

  std::unique_ptr<Networks> make() {
    return std::make_unique<Networks>(
        dir_, *store_, [this](const std::string& id) { return alive_.count(id) > 0; },
        std::make_unique<RecordingBackend>(&up_));
  }

  Status add(const std::string& id, const std::string& name,
             const std::vector<Attachment>& requests) {
    auto eps = nets_->plan(id, requests);
    if (!eps.ok()) return eps.error();
    state::ContainerRecord r;
    r.id = id;
    r.name = name;
    r.config = "{}";
    return store_->add_container(r, *eps);
  }

  std::string dir_;
  std::unique_ptr<state::Store> store_;
  std::set<std::string> up_, alive_;
  std::unique_ptr<Networks> nets_;
};

TEST_F(NetworksTest, DefaultExistsFromFirstUse) {
  auto all = nets_->list();
  ASSERT_TRUE(all.ok()) << all.error().to_string();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].name, "default");
  EXPECT_EQ((*all)[0].subnet.to_string(), kDefaultSubnet);
  EXPECT_EQ((*all)[0].gateway.to_string(), "10.220.0.1");
  EXPECT_EQ((*all)[0].bridge, "vessel0");
  auto rm = nets_->remove("default");
  ASSERT_FALSE(rm.ok());
  EXPECT_EQ(rm.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(NetworksTest, DefaultSubnetFromTheRootsConfiguration) {
  ASSERT_TRUE(
      sys::write_file_atomic(dir_ + "/networks.json", R"({"default_subnet": "10.77.0.0/20"})")
          .ok());
  auto n = nets_->get("default");
  ASSERT_TRUE(n.ok()) << n.error().to_string();
  EXPECT_EQ(n->subnet.to_string(), "10.77.0.0/20");
  EXPECT_EQ(n->gateway.to_string(), "10.77.0.1");
}

TEST_F(NetworksTest, CreateChecksItsInputAndChangesNothingOnError) {
  auto a = nets_->create({"front", "10.50.0.0/24", "", false, {{"k", "v"}}});
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(a->gateway.to_string(), "10.50.0.1");
  EXPECT_TRUE(up_.count(a->bridge));
  EXPECT_EQ(a->bridge.size(), 15u);

  struct Case {
    CreateOptions o;
    std::string says;
  };
  std::vector<Case> bad = {
      {{"front", "", "", false, {}}, "already exists"},
      {{"other", "10.50.0.128/25", "", false, {}}, "overlaps network front"},
      {{"other", "10.60.0.0/24", "10.61.0.1", false, {}}, "not a host address of subnet"},
      {{"other", "10.60.0.0/24", "10.60.0.255", false, {}}, "not a host address"},
      {{"other", "10.60.0.1/24", "", false, {}}, "10.60.0.0/24"},
      {{"other", "banana", "", false, {}}, "banana"},
      {{"bad name!", "", "", false, {}}, "invalid network name"},
      {{"none", "", "", false, {}}, "reserved"},
  };
  for (const auto& c : bad) {
    auto r = nets_->create(c.o);
    ASSERT_FALSE(r.ok()) << c.o.name << " " << c.o.subnet;
    EXPECT_NE(r.error().to_string().find(c.says), std::string::npos) << r.error().to_string();
  }
  auto all = nets_->list();
  ASSERT_EQ(all->size(), 2u);  // default and front
}

TEST_F(NetworksTest, UserNetworksGetFreeSubnetsOfTheirOwn) {
  auto a = nets_->create({"a", "", "", false, {}});
  auto b = nets_->create({"b", "", "", true, {}});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->subnet.to_string(), "10.221.0.0/24");
  EXPECT_EQ(b->subnet.to_string(), "10.221.1.0/24");
  EXPECT_TRUE(b->internal);
  EXPECT_NE(a->bridge, b->bridge);
}

TEST_F(NetworksTest, PlanChecksRequests) {
  ASSERT_TRUE(nets_->create({"u", "10.50.0.0/24", "", false, {}}).ok());
  auto none = nets_->plan(kIdA, {{"none", "", "", {}}});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto dflt = nets_->plan(kIdA, {});
  ASSERT_TRUE(dflt.ok());
  ASSERT_EQ(dflt->size(), 1u);
  EXPECT_EQ((*dflt)[0].network, "default");
  // Stable MAC, locally administered.
  auto again = nets_->plan(kIdA, {});
  EXPECT_EQ((*dflt)[0].mac, (*again)[0].mac);
  int first = std::stoi((*dflt)[0].mac.substr(0, 2), nullptr, 16);
  EXPECT_TRUE(first & 2);   // locally administered
  EXPECT_FALSE(first & 1);  // unicast

  struct Case {
    std::vector<Attachment> a;
    std::string says;
  };
  std::vector<Case> bad = {
      {{{"nope", "", "", {}}}, "network nope not found"},
      {{{"u", "10.51.0.2", "", {}}}, "outside network u"},
      {{{"u", "10.50.0.1", "", {}}}, "gateway"},
      {{{"u", "10.50.0.x", "", {}}}, "10.50.0.x"},
      {{{"default", "10.220.0.9", "", {}}}, "only for user networks"},
      {{{"u", "", "01:00:5e:00:00:01", {}}}, "mac"},
      {{{"u", "", "", {"bad alias!"}}}, "network-alias"},
      {{{"none", "", "", {}}, {"u", "", "", {}}}, "none cannot be combined"},
      {{{"u", "", "", {}}, {"u", "", "", {}}}, "twice"},
  };
  for (const auto& c : bad) {
    auto r = nets_->plan(kIdA, c.a);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_NE(r.error().to_string().find(c.says), std::string::npos) << r.error().to_string();
  }
}

TEST_F(NetworksTest, LeasesAreUniqueKeptAcrossRestartsAndReleased) {
  ASSERT_TRUE(nets_->create({"u", "10.50.0.0/29", "", false, {}}).ok());  // 5 usable
  ASSERT_TRUE(add(kIdA, "a", {{"u", "", "", {"web"}}}).ok());
  ASSERT_TRUE(add(kIdB, "b", {{"u", "10.50.0.2", "", {}}}).ok());
  alive_ = {kIdA, kIdB};
  auto b = nets_->acquire(kIdB);
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  EXPECT_EQ((*b)[0].address.to_string(), "10.50.0.2");
  auto a = nets_->acquire(kIdA);
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ((*a)[0].address.to_string(), "10.50.0.3");  // .1 gateway, .2 fixed for b
  EXPECT_EQ((*a)[0].name, "eth0");
  EXPECT_EQ((*a)[0].tap,
            "vtaaaa11110000"
            "0");
  EXPECT_EQ((*a)[0].aliases, std::vector<std::string>{"web"});
  // A second acquire by the same container (a restart) keeps the address.
  EXPECT_EQ((*nets_->acquire(kIdA))[0].address.to_string(), "10.50.0.3");
  // Stopped and started again: the same address when it is still free.
  ASSERT_TRUE(nets_->release(kIdA).ok());
  EXPECT_TRUE(store_->leases("u")->size() == 1);
  EXPECT_EQ((*nets_->acquire(kIdA))[0].address.to_string(), "10.50.0.3");
}

TEST_F(NetworksTest, FixedAddressInUseIsRefusedAtCreate) {
  ASSERT_TRUE(nets_->create({"u", "10.50.0.0/24", "", false, {}}).ok());
  ASSERT_TRUE(add(kIdA, "a", {{"u", "10.50.0.7", "", {}}}).ok());
  // Not running: another container may ask for the address too.
  const std::string kIdC = "cccc3333" + std::string(56, '0');
  ASSERT_TRUE(add(kIdC, "c", {{"u", "10.50.0.7", "", {}}}).ok());
  // Running (holding it): refused.
  alive_ = {kIdA};
  ASSERT_TRUE(nets_->acquire(kIdA).ok());
  auto dup = add(kIdB, "b", {{"u", "10.50.0.7", "", {}}});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(dup.error().to_string().find("10.50.0.7"), std::string::npos);
  EXPECT_FALSE(store_->container(kIdB).ok());  // nothing half-written
  // And c cannot start while a holds it.
  alive_.insert(kIdC);
  auto c = nets_->acquire(kIdC);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().to_string().find("in use"), std::string::npos);
}

TEST_F(NetworksTest, LeasesOfDeadMonitorsAreStale) {
  ASSERT_TRUE(nets_->create({"u", "10.50.0.0/24", "", false, {}}).ok());
  ASSERT_TRUE(add(kIdA, "a", {{"u", "", "", {}}}).ok());
  ASSERT_TRUE(add(kIdB, "b", {{"u", "", "", {}}}).ok());
  alive_ = {kIdA};
  ASSERT_EQ((*nets_->acquire(kIdA))[0].address.to_string(), "10.50.0.2");
  alive_.clear();  // A's monitor died (kill -9)
  auto swept = nets_->sweep();
  ASSERT_TRUE(swept.ok()) << swept.error().to_string();
  EXPECT_TRUE(store_->leases("u")->empty());
  alive_ = {kIdB};
  EXPECT_EQ((*nets_->acquire(kIdB))[0].address.to_string(), "10.50.0.2");
}

TEST_F(NetworksTest, RemoveIsRefusedWhileAContainerIsAttached) {
  ASSERT_TRUE(nets_->create({"u", "10.50.0.0/24", "", false, {}}).ok());
  ASSERT_TRUE(add(kIdA, "a", {{"u", "", "", {}}}).ok());
  auto rm = nets_->remove("u");
  ASSERT_FALSE(rm.ok());
  EXPECT_EQ(rm.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(rm.error().to_string().find("a"), std::string::npos);
  auto pruned = nets_->prune();
  ASSERT_TRUE(pruned.ok());
  EXPECT_TRUE(pruned->empty());
  ASSERT_TRUE(store_->remove_container(kIdA).ok());
  pruned = nets_->prune();
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, std::vector<std::string>{"u"});
  EXPECT_TRUE(up_.empty());  // default's bridge taken down too
}

// Parallel creators in separate processes never get the same address.
TEST_F(NetworksTest, ParallelLeasesNeverCollide) {
  ASSERT_TRUE(nets_->create({"u", "10.50.0.0/24", "", false, {}}).ok());
  constexpr int kProcs = 8;
  std::vector<std::string> ids;
  for (int i = 0; i < kProcs; ++i) {
    std::string id = std::to_string(1000 + i) + std::string(60, 'c');
    ids.push_back(id);
    ASSERT_TRUE(add(id, "c" + std::to_string(i), {{"u", "", "", {}}}).ok());
  }
  std::vector<pid_t> pids;
  for (int i = 0; i < kProcs; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) {
      auto s = state::Store::open(dir_ + "/state.db");
      if (!s.ok()) ::_exit(2);
      std::set<std::string> up;
      Networks n(
          dir_, **s, [](const std::string&) { return true; },
          std::make_unique<RecordingBackend>(&up));
      ::_exit(n.acquire(ids[i]).ok() ? 0 : 1);
    }
    pids.push_back(pid);
  }
  for (pid_t p : pids) {
    int status = 0;
    ::waitpid(p, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto leases = store_->leases("u");
  ASSERT_EQ(leases->size(), static_cast<size_t>(kProcs));
  std::set<uint32_t> distinct;
  for (const auto& l : *leases)
    distinct.insert(l.ip);
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kProcs));
}

}  // namespace
}  // namespace vessel::networks
