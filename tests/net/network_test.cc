// Container networking (issue 8) through the CLI: the network verbs, the
// default network (own addresses, names that resolve), and the files every
// container gets (/etc/hosts, /etc/resolv.conf, /etc/hostname). Each test
// runs in a network namespace of its own (NetworkTest).
#include <gtest/gtest.h>

#include <set>

#include "base/strings.h"
#include "net/network_fixture.h"
#include "sys/fs.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

using NetworkingVerbsTest = NetworkTest;
using NetworkingDefaultTest = NetworkTest;
using NetworkingFilesTest = NetworkTest;

std::string str(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

// IPAM.Config[0] of a `network inspect` object.
json ipam_config(const json& network) {
  if (!network.is_object() || !network.contains("IPAM") || !network["IPAM"].is_object() ||
      !network["IPAM"].contains("Config") || !network["IPAM"]["Config"].is_array() ||
      network["IPAM"]["Config"].empty())
    return json();
  return network["IPAM"]["Config"][0];
}

// The entry of `list` (network ls --format json) named `name`.
json entry(const json& list, const std::string& name) {
  for (const auto& n : list)
    if (str(n, "Name") == name) return n;
  return json();
}

std::set<std::string> names(const json& list) {
  std::set<std::string> out;
  for (const auto& n : list)
    out.insert(str(n, "Name"));
  return out;
}

bool is_mac(const std::string& s) {
  if (s.size() != 17) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool colon = i % 3 == 2;
    if (colon != (s[i] == ':')) return false;
    if (!colon && !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// The sections of `text` between lines "---".
std::vector<std::string> sections(const std::string& text) {
  std::vector<std::string> out(1);
  std::vector<std::string> all = split(text, '\n');
  if (!all.empty() && all.back().empty()) all.pop_back();  // after the last newline
  for (const auto& line : all) {
    if (line == "---")
      out.emplace_back();
    else
      out.back() += line + "\n";
  }
  return out;
}

// Whether some line of `text` has every one of `words` as a whitespace-
// separated field.
bool has_line_with(const std::string& text, const std::vector<std::string>& words) {
  for (const auto& line : lines(text)) {
    std::set<std::string> fields;
    for (const auto& f : split(line, ' '))
      for (const auto& g : split(f, '\t'))
        if (!g.empty()) fields.insert(g);
    bool all = true;
    for (const auto& w : words)
      all = all && fields.count(w);
    if (all) return true;
  }
  return false;
}

// Whether busybox nslookup's output answers with `ip` ("Address: IP"; the
// server's own line is "Address: IP:53").
bool resolves_to(const std::string& nslookup_output, const std::string& ip) {
  return has_line_with(nslookup_output, {"Address:", ip});
}

// --- The verbs: create, ls, inspect, rm, prune ------------------------------------

TEST_F(NetworkingVerbsTest, DefaultExistsFromFirstUseAndUserNetworksAreCreatedListedAndRemoved) {
  // A fresh state root has `default`, with its documented bridge and subnet.
  json list = network_list();
  json def = entry(list, kDefaultNetwork);
  ASSERT_TRUE(def.is_object()) << "network ls has no default: " << list.dump();
  EXPECT_EQ(str(def, "Subnet"), kDefaultSubnet) << def.dump();
  EXPECT_EQ(str(def, "Gateway"), kDefaultGateway) << def.dump();
  EXPECT_EQ(str(def, "Bridge"), kDefaultBridge) << def.dump();
  EXPECT_EQ(def["Internal"], false) << def.dump();
  json d = network_inspect(kDefaultNetwork);
  EXPECT_EQ(str(d, "Name"), kDefaultNetwork);
  EXPECT_EQ(str(d, "Driver"), "bridge") << d.dump();
  EXPECT_EQ(str(ipam_config(d), "Subnet"), kDefaultSubnet) << d.dump();
  EXPECT_EQ(str(ipam_config(d), "Gateway"), kDefaultGateway) << d.dump();
  EXPECT_EQ(bridge_of(kDefaultNetwork), kDefaultBridge);

  // Everything given: printed name, subnet, gateway, label.
  CliResult c = vessel({"network", "create", "--subnet", "10.232.0.0/24", "--gateway",
                        "10.232.0.254", "-l", "team=blue", "front"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out, "front\n");
  json f = network_inspect("front");
  EXPECT_EQ(str(f, "Name"), "front");
  EXPECT_TRUE(is_full_id(str(f, "Id"))) << f.dump();
  EXPECT_EQ(str(f, "Driver"), "bridge");
  EXPECT_EQ(f["Internal"], false) << f.dump();
  EXPECT_EQ(str(ipam_config(f), "Subnet"), "10.232.0.0/24") << f.dump();
  EXPECT_EQ(str(ipam_config(f), "Gateway"), "10.232.0.254") << f.dump();
  EXPECT_EQ(f["Labels"]["team"], "blue") << f.dump();
  EXPECT_TRUE(f["Containers"].is_object() && f["Containers"].empty()) << f.dump();
  std::string front_bridge = bridge_of("front");
  EXPECT_NE(front_bridge, kDefaultBridge);
  EXPECT_LE(front_bridge.size(), 15u) << "longer than IFNAMSIZ allows: " << front_bridge;

  // Without --subnet: distinct /24s from 10.221.0.0/16, the gateway their .1.
  std::set<std::string> subnets, bridges{kDefaultBridge, front_bridge};
  for (const char* name : {"auto1", "auto2"}) {
    CliResult r = vessel({"network", "create", name});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json n = network_inspect(name);
    std::string subnet = str(ipam_config(n), "Subnet");
    EXPECT_TRUE(starts_with(subnet, "10.221.") && subnet.ends_with(".0/24")) << n.dump();
    EXPECT_EQ(str(ipam_config(n), "Gateway"), subnet.substr(0, subnet.size() - 4) + "1")
        << n.dump();
    subnets.insert(subnet);
    bridges.insert(bridge_of(name));
  }
  EXPECT_EQ(subnets.size(), 2u) << "two networks were given the same subnet";
  EXPECT_EQ(bridges.size(), 4u) << "two networks share a bridge name";

  CliResult internal = vessel({"network", "create", "--internal", "back"});
  ASSERT_EQ(internal.exit_code, 0) << internal.err;
  EXPECT_EQ(network_inspect("back")["Internal"], true);

  list = network_list();
  EXPECT_EQ(names(list),
            (std::set<std::string>{kDefaultNetwork, "front", "auto1", "auto2", "back"}));
  EXPECT_EQ(entry(list, "back")["Internal"], true) << list.dump();
  for (const auto& n : list)
    for (const char* key : {"Name", "Id", "Subnet", "Gateway", "Bridge", "Internal"})
      EXPECT_TRUE(n.contains(key)) << "network ls --format json lacks " << key << ": " << n.dump();
  CliResult table = vessel({"network", "ls"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  for (const char* name : {"default", "front", "auto1", "auto2", "back"})
    EXPECT_TRUE(contains(table.out, name)) << table.out;
  EXPECT_TRUE(contains(table.out, "10.232.0.0/24")) << table.out;
  CliResult quiet = vessel({"network", "ls", "-q"});
  EXPECT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(lines(quiet.out).size(), 5u) << quiet.out;

  CliResult two = vessel({"network", "inspect", "front", "back"});
  EXPECT_EQ(two.exit_code, 0) << two.err;
  json both = json::parse(two.out, nullptr, false);
  ASSERT_TRUE(both.is_array() && both.size() == 2) << two.out;
  EXPECT_EQ(both[0]["Name"], "front");
  EXPECT_EQ(both[1]["Name"], "back");

  CliResult rm = vessel({"network", "rm", "auto1", "auto2"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(rm.out, "auto1\nauto2\n");
  CliResult gone = vessel({"network", "inspect", "auto1"});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_TRUE(contains(gone.err, "auto1")) << gone.err;

  // `default` is not a user network: rm refuses it, prune keeps it.
  CliResult rm_default = vessel({"network", "rm", kDefaultNetwork});
  EXPECT_NE(rm_default.exit_code, 0);
  EXPECT_TRUE(contains(rm_default.err, kDefaultNetwork)) << rm_default.err;
  CliResult prune = vessel({"network", "prune", "-f"});
  EXPECT_EQ(prune.exit_code, 0) << prune.err;
  EXPECT_TRUE(contains(prune.out, "front") && contains(prune.out, "back")) << prune.out;
  EXPECT_EQ(names(network_list()), std::set<std::string>{kDefaultNetwork});
  for (const auto& link : links())
    EXPECT_NE(link, front_bridge) << "the bridge of a removed network is left";
}

TEST_F(NetworkingVerbsTest, NetworkRmIsRefusedWhileAContainerIsAttachedRunningOrNot) {
  ASSERT_EQ(vessel({"network", "create", "busy-net"}).exit_code, 0);
  std::string bridge = bridge_of("busy-net");

  // Created, never started.
  CliResult created =
      vessel({"create", "--name", "parked", "--network", "busy-net", kImage, "true"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  CliResult refused = vessel({"network", "rm", "busy-net"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.err, "busy-net")) << refused.err;
  ASSERT_EQ(vessel({"rm", "parked"}).exit_code, 0);

  // Running.
  std::string id =
      run_detached({"--name", "runner", "--network", "busy-net", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(id.empty());
  refused = vessel({"network", "rm", "busy-net"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.err, "busy-net")) << refused.err;
  EXPECT_EQ(names(network_list()), (std::set<std::string>{kDefaultNetwork, "busy-net"}));
  std::vector<std::string> present = links();
  EXPECT_NE(std::find(present.begin(), present.end(), bridge), present.end())
      << "the bridge of a network in use went: " << testing::PrintToString(present);

  ASSERT_EQ(vessel({"rm", "-f", "runner"}).exit_code, 0);
  CliResult rm = vessel({"network", "rm", "busy-net"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(rm.out, "busy-net\n");
  present = links();
  EXPECT_EQ(std::find(present.begin(), present.end(), bridge), present.end())
      << "network rm left its bridge: " << testing::PrintToString(present);
  EXPECT_FALSE(contains(ruleset(), bridge)) << ruleset();
}

// --- The default network ------------------------------------------------------------

TEST_F(NetworkingDefaultTest, TwoContainersHaveTheirOwnAddressesAndReachEachOtherByName) {
  std::string web = run_detached(
      {"--name", "web", "--network-alias", "www", kImage, "sh", "-c", http_server("web")});
  std::string client = run_detached({"--name", "client", kImage, "sh", "-c", kIdle});
  ASSERT_FALSE(web.empty() || client.empty());

  // Each has an address of its own, from the default subnet.
  json we = endpoint_of("web", kDefaultNetwork), ce = endpoint_of("client", kDefaultNetwork);
  ASSERT_TRUE(we.is_object() && ce.is_object()) << we.dump() << "\n" << ce.dump();
  std::string web_ip = str(we, "IPAddress"), client_ip = str(ce, "IPAddress");
  EXPECT_NE(web_ip, client_ip);
  for (const auto& ip : {web_ip, client_ip}) {
    EXPECT_TRUE(in_subnet(ip, kDefaultSubnet)) << ip;
    EXPECT_NE(ip, kDefaultGateway);
  }
  EXPECT_EQ(str(we, "Gateway"), kDefaultGateway) << we.dump();
  EXPECT_EQ(we["IPPrefixLen"], 16) << we.dump();
  std::string web_mac = str(we, "MacAddress");
  EXPECT_TRUE(is_mac(web_mac)) << we.dump();
  EXPECT_NE(web_mac, str(ce, "MacAddress"));
  EXPECT_TRUE(we["Aliases"].is_array() &&
              std::find(we["Aliases"].begin(), we["Aliases"].end(), "www") != we["Aliases"].end())
      << we.dump();
  json def = network_inspect(kDefaultNetwork);
  EXPECT_EQ(str(we, "NetworkID"), str(def, "Id"));
  json settings = inspect("web")["NetworkSettings"];
  EXPECT_EQ(str(settings, "IPAddress"), web_ip) << settings.dump();
  EXPECT_EQ(str(settings, "Gateway"), kDefaultGateway) << settings.dump();
  EXPECT_EQ(str(settings, "MacAddress"), web_mac) << settings.dump();

  // network inspect lists both; each has a tap on vessel0; ls shows the addresses.
  ASSERT_TRUE(def["Containers"].is_object()) << def.dump();
  EXPECT_EQ(def["Containers"].size(), 2u) << def.dump();
  EXPECT_EQ(def["Containers"][web]["Name"], "web") << def.dump();
  EXPECT_EQ(def["Containers"][web]["IPv4Address"], web_ip + "/16") << def.dump();
  EXPECT_EQ(def["Containers"][web]["MacAddress"], web_mac) << def.dump();
  EXPECT_EQ(def["Containers"][client]["IPv4Address"], client_ip + "/16") << def.dump();
  CliResult enslaved = host({"ip", "-o", "link", "show", "master", kDefaultBridge});
  EXPECT_TRUE(contains(enslaved.out, tap_name(web)) && contains(enslaved.out, tap_name(client)))
      << "taps on " << kDefaultBridge << ":\n"
      << enslaved.out << enslaved.err;
  CliResult ls = vessel({"ls"});
  EXPECT_TRUE(contains(ls.out, web_ip) && contains(ls.out, client_ip)) << ls.out;

  // The guest's NIC has the MAC inspect shows; its resolver is the gateway.
  EXPECT_TRUE(contains(sh("web", "ip -o link").out, web_mac));
  CliResult resolv = sh("client", "cat /etc/resolv.conf");
  EXPECT_TRUE(has_line_with(resolv.out, {"nameserver", kDefaultGateway})) << resolv.out;

  // The host reaches the server by the container's address; the other
  // container by its name, its alias and NAME.vessel.internal.
  EXPECT_EQ(http_get_eventually(web_ip, 80, 120s), "web\n");
  for (const char* url : {"http://web/", "http://www/", "http://web.vessel.internal/"}) {
    CliResult r = fetch("client", url);
    EXPECT_EQ(r.exit_code, 0) << url << ": " << r.err;
    EXPECT_EQ(r.out, "web\n") << url;
  }
  // A container started later resolves too.
  CliResult later = sh("web", "nslookup client");
  EXPECT_TRUE(resolves_to(later.out, client_ip)) << later.out << later.err;

  // Its address survives a restart.
  CliResult restart = vessel({"restart", "web"}, {.timeout = 120s});
  EXPECT_EQ(restart.exit_code, 0) << restart.err;
  EXPECT_EQ(ip_of("web"), web_ip);
  EXPECT_EQ(http_get_eventually(web_ip, 80, 120s), "web\n");
  EXPECT_EQ(fetch("client", "http://web/").out, "web\n");

  // Removed: its name, alias and tap go; the resolver still answers.
  ASSERT_EQ(vessel({"rm", "-f", "web"}).exit_code, 0);
  CliResult lookup;
  bool unresolved = wait_until(
      [&] {
        lookup = sh("client", "nslookup web; nslookup www; nslookup web.vessel.internal", 60s);
        return lookup.exit_code >= 0 && !resolves_to(lookup.out, web_ip);
      },
      60s);
  EXPECT_TRUE(unresolved) << "a removed container still resolves:\n" << lookup.out;
  CliResult self = sh("client", "nslookup client");
  EXPECT_TRUE(resolves_to(self.out, client_ip)) << "the resolver went too:\n"
                                                << self.out << self.err;
  EXPECT_NE(fetch_once("client", "http://web/").exit_code, 0);
  std::vector<std::string> present = links();
  EXPECT_EQ(std::find(present.begin(), present.end(), tap_name(web)), present.end())
      << "rm left the tap " << tap_name(web);
  json after = network_inspect(kDefaultNetwork);
  EXPECT_FALSE(after["Containers"].contains(web)) << after.dump();
}

// A container restored from a VM template (the shape's third start) has
// its own MAC and address, not the template's, and serves and resolves like
// a booted one.
TEST_F(NetworkingDefaultTest, ARestoredContainerHasItsOwnMacAddressAndNames) {
  for (int i = 0; i < 2; ++i) {  // the first marks the shape, the second makes its template
    CliResult r = vessel({"run", "--rm", "-m", kMemory, kImage, "true"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  RunOptions debug{.env = {"VESSEL_PHASES=1"}};  // the monitor's debug log
  std::string web = run_detached({"--name", "web", kImage, "sh", "-c", http_server("web")}, debug);
  std::string client = run_detached({"--name", "client", kImage, "sh", "-c", kIdle}, debug);
  ASSERT_FALSE(web.empty() || client.empty());
  for (const std::string& id : {web, client}) {
    auto log = sys::read_file(state_root() + "/containers/" + id + "/monitor.log");
    EXPECT_TRUE(log.ok() && contains(*log, "VM restored from template"))
        << (log.ok() ? *log : std::string("no monitor.log"));
  }
  json we = endpoint_of("web", kDefaultNetwork), ce = endpoint_of("client", kDefaultNetwork);
  std::string web_ip = str(we, "IPAddress"), web_mac = str(we, "MacAddress");
  ASSERT_TRUE(in_subnet(web_ip, kDefaultSubnet)) << we.dump();
  EXPECT_NE(web_mac, str(ce, "MacAddress"));
  EXPECT_TRUE(contains(sh("web", "ip -o link").out, web_mac));
  EXPECT_TRUE(contains(sh("client", "ip -o link").out, str(ce, "MacAddress")));
  EXPECT_EQ(http_get_eventually(web_ip, 80, 120s), "web\n");
  CliResult r = fetch("client", "http://web/");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "web\n");
}

// --- /etc/hosts, /etc/resolv.conf, /etc/hostname -----------------------------------

TEST_F(NetworkingFilesTest, HostsResolvConfAndHostnameFollowTheFlags) {
  CliResult r = vessel({"run",
                        "--rm",
                        "-m",
                        kMemory,
                        "--hostname",
                        "cfghost",
                        "--add-host",
                        "db.example:192.0.2.77",
                        "--dns",
                        "192.0.2.53",
                        "--dns-search",
                        "example.test",
                        "--dns-option",
                        "ndots:2",
                        "--mac-address",
                        "02:42:ac:11:00:99",
                        kImage,
                        "sh",
                        "-c",
                        "cat /etc/hostname; echo ---; cat /etc/hosts; echo ---; "
                        "cat /etc/resolv.conf; echo ---; ip -o -4 addr show; echo ---; ip -o link"},
                       {.timeout = 120s});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> s = sections(r.out);
  ASSERT_EQ(s.size(), 5u) << r.out;
  const std::string &hostname = s[0], &hosts = s[1], &resolv = s[2], &addrs = s[3], &link = s[4];

  EXPECT_EQ(hostname, "cfghost\n");
  // Its own address: "2: eth0    inet 10.220.0.2/16 brd ...".
  std::string own;
  for (const auto& line : lines(addrs))
    if (contains(line, "eth0") && contains(line, "inet ")) {
      size_t at = line.find("inet ") + 5;
      own = line.substr(at, line.find('/', at) - at);
    }
  EXPECT_TRUE(in_subnet(own, kDefaultSubnet)) << addrs;
  EXPECT_TRUE(has_line_with(hosts, {"127.0.0.1", "localhost"})) << hosts;
  EXPECT_TRUE(has_line_with(hosts, {own, "cfghost"})) << hosts;
  EXPECT_TRUE(has_line_with(hosts, {"192.0.2.77", "db.example"})) << hosts;
  EXPECT_TRUE(has_line_with(resolv, {"nameserver", "192.0.2.53"})) << resolv;
  EXPECT_FALSE(contains(resolv, std::string("nameserver ") + kDefaultGateway))
      << "--dns replaces the gateway's resolver:\n"
      << resolv;
  EXPECT_TRUE(has_line_with(resolv, {"search", "example.test"})) << resolv;
  EXPECT_TRUE(has_line_with(resolv, {"options", "ndots:2"})) << resolv;
  EXPECT_TRUE(contains(link, "02:42:ac:11:00:99")) << link;
}

TEST_F(NetworkingFilesTest, NetworkNoneHasOnlyLoopbackAndStillItsFiles) {
  CliResult r = vessel(
      {"run", "--rm", "-m", kMemory, "--network", "none", "--hostname", "alone", kImage, "sh", "-c",
       "ip -o link; echo ---; ip -o -4 addr; echo ---; cat /proc/net/dev; "
       "echo ---; cat /etc/hosts; echo ---; cat /etc/hostname; echo ---; "
       "ls /etc/resolv.conf"},
      {.timeout = 120s});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> s = sections(r.out);
  ASSERT_EQ(s.size(), 6u) << r.out;
  EXPECT_TRUE(contains(s[0], ": lo:")) << s[0];
  EXPECT_FALSE(contains(s[0], "link/ether")) << "a NIC with --network none:\n" << s[0];
  for (const auto& line : lines(s[1]))
    EXPECT_TRUE(contains(line, "inet 127.0.0.1/")) << "an address other than lo's: " << line;
  EXPECT_TRUE(contains(s[2], "lo:")) << s[2];
  EXPECT_FALSE(contains(s[2], "eth")) << s[2];
  EXPECT_TRUE(has_line_with(s[3], {"127.0.0.1", "localhost"})) << s[3];
  EXPECT_EQ(s[4], "alone\n");
  EXPECT_EQ(s[5], "/etc/resolv.conf\n");
  // Nothing was made on the host for it.
  for (const auto& link : links())
    EXPECT_FALSE(starts_with(link, "vt")) << "a tap for --network none: " << link;
}

}  // namespace
}  // namespace vessel::test
