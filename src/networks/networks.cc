#include "networks/networks.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "base/log.h"
#include "base/strings.h"
#include "net/netlink.h"
#include "sys/fs.h"

namespace vessel::networks {
namespace {

using json = nlohmann::json;

Result<Network> from_record(const state::NetworkRecord& r) {
  Network n;
  n.name = r.name;
  n.id = r.id;
  VESSEL_ASSIGN_OR_RETURN(n.subnet, net::Ipv4Net::parse(r.subnet));
  VESSEL_ASSIGN_OR_RETURN(n.gateway, net::Ipv4::parse(r.gateway));
  n.bridge = r.bridge;
  n.internal = r.internal;
  n.created = r.created;
  auto labels = json::parse(r.labels, nullptr, false);
  if (labels.is_object())
    for (auto& [k, v] : labels.items())
      if (v.is_string()) n.labels[k] = v.get<std::string>();
  return n;
}

state::NetworkRecord to_record(const Network& n) {
  json labels = json::object();
  for (const auto& [k, v] : n.labels)
    labels[k] = v;
  return {n.name,   n.id,       n.subnet.to_string(), n.gateway.to_string(),
          n.bridge, n.internal, labels.dump(),        n.created};
}

// Docker's network name rule.
Status validate_network_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  if (!ok)
    return Error(ErrorCode::kInvalidArgument,
                 "invalid network name '" + name +
                     "': use letters, digits, '_', '.' and '-', starting with a letter or digit");
  if (name == kNoNetwork || name == "host" || name == "bridge")
    return Error(ErrorCode::kInvalidArgument, "network name '" + name + "' is reserved");
  return ok_status();
}

// The host's own addresses outside Vessel's bridges: a new subnet must not
// overlap them, or the host would lose its route to that network.
std::vector<std::pair<std::string, net::Ipv4Net>> host_subnets(const std::vector<Network>& ours) {
  std::vector<std::pair<std::string, net::Ipv4Net>> out;
  auto addrs = net::list_addresses();
  if (!addrs.ok()) return out;
  for (const auto& [link, a] : *addrs) {
    bool mine = false;
    for (const auto& n : ours)
      mine = mine || n.bridge == link;
    if (!mine && link != "lo") out.emplace_back(link, a);
  }
  return out;
}

}  // namespace

Networks::Networks(std::string root, state::Store& store,
                   std::function<bool(const std::string&)> alive, std::unique_ptr<Backend> backend)
    : root_(std::move(root)),
      store_(store),
      alive_(std::move(alive)),
      backend_(std::move(backend)) {}

std::string Networks::network_dir(const Network& n) const {
  return root_ + "/networks/" + n.id;
}

Result<std::vector<Network>> Networks::all() {
  VESSEL_ASSIGN_OR_RETURN(auto records, store_.networks());
  std::vector<Network> out;
  for (const auto& r : records) {
    VESSEL_ASSIGN_OR_RETURN(Network n, from_record(r));
    out.push_back(std::move(n));
  }
  return out;
}

Result<Network> Networks::ensure_default() {
  if (auto r = store_.network(kDefaultNetwork); r.ok()) return from_record(*r);
  std::string subnet_text = kDefaultSubnet;
  if (auto conf = sys::read_file(root_ + "/networks.json", 64 << 10); conf.ok()) {
    auto j = json::parse(*conf, nullptr, false);
    if (!j.is_object())
      return Error(ErrorCode::kInvalidArgument,
                   "'" + root_ + "/networks.json' is not a JSON object");
    if (j.contains("default_subnet")) {
      if (!j["default_subnet"].is_string())
        return Error(ErrorCode::kInvalidArgument,
                     "'" + root_ + "/networks.json': default_subnet must be a string");
      subnet_text = j["default_subnet"].get<std::string>();
    }
  }
  auto subnet = net::Ipv4Net::parse(subnet_text);
  if (!subnet.ok()) return subnet.error().wrap("default network");
  Network n;
  n.name = kDefaultNetwork;
  VESSEL_ASSIGN_OR_RETURN(n.id, sys::random_hex(32));
  n.subnet = *subnet;
  n.gateway = subnet->host(1);
  n.bridge = kDefaultBridge;
  n.created = state::now_ns();
  auto added = store_.add_network(to_record(n));
  if (!added.ok() && added.error().code() != ErrorCode::kAlreadyExists) return added.error();
  // Created by someone else meanwhile: theirs wins.
  VESSEL_ASSIGN_OR_RETURN(auto r, store_.network(kDefaultNetwork));
  return from_record(r);
}

Result<Network> Networks::create(const CreateOptions& o) {
  VESSEL_TRY(validate_network_name(o.name));
  if (auto d = ensure_default(); !d.ok()) return d.error();
  if (store_.network(o.name).ok())
    return Error(ErrorCode::kAlreadyExists, "network with name " + o.name + " already exists");
  VESSEL_ASSIGN_OR_RETURN(auto existing, all());
  auto hosts = host_subnets(existing);
  auto clash = [&](const net::Ipv4Net& s) -> std::optional<std::string> {
    for (const auto& n : existing)
      if (n.subnet.overlaps(s)) return "network " + n.name + " (" + n.subnet.to_string() + ")";
    for (const auto& [link, a] : hosts)
      if (a.overlaps(s))
        return "the host's address " + a.address.to_string() + "/" + std::to_string(a.prefix) +
               " on " + link;
    return std::nullopt;
  };

  Network n;
  n.name = o.name;
  n.internal = o.internal;
  n.labels = o.labels;
  n.created = state::now_ns();
  VESSEL_ASSIGN_OR_RETURN(n.id, sys::random_hex(32));
  n.bridge = "vsl-" + n.id.substr(0, 11);
  if (!o.subnet.empty()) {
    auto s = net::Ipv4Net::parse(o.subnet);
    if (!s.ok()) return s.error().wrap("invalid --subnet");
    if (s->prefix > 30 || s->prefix < 8)
      return Error(ErrorCode::kInvalidArgument,
                   "invalid --subnet " + o.subnet + ": the prefix must be between /8 and /30");
    if (auto c = clash(*s))
      return Error(ErrorCode::kInvalidArgument, "subnet " + s->to_string() + " overlaps " + *c);
    n.subnet = *s;
  } else {
    auto pool = net::Ipv4Net::parse(kUserPool);
    bool found = false;
    for (uint32_t i = 0; i < 256 && !found; ++i) {
      net::Ipv4Net candidate{pool->host(i << 8), 24};
      if (!clash(candidate)) {
        n.subnet = candidate;
        found = true;
      }
    }
    if (!found)
      return Error(ErrorCode::kUnavailable,
                   std::string("no free /24 left in ") + kUserPool + ": give --subnet");
  }
  if (!o.gateway.empty()) {
    auto g = net::Ipv4::parse(o.gateway);
    if (!g.ok()) return g.error().wrap("invalid --gateway");
    if (!n.subnet.contains(*g) || *g == n.subnet.network() || *g == n.subnet.broadcast())
      return Error(
          ErrorCode::kInvalidArgument,
          "gateway " + o.gateway + " is not a host address of subnet " + n.subnet.to_string());
    n.gateway = *g;
  } else {
    n.gateway = n.subnet.host(1);
  }
  VESSEL_TRY(store_.add_network(to_record(n)));
  VESSEL_ASSIGN_OR_RETURN(auto everything, all());
  {
    VESSEL_ASSIGN_OR_RETURN(sys::FileLock lock, lock_global());
    if (auto s = backend_->setup(n, everything); !s.ok()) {
      // Nothing half-made: the record goes, and the host objects with it.
      (void)store_.remove_network(n.name);
      std::vector<Network> remaining;
      for (auto& x : everything)
        if (x.name != n.name) remaining.push_back(x);
      (void)backend_->teardown(n, remaining);
      return s.error().wrap("create network " + n.name);
    }
  }
  return n;
}

Result<sys::FileLock> Networks::lock_global() {
  VESSEL_TRY(sys::make_dirs(root_ + "/networks", 0700));
  return sys::FileLock::acquire(root_ + "/networks/lock");
}

Result<Network> Networks::get(const std::string& name) {
  if (name == kDefaultNetwork) return ensure_default();
  VESSEL_ASSIGN_OR_RETURN(auto r, store_.network(name));
  return from_record(r);
}

Result<std::vector<Network>> Networks::list() {
  if (auto d = ensure_default(); !d.ok()) return d.error();
  return all();
}

Status Networks::remove(const std::string& name) {
  if (name == kDefaultNetwork)
    return Error(ErrorCode::kInvalidArgument, "the default network cannot be removed");
  VESSEL_ASSIGN_OR_RETURN(Network n, get(name));
  VESSEL_TRY(store_.remove_network(name));
  VESSEL_ASSIGN_OR_RETURN(auto remaining, all());
  (void)backend_->serve_dns(n, network_dir(n), {});
  (void)sys::remove_tree(network_dir(n));
  VESSEL_ASSIGN_OR_RETURN(sys::FileLock lock, lock_global());
  return backend_->teardown(n, remaining);
}

Result<std::vector<std::string>> Networks::prune() {
  VESSEL_ASSIGN_OR_RETURN(auto nets, list());
  std::vector<std::string> removed;
  for (const auto& n : nets) {
    VESSEL_ASSIGN_OR_RETURN(auto eps, store_.endpoints_on(n.name));
    if (!eps.empty()) continue;
    if (n.name == kDefaultNetwork) {
      // Predefined: it stays, but its bridge and rules go until next used.
      std::vector<Network> remaining;
      for (const auto& x : nets)
        if (x.name != n.name) remaining.push_back(x);
      (void)backend_->serve_dns(n, network_dir(n), {});
      VESSEL_ASSIGN_OR_RETURN(sys::FileLock lock, lock_global());
      VESSEL_TRY(backend_->teardown(n, remaining));
      continue;
    }
    auto s = remove(n.name);
    if (s.ok())
      removed.push_back(n.name);
    else if (s.error().code() != ErrorCode::kFailedPrecondition)
      return s.error();
  }
  return removed;
}

Result<std::vector<state::EndpointRecord>> Networks::plan(const std::string& id,
                                                          const std::vector<Attachment>& requests) {
  std::vector<Attachment> wanted = requests;
  if (wanted.empty()) wanted.push_back({kDefaultNetwork, "", "", {}});
  for (auto& a : wanted) {
    // Docker's name for its default network.
    if (a.network == "bridge") a.network = kDefaultNetwork;
    if (a.network == "host")
      return Error(ErrorCode::kInvalidArgument,
                   "--network host is not supported: each container is a VM with its own "
                   "network stack (publish ports with -p instead)");
  }
  bool none = std::any_of(wanted.begin(), wanted.end(),
                          [](const Attachment& a) { return a.network == kNoNetwork; });
  if (none) {
    if (wanted.size() > 1)
      return Error(ErrorCode::kInvalidArgument,
                   "--network none cannot be combined with other networks");
    for (const auto& a : wanted)
      if (!a.ip.empty() || !a.mac.empty() || !a.aliases.empty())
        return Error(ErrorCode::kInvalidArgument,
                     "--ip, --mac-address and --network-alias need a network (not none)");
    return std::vector<state::EndpointRecord>{};
  }
  if (wanted.size() > kMaxNics)
    return Error(ErrorCode::kInvalidArgument,
                 "too many networks: a container joins at most " + std::to_string(kMaxNics));
  std::vector<state::EndpointRecord> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < wanted.size(); ++i) {
    const Attachment& a = wanted[i];
    if (!seen.insert(a.network).second)
      return Error(ErrorCode::kInvalidArgument, "network " + a.network + " given twice");
    VESSEL_ASSIGN_OR_RETURN(Network n, get(a.network));
    state::EndpointRecord e;
    e.container = id;
    e.network = n.name;
    e.position = static_cast<int>(i);
    if (!a.ip.empty()) {
      if (n.name == kDefaultNetwork)
        return Error(ErrorCode::kInvalidArgument,
                     "--ip is only for user networks (create one with 'vessel network create')");
      auto ip = net::Ipv4::parse(a.ip);
      if (!ip.ok()) return ip.error().wrap("invalid --ip");
      if (!n.subnet.contains(*ip) || *ip == n.subnet.network() || *ip == n.subnet.broadcast())
        return Error(ErrorCode::kInvalidArgument, "address " + a.ip + " is outside network " +
                                                      n.name + "'s subnet " + n.subnet.to_string());
      if (*ip == n.gateway)
        return Error(ErrorCode::kInvalidArgument,
                     "address " + a.ip + " is network " + n.name + "'s gateway");
      e.fixed_ip = ip->value;
    }
    net::Mac mac = net::derive_mac(id + "/" + n.id);
    if (!a.mac.empty()) {
      auto m = net::Mac::parse(a.mac);
      if (!m.ok()) return m.error().wrap("invalid --mac-address");
      mac = *m;
    }
    e.mac = mac.to_string();
    json aliases = json::array();
    for (const auto& alias : a.aliases) {
      bool ok = !alias.empty() && alias.size() <= 63;
      for (char c : alias)
        ok =
            ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
      if (!ok)
        return Error(ErrorCode::kInvalidArgument,
                     "invalid --network-alias '" + alias + "': use letters, digits, '-', '_', '.'");
      aliases.push_back(alias);
    }
    e.aliases = aliases.dump();
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<Nic>> Networks::acquire(const std::string& id) {
  VESSEL_ASSIGN_OR_RETURN(auto eps, store_.endpoints_of(id));
  if (eps.empty()) return std::vector<Nic>{};
  std::map<std::string, Network> nets;
  for (const auto& e : eps) {
    VESSEL_ASSIGN_OR_RETURN(Network n, get(e.network));
    nets[e.network] = n;
  }
  auto pools = [&](const std::string& name) {
    const Network& n = nets.at(name);
    state::AddressPool p;
    p.first = n.subnet.network().value + 1;
    p.last = n.subnet.broadcast().value - 1;
    p.reserved = {n.gateway.value};
    return p;
  };
  VESSEL_ASSIGN_OR_RETURN(auto leases, store_.lease_addresses(id, pools, alive_));
  auto fail = [&](Error e) -> Result<std::vector<Nic>> {
    (void)store_.release_addresses(id);
    return e;
  };
  {
    auto everything = all();
    if (!everything.ok()) return fail(everything.error());
    auto lock = lock_global();
    if (!lock.ok()) return fail(lock.error());
    for (const auto& [name, n] : nets)
      if (auto s = backend_->setup(n, *everything); !s.ok())
        return fail(s.error().wrap("network " + name));
  }
  std::vector<Nic> nics;
  for (size_t i = 0; i < eps.size(); ++i) {
    const auto& e = eps[i];
    Nic nic;
    nic.network = nets.at(e.network);
    nic.position = e.position;
    nic.name = "eth" + std::to_string(e.position);
    nic.address = net::Ipv4{leases[i].ip};
    auto mac = net::Mac::parse(e.mac);
    if (!mac.ok()) return fail(mac.error());
    nic.mac = *mac;
    nic.tap = "vt" + id.substr(0, 12) + std::to_string(e.position);
    auto aliases = json::parse(e.aliases, nullptr, false);
    if (aliases.is_array())
      for (const auto& a : aliases)
        if (a.is_string()) nic.aliases.push_back(a.get<std::string>());
    nics.push_back(std::move(nic));
  }
  return nics;
}

Result<UniqueFd> Networks::plug(const Nic& nic) {
  return backend_->plug(nic);
}

Status Networks::release(const std::string& id) {
  VESSEL_ASSIGN_OR_RETURN(auto all_leases, store_.leases());
  std::set<std::string> affected;
  for (const auto& l : all_leases)
    if (l.container == id) affected.insert(l.network);
  // Most callers (every reconcile) hold nothing: no write, no fsync.
  if (affected.empty()) return ok_status();
  VESSEL_TRY(store_.release_addresses(id));
  Status result = ok_status();
  for (const auto& name : affected) {
    auto n = get(name);
    if (!n.ok()) continue;
    if (auto s = sync_dns(*n); !s.ok()) result = s;
  }
  return result;
}

Status Networks::sync_dns(const Network& n) {
  std::string dir = network_dir(n);
  VESSEL_TRY(sys::make_dirs(dir, 0755));
  VESSEL_ASSIGN_OR_RETURN(sys::FileLock lock, sys::FileLock::acquire(dir + "/lock"));
  VESSEL_ASSIGN_OR_RETURN(auto leases, store_.leases(n.name));
  VESSEL_ASSIGN_OR_RETURN(auto eps, store_.endpoints_on(n.name));
  std::vector<net::DnsRecord> records;
  for (const auto& l : leases) {
    if (!alive_(l.container)) continue;
    auto c = store_.container(l.container);
    if (!c.ok()) continue;
    net::DnsRecord r;
    r.address = net::Ipv4{l.ip};
    r.names.push_back(c->name);
    r.names.push_back(c->id.substr(0, 12));
    for (const auto& e : eps) {
      if (e.container != l.container) continue;
      auto aliases = json::parse(e.aliases, nullptr, false);
      if (aliases.is_array())
        for (const auto& a : aliases)
          if (a.is_string()) r.names.push_back(a.get<std::string>());
    }
    records.push_back(std::move(r));
  }
  if (!records.empty() && !backend_->present(n)) return ok_status();
  return backend_->serve_dns(n, dir, records);
}

Result<std::vector<std::string>> Networks::release_stale() {
  std::vector<std::string> report;
  VESSEL_ASSIGN_OR_RETURN(auto leases, store_.leases());
  std::set<std::string> dead;
  for (const auto& l : leases)
    if (!alive_(l.container)) dead.insert(l.container);
  for (const auto& id : dead) {
    report.push_back("released the addresses of container " + id.substr(0, 12) +
                     " (its monitor is gone)");
    VESSEL_TRY(release(id));
  }
  return report;
}

Result<std::vector<std::string>> Networks::sweep() {
  VESSEL_ASSIGN_OR_RETURN(std::vector<std::string> report, release_stale());
  VESSEL_ASSIGN_OR_RETURN(auto nets, all());
  for (const auto& n : nets) {
    if (!backend_->dns_running(n, network_dir(n))) continue;
    auto held = store_.leases(n.name);
    if (held.ok() && held->empty()) {
      (void)backend_->serve_dns(n, network_dir(n), {});
      report.push_back("stopped the DNS of network " + n.name + " (no running container)");
    }
  }
  VESSEL_ASSIGN_OR_RETURN(sys::FileLock lock, lock_global());
  VESSEL_ASSIGN_OR_RETURN(auto host, backend_->sweep(nets));
  report.insert(report.end(), host.begin(), host.end());
  return report;
}

Result<std::vector<Networks::EndpointView>> Networks::endpoints_of(const std::string& id) {
  VESSEL_ASSIGN_OR_RETURN(auto eps, store_.endpoints_of(id));
  VESSEL_ASSIGN_OR_RETURN(auto leases, store_.leases());
  std::vector<EndpointView> out;
  for (const auto& e : eps) {
    EndpointView v;
    v.endpoint = e;
    VESSEL_ASSIGN_OR_RETURN(v.network, get(e.network));
    for (const auto& l : leases)
      if (l.container == id && l.network == e.network) v.ip = l.ip;
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace vessel::networks
