// The backend for root: a Linux bridge per network holding the gateway
// address, a non-persistent tap per NIC enslaved to it, and Vessel's own
// nftables table (net/firewall.h) for NAT and isolation.
#include <algorithm>

#include "base/log.h"
#include "net/dns.h"
#include "net/firewall.h"
#include "net/netlink.h"
#include "net/tap.h"
#include "networks/networks.h"

namespace vessel::networks {
namespace {

bool vessel_bridge_name(const std::string& name) {
  return name == kDefaultBridge || name.rfind("vsl-", 0) == 0;
}

class BridgeBackend final : public Backend {
 public:
  Status setup(const Network& n, const std::vector<Network>& all) override {
    auto link = net::find_link(n.bridge);
    if (!link.ok()) {
      if (link.error().code() != ErrorCode::kNotFound) return link.error();
      auto made = net::create_bridge(n.bridge);
      if (!made.ok() && made.error().code() != ErrorCode::kAlreadyExists) return made.error();
      // A MAC of its own: otherwise the bridge takes its lowest port's, and
      // each tap that comes or goes can change the gateway's MAC under the
      // containers (their ARP caches then point nowhere for seconds).
      VESSEL_TRY(net::set_mac(n.bridge, net::derive_mac("bridge/" + n.id)));
    } else if (link->kind != "bridge") {
      return Error(
          ErrorCode::kAlreadyExists,
          "a link named '" + n.bridge + "' exists and is not a bridge (kind '" + link->kind + "')");
    }
    VESSEL_TRY(net::add_address(n.bridge, n.gateway, n.subnet.prefix));
    VESSEL_TRY(net::set_link_up(n.bridge, true));
    if (!n.internal) VESSEL_TRY(net::enable_ip_forwarding());
    return apply(all, nullptr);
  }

  Status teardown(const Network& n, const std::vector<Network>& remaining) override {
    auto d = net::delete_link(n.bridge);
    if (!d.ok() && d.error().code() != ErrorCode::kNotFound) return d.error();
    return apply(remaining, &n);
  }

  Result<UniqueFd> plug(const Nic& nic) override {
    VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, net::open_tap(nic.tap));
    VESSEL_TRY(net::set_master(nic.tap, nic.network.bridge));
    VESSEL_TRY(net::set_link_up(nic.tap, true));
    return fd;
  }

  Result<std::vector<std::string>> sweep(const std::vector<Network>& all) override {
    std::vector<std::string> report;
    VESSEL_ASSIGN_OR_RETURN(auto links, net::list_links());
    for (const auto& l : links) {
      if (l.kind != "bridge" || !vessel_bridge_name(l.name)) continue;
      bool owned =
          std::any_of(all.begin(), all.end(), [&](const Network& n) { return n.bridge == l.name; });
      if (owned) continue;
      if (auto s = net::delete_link(l.name); s.ok())
        report.push_back("removed bridge " + l.name + " (no network owns it)");
    }
    // The firewall follows the bridges that exist; a table missing or
    // stale (a crash between a bridge and its rules) is made right.
    std::vector<net::FirewallNetwork> want = firewall_of(all, nullptr);
    auto exists = net::firewall_table_exists();
    if (exists.ok() && *exists != !want.empty())
      report.push_back(want.empty() ? "removed nftables table ip vessel (no network is up)"
                                    : "restored nftables table ip vessel");
    VESSEL_TRY(net::apply_firewall(want));
    return report;
  }

  bool present(const Network& n) override { return net::find_link(n.bridge).ok(); }

  // dnsmasq on the gateway address (net/dns.h).
  Status serve_dns(const Network& n, const std::string& dir,
                   const std::vector<net::DnsRecord>& records) override {
    net::DnsConfig config{dir, n.bridge, n.gateway};
    if (records.empty()) return net::stop_dns(config);
    return net::sync_dns(config, records);
  }

  bool dns_running(const Network& n, const std::string& dir) override {
    return net::dns_running({dir, n.bridge, n.gateway});
  }

 private:
  // The networks whose bridges exist (a network whose bridge is down, like
  // `default` after a prune, has no rules either).
  std::vector<net::FirewallNetwork> firewall_of(const std::vector<Network>& all,
                                                const Network* gone) {
    std::vector<net::FirewallNetwork> out;
    for (const auto& n : all) {
      if (gone && n.name == gone->name) continue;
      if (!present(n)) continue;
      out.push_back({n.bridge, n.subnet, n.internal});
    }
    return out;
  }

  Status apply(const std::vector<Network>& all, const Network* gone) {
    return net::apply_firewall(firewall_of(all, gone));
  }
};

}  // namespace

std::unique_ptr<Backend> make_bridge_backend() {
  return std::make_unique<BridgeBackend>();
}

}  // namespace vessel::networks
