// What networking leaves behind (issue 8): a monitor killed with SIGKILL
// has its tap, rules and address removed by the next command; leftovers of
// a crashed Vessel (a bridge, missing rules) are found, removed or restored,
// and reported by `system status`; bad input is a clear error that changes
// nothing.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <set>

#include "base/strings.h"
#include "net/network_fixture.h"
#include "sys/fs.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

using NetworkingCrashTest = NetworkTest;
using NetworkingInputTest = NetworkTest;

// The containers of `network inspect`'s object with address `cidr_address`.
std::vector<std::string> holders_of(const json& network, const std::string& cidr_address) {
  std::vector<std::string> ids;
  if (!network.is_object() || !network.contains("Containers") || !network["Containers"].is_object())
    return ids;
  for (const auto& [id, c] : network["Containers"].items())
    if (c.is_object() && c.value("IPv4Address", "") == cidr_address) ids.push_back(id);
  return ids;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

/// Whether process `pid` has closed its files: it is gone or a zombie.
/// find_process_ids() stops seeing a process earlier, when its exit lets go
/// of its memory (an empty /proc/PID/cmdline), but the kernel closes its
/// files (QEMU's tap) only after tearing that memory down, which for a VM's
/// QEMU can take a while on a loaded host.
bool files_closed(int pid) {
  auto stat = sys::read_file("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!stat.ok()) return true;
  auto paren = stat->rfind(')');
  return paren == std::string::npos || paren + 2 >= stat->size() || (*stat)[paren + 2] == 'Z' ||
         (*stat)[paren + 2] == 'X';
}

TEST_F(NetworkingCrashTest,
       AMonitorKilledWithSigkillHasItsTapRulesAndAddressRemovedByTheNextCommand) {
  ASSERT_EQ(vessel({"network", "create", "--subnet", "10.231.0.0/24", "crash"}).exit_code, 0);
  const std::string ip = "10.231.0.50";
  std::string victim = run_detached({"--name", "victim", "--network", "crash", "--ip", ip, kImage,
                                     "sh", "-c", http_server("victim")});
  ASSERT_FALSE(victim.empty());
  EXPECT_EQ(ip_of("victim", "crash"), ip);
  EXPECT_EQ(http_get_eventually(ip, 80, 120s), "victim\n");
  std::string tap = tap_name(victim);
  ASSERT_TRUE(has(links(), tap)) << "no tap " << tap << " while it runs";

  json j = inspect("victim");
  ASSERT_TRUE(j["State"]["Pid"].is_number()) << j.dump();
  int monitor = j["State"]["Pid"].get<int>();
  ASSERT_GT(monitor, 0);
  std::vector<int> vm_pids =
      find_process_ids({"qemu-system-x86_64", "virtiofsd"}, victim.substr(0, 12));
  ASSERT_FALSE(vm_pids.empty()) << "no QEMU for " << victim;
  ASSERT_EQ(::kill(monitor, SIGKILL), 0);
  bool vm_gone = wait_until(
      [&] {
        return find_process_ids({"qemu-system-x86_64", "virtiofsd"}, victim.substr(0, 12))
                   .empty() &&
               std::all_of(vm_pids.begin(), vm_pids.end(), files_closed);
      },
      10s);
  ASSERT_TRUE(vm_gone) << testing::PrintToString(processes_of(victim));

  // The next command, whatever it is, cleans up after the dead monitor.
  CliResult next = vessel({"ls"});
  EXPECT_EQ(next.exit_code, 0) << next.err;
  EXPECT_FALSE(has(links(), tap)) << "the dead container's tap " << tap << " is left";
  std::string rules = ruleset();
  EXPECT_FALSE(contains(rules, tap)) << rules;
  EXPECT_FALSE(contains(rules, ip)) << "rules for the dead container's address are left:\n"
                                    << rules;
  EXPECT_EQ(status_of("victim"), "exited");
  EXPECT_EQ(holders_of(network_inspect("crash"), ip + "/24"), std::vector<std::string>{});

  // Its address is free: another container gets it, and is reached there.
  std::string heir = run_detached({"--name", "heir", "--network", "crash", "--ip", ip, kImage, "sh",
                                   "-c", http_server("heir")});
  ASSERT_FALSE(heir.empty());
  EXPECT_EQ(http_get_eventually(ip, 80, 120s), "heir\n");
  EXPECT_EQ(holders_of(network_inspect("crash"), ip + "/24"), std::vector<std::string>{heir});

  // Never two holders: the victim, started again, does not take it back.
  CliResult again = vessel({"start", "victim"}, {.timeout = 120s});
  if (again.exit_code == 0)
    EXPECT_NE(ip_of("victim", "crash"), ip) << "two containers hold " << ip;
  else
    EXPECT_TRUE(contains(again.err, ip)) << "the error does not name the address:\n" << again.err;
  EXPECT_EQ(holders_of(network_inspect("crash"), ip + "/24"), std::vector<std::string>{heir});
  EXPECT_EQ(http_get_eventually(ip, 80, 30s), "heir\n");
}

TEST_F(NetworkingCrashTest, SystemStatusRemovesOrRestoresLeftoversAndReportsThemButKeepsLiveOnes) {
  // A live container: its tap, bridge and rules are not leftovers.
  std::string live = run_detached({"--name", "live", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(live.empty());
  ASSERT_TRUE(contains(ruleset(), "table ip vessel")) << ruleset();
  // What a crashed Vessel could leave: the bridge of a network that no
  // longer exists, and rules missing for a network that is up. (Taps are
  // not persistent: they go with the QEMU that holds them, which the crash
  // test above checks.)
  const std::string bridge = "vsl-0123456789a";
  ASSERT_EQ(host({"ip", "link", "add", bridge, "type", "bridge"}).exit_code, 0);
  ASSERT_EQ(host({"nft", "delete", "table", "ip", "vessel"}).exit_code, 0);

  CliResult status = vessel({"system", "status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  std::string said = status.out + status.err;
  EXPECT_TRUE(contains(said, bridge)) << "system status does not report " << bridge << ":\n"
                                      << said;
  EXPECT_TRUE(contains(said, "nftables")) << "system status does not report the rules:\n" << said;
  std::vector<std::string> present = links();
  EXPECT_FALSE(has(present, bridge)) << testing::PrintToString(present);
  EXPECT_TRUE(has(present, tap_name(live))) << testing::PrintToString(present);
  EXPECT_TRUE(has(present, kDefaultBridge)) << testing::PrintToString(present);
  EXPECT_TRUE(contains(ruleset(), "table ip vessel")) << "the rules were not restored";
  EXPECT_EQ(status_of("live"), "running");
  CliResult ping = sh("live", std::string("ping -c 1 -W 5 ") + kDefaultGateway);
  EXPECT_EQ(ping.exit_code, 0) << "the live container lost its network:\n" << ping.out << ping.err;

  // Nothing more to find the second time.
  CliResult again = vessel({"system", "status"});
  EXPECT_FALSE(contains(again.out + again.err, bridge)) << again.out << again.err;
}

// Each bad value, and what its error must name.
struct BadCase {
  std::vector<std::string> args;
  std::string named;
};

TEST_F(NetworkingInputTest, BadInputIsAClearErrorThatChangesNothing) {
  ASSERT_EQ(vessel({"network", "create", "--subnet", "10.240.0.0/24", "good"}).exit_code, 0);
  std::string holder = run_detached(
      {"--name", "holder", "--network", "good", "--ip", "10.240.0.10", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(holder.empty());
  ASSERT_EQ(ip_of("holder", "good"), "10.240.0.10");

  const std::string networks_before = network_list().dump();
  const std::vector<std::string> ids_before = all_ids();
  const std::vector<std::string> links_before = links();
  const std::string rules_before = ruleset();

  // run -d ... IMAGE true, with `flags` before the image.
  auto run = [](std::vector<std::string> flags) {
    std::vector<std::string> args{"run", "-d", "-m", kMemory};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), {kImage, "true"});
    return args;
  };
  const std::vector<BadCase> cases = {
      // Networks.
      {{"network", "create", "--subnet", "10.240.0.0/16", "over"}, "10.240.0.0/16"},
      {{"network", "create", "--subnet", "10.220.128.0/24", "over-default"}, "10.220.128.0/24"},
      {{"network", "create", "--subnet", "10.241.0.0/24", "--gateway", "10.9.9.1", "gw"},
       "10.9.9.1"},
      {{"network", "create", "--subnet", "10.241.0.0/33", "mask"}, "10.241.0.0/33"},
      {{"network", "create", "--subnet", "10.241.0.0/24", "--gateway", "10.241.0.300", "gw2"},
       "10.241.0.300"},
      {{"network", "create", "good"}, "good"},
      {{"network", "rm", "nosuch"}, "nosuch"},
      {{"network", "inspect", "nosuch"}, "nosuch"},
      // Addresses.
      {run({"--network", "good", "--ip", "10.250.0.5"}), "10.250.0.5"},
      {run({"--network", "good", "--ip", "10.240.0.10"}), "10.240.0.10"},
      {run({"--network", "good", "--ip", "10.240.0.1"}), "10.240.0.1"},
      {run({"--network", "good", "--ip", "not-an-ip"}), "not-an-ip"},
      {run({"--network", "good", "--mac-address", "zz:zz"}), "zz:zz"},
      {run({"--add-host", "nocolon"}), "nocolon"},
      {run({"--add-host", "db:not-an-ip"}), "not-an-ip"},
      // Networks by name.
      {run({"--network", "nosuch"}), "nosuch"},
      {{"create", "--network", "nosuch", kImage, "true"}, "nosuch"},
      // Published ports.
      {run({"-p", "abc"}), "abc"},
      {run({"-p", "70000:80"}), "70000"},
      {run({"-p", "8080:80/xyz"}), "xyz"},
      {run({"-p", "8080-8082:80-81"}), "8080-8082"},
      {run({"-p", "1.2.3.4.5:8080:80"}), "1.2.3.4.5"},
  };
  for (const auto& c : cases) {
    CliResult r = vessel(c.args, {.timeout = 120s});
    std::string cmd = shell_quote(c.args);
    EXPECT_NE(r.exit_code, 0) << cmd << " succeeded:\n" << r.out;
    // (inspect may print an empty array, as Docker's does.)
    EXPECT_TRUE(r.out.empty() || trim(r.out) == "[]") << cmd << " printed:\n" << r.out;
    EXPECT_TRUE(contains(r.err, c.named))
        << cmd << ": the error does not name '" << c.named << "':\n"
        << r.err;
  }

  // Nothing changed: networks, containers, host links and rules.
  EXPECT_EQ(network_list().dump(), networks_before);
  EXPECT_EQ(all_ids(), ids_before);
  EXPECT_EQ(links(), links_before);
  EXPECT_EQ(ruleset(), rules_before);
  EXPECT_EQ(vessel({"ls", "-q"}).out, holder.substr(0, 12) + "\n");
  EXPECT_EQ(holders_of(network_inspect("good"), "10.240.0.10/24"),
            std::vector<std::string>{holder});
}

}  // namespace
}  // namespace vessel::test
