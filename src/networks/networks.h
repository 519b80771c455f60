// Networks as users see them: the model (named networks with a subnet, a
// gateway and a bridge), IPAM (addresses leased in the state store under a
// unique constraint), and what a container's monitor needs to put its VM on
// them (taps, DNS). The host objects (bridge, tap, nftables rules) are made
// by a Backend; BridgeBackend is the one for root (a Linux bridge per
// network, a tap per NIC, Vessel's own nftables table). A rootless backend
// (passt) can come later behind the same interface.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "net/address.h"
#include "net/dns.h"
#include "state/store.h"
#include "sys/fs.h"

namespace vessel::networks {

/// The network every container joins unless told otherwise; created on
/// first use. Its subnet is chosen to clash rarely (10.220.0.0/16: not
/// Docker's 172.17/16, Podman's 10.88/16, libvirt's 192.168.122/24 or
/// CGNAT's 100.64/10) and can be changed in <root>/networks.json before
/// first use: {"default_subnet": "10.30.0.0/16"}.
inline constexpr const char* kDefaultNetwork = "default";
inline constexpr const char* kDefaultBridge = "vessel0";
inline constexpr const char* kDefaultSubnet = "10.220.0.0/16";
/// User networks without --subnet get the first free /24 from here.
inline constexpr const char* kUserPool = "10.221.0.0/16";
/// "none": only lo.
inline constexpr const char* kNoNetwork = "none";
/// NICs a container may have (the VM's device budget is checked at boot).
inline constexpr size_t kMaxNics = 8;

struct Network {
  std::string name;
  std::string id;
  net::Ipv4Net subnet;
  net::Ipv4 gateway;
  std::string bridge;
  bool internal = false;
  std::map<std::string, std::string> labels;
  int64_t created = 0;
};

struct CreateOptions {
  std::string name;
  std::string subnet;   // "" = the next free /24 of kUserPool
  std::string gateway;  // "" = the subnet's first address
  bool internal = false;
  std::map<std::string, std::string> labels;
};

/// What a container asks of one network (run --network NAME --ip ...).
struct Attachment {
  std::string network;
  std::string ip;   // "" = any
  std::string mac;  // "" = derived from the container id and the network
  std::vector<std::string> aliases;
};

/// One NIC of a container's VM, as its monitor sets it up.
struct Nic {
  Network network;
  int position = 0;
  std::string name;  // eth<position>
  net::Ipv4 address;
  net::Mac mac;
  std::string tap;  // host tap name: "vt" + 12 hex of the id + position
  std::vector<std::string> aliases;
};

/// Host objects of networks. Every operation is idempotent.
class Backend {
 public:
  virtual ~Backend() = default;
  /// Makes `network`'s bridge (with the gateway address, up) and the
  /// firewall for `all` networks. Repairs what a crash left half-made.
  virtual Status setup(const Network& network, const std::vector<Network>& all) = 0;
  /// Removes `network`'s bridge and re-renders the firewall for `remaining`.
  virtual Status teardown(const Network& network, const std::vector<Network>& remaining) = 0;
  /// Creates the tap for `nic` on its network's bridge; the tap lives as
  /// long as the returned fd (and QEMU's copy of it).
  virtual Result<UniqueFd> plug(const Nic& nic) = 0;
  /// Removes host objects no network owns (bridges of Vessel's names without
  /// a network, taps left persistent) and repairs the firewall; returns a
  /// line per thing it removed or repaired.
  virtual Result<std::vector<std::string>> sweep(const std::vector<Network>& all) = 0;
  /// Whether `network`'s bridge exists now.
  virtual bool present(const Network& network) = 0;
  /// Serves `records` as `network`'s names (none: stops serving);
  /// `dir` is the network's own directory.
  virtual Status serve_dns(const Network& network, const std::string& dir,
                           const std::vector<net::DnsRecord>& records) = 0;
  /// Whether a DNS server of `network` runs.
  virtual bool dns_running(const Network& network, const std::string& dir) = 0;
};

std::unique_ptr<Backend> make_bridge_backend();

class Networks {
 public:
  /// `alive(id)`: whether container id's monitor lives (leases of dead ones
  /// are stale).
  Networks(std::string root, state::Store& store, std::function<bool(const std::string&)> alive,
           std::unique_ptr<Backend> backend = make_bridge_backend());

  /// Checks the options (name, subnet not overlapping another network's or
  /// an address of the host, gateway inside it), records the network and
  /// makes its host objects. Nothing is left behind on failure.
  Result<Network> create(const CreateOptions& options);
  /// By name; `default` is created on first use.
  Result<Network> get(const std::string& name);
  /// Every network (default included), by name.
  Result<std::vector<Network>> list();
  /// kFailedPrecondition while a container is attached; `default` cannot
  /// be removed (kInvalidArgument).
  Status remove(const std::string& name);
  /// Removes user networks no container is attached to and takes down the
  /// host objects of `default` when none is; returns the names removed.
  Result<std::vector<std::string>> prune();

  /// The endpoint records for a new container `id` from its requests (none:
  /// `default`; a single "none": no endpoint). Checks networks exist,
  /// addresses are inside the subnet and not the gateway, MACs are valid.
  Result<std::vector<state::EndpointRecord>> plan(const std::string& id,
                                                  const std::vector<Attachment>& requests);

  /// For a container's monitor: leases addresses for container `id`, makes
  /// sure its networks' host objects exist and returns its NICs.
  Result<std::vector<Nic>> acquire(const std::string& id);
  /// Creates the tap of `nic` (see Backend::plug).
  Result<UniqueFd> plug(const Nic& nic);
  /// Releases container `id`'s addresses and updates the DNS of the
  /// networks it was on. Safe to call when it holds none.
  Status release(const std::string& id);
  /// Makes `network`'s DNS answer for the containers holding addresses on
  /// it now (starting or stopping its dnsmasq).
  Status sync_dns(const Network& network);

  /// Releases the leases of containers whose monitors are gone (and updates
  /// their networks' DNS); a line per container.
  Result<std::vector<std::string>> release_stale();

  /// Removes what crashed monitors and commands left: leases of dead
  /// monitors, dnsmasqs of networks without running containers, host
  /// objects of no network. Returns what it did, a line each.
  Result<std::vector<std::string>> sweep();

  /// Endpoints (with their current lease, 0 when not running) of container
  /// `id`, by position.
  struct EndpointView {
    state::EndpointRecord endpoint;
    Network network;
    uint32_t ip = 0;
  };
  Result<std::vector<EndpointView>> endpoints_of(const std::string& id);

  /// <root>/networks/<network id>: its hosts file, dnsmasq's pid and log.
  std::string network_dir(const Network& network) const;

 private:
  Result<Network> ensure_default();
  /// Serializes changes of host objects (bridges, the firewall) between
  /// processes: <root>/networks/lock.
  Result<sys::FileLock> lock_global();
  Result<std::vector<Network>> all();
  std::string root_;
  state::Store& store_;
  std::function<bool(const std::string&)> alive_;
  std::unique_ptr<Backend> backend_;
};

}  // namespace vessel::networks
