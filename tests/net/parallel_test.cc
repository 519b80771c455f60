// Many containers on one network (issue 8): 8 `run -d` at once get 8
// distinct addresses (IPAM under concurrent CLIs), and `rm -f --all` then
// `network prune` leave the namespace as it was: no tap, bridge, nftables
// table, route, address or process. A binary of its own: 8 boots at once
// under TCG take a while.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "base/strings.h"
#include "net/network_fixture.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr int kContainers = 8;

using NetworkingParallelTest = NetworkTest;

TEST_F(NetworkingParallelTest, EightParallelRunsGetDistinctAddressesAndRemovalLeavesNothing) {
  // The namespace as SetUp made it (only lo, unless the host's kernel adds
  // fallback tunnel devices to every namespace).
  const std::vector<std::string> links_before = links();
  const std::string addresses_before = host({"ip", "-o", "-4", "addr", "show"}).out;
  const std::string routes_before = host({"ip", "-4", "route", "show", "table", "all"}).out;
  const std::string rules_before = ruleset();

  const std::string subnet = "10.230.0.0/24", gateway = "10.230.0.1";
  ASSERT_EQ(vessel({"network", "create", "--subnet", subnet, "par"}).exit_code, 0);
  std::string bridge = bridge_of("par");
  ASSERT_FALSE(bridge.empty());

  std::vector<CliResult> runs(kContainers);
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kContainers; ++i)
      threads.emplace_back([&, i] {
        runs[i] = vessel({"run", "-d", "-m", kMemory, "--cpus", "1", "--network", "par", "--name",
                          "p" + std::to_string(i), kImage, "sh", "-c", kIdle},
                         {.timeout = 300s});
      });
    for (auto& t : threads)
      t.join();
  }
  std::vector<std::string> ids;
  for (int i = 0; i < kContainers; ++i) {
    EXPECT_EQ(runs[i].exit_code, 0) << "p" << i << ": " << runs[i].err;
    std::string id(trim(runs[i].out));
    if (is_full_id(id)) ids.push_back(id);
  }
  ASSERT_EQ(ids.size(), static_cast<size_t>(kContainers));

  std::set<std::string> addresses;
  for (int i = 0; i < kContainers; ++i) {
    std::string ip = ip_of("p" + std::to_string(i), "par");
    EXPECT_TRUE(in_subnet(ip, subnet)) << ip;
    EXPECT_NE(ip, gateway);
    addresses.insert(ip);
  }
  EXPECT_EQ(addresses.size(), static_cast<size_t>(kContainers)) << "an address was given twice";
  json par = network_inspect("par");
  EXPECT_EQ(par["Containers"].size(), static_cast<size_t>(kContainers)) << par.dump();
  CliResult enslaved = host({"ip", "-o", "link", "show", "master", bridge});
  for (const auto& id : ids)
    EXPECT_TRUE(contains(enslaved.out, tap_name(id)))
        << "no tap of " << id << " on " << bridge << ":\n"
        << enslaved.out;
  // They are on one network: the first reaches the last by name.
  CliResult ping = sh("p0", "ping -c 1 -W 10 p" + std::to_string(kContainers - 1), 120s);
  EXPECT_EQ(ping.exit_code, 0) << ping.out << ping.err;

  CliResult rm = vessel({"rm", "-f", "--all"}, {.timeout = 300s});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  for (const auto& id : ids)
    expect_gone(id);
  for (const auto& link : links())
    EXPECT_FALSE(starts_with(link, "vt")) << "rm -f --all left a tap: " << link;

  CliResult prune = vessel({"network", "prune", "-f"});
  EXPECT_EQ(prune.exit_code, 0) << prune.err;
  EXPECT_TRUE(contains(prune.out, "par")) << prune.out;
  json list = network_list();
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0]["Name"], kDefaultNetwork);

  // The namespace is as SetUp made it.
  EXPECT_EQ(links(), links_before);
  EXPECT_EQ(host({"ip", "-o", "-4", "addr", "show"}).out, addresses_before);
  EXPECT_EQ(host({"ip", "-4", "route", "show", "table", "all"}).out, routes_before);
  EXPECT_EQ(ruleset(), rules_before) << "nftables rules are left";
  EXPECT_FALSE(contains(ruleset(), "vessel"));
  EXPECT_EQ(processes_in_namespace(), std::vector<std::string>{});
  expect_no_leaks();
}

}  // namespace
}  // namespace vessel::test
