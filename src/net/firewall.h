// Vessel's nftables rules, in a table of its own (`ip vessel`), so that no
// other rule on the host is touched. The whole table is rendered from the
// networks that exist and replaced in one nftables transaction (libnftables,
// Debian's libnftables-dev): applying is idempotent and a crash half-way
// leaves the old table or the new one, never a mix.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "net/address.h"

namespace vessel::net {

inline constexpr const char* kNftTable = "vessel";

struct FirewallNetwork {
  std::string bridge;
  Ipv4Net subnet;
  bool internal = false;  // no route out: forwarded traffic in or out is dropped
};

/// The nft script that replaces table `ip vessel` with rules for `networks`:
///  - postrouting (nat): masquerade from each non-internal subnet to anywhere
///    but its own bridge;
///  - forward (filter): traffic between two different Vessel bridges is
///    dropped (networks are isolated), traffic to or from an internal
///    network's bridge is dropped, replies of established flows pass.
/// With `networks` empty the script only deletes the table.
std::string render_ruleset(const std::vector<FirewallNetwork>& networks);

/// Runs an nft script through libnftables; the error carries nft's message.
Status run_nft(const std::string& script);

/// render_ruleset + run_nft.
Status apply_firewall(const std::vector<FirewallNetwork>& networks);

/// True when table `ip vessel` exists.
Result<bool> firewall_table_exists();

}  // namespace vessel::net
