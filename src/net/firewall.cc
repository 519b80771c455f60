#include "net/firewall.h"

#include <nftables/libnftables.h>

#include <memory>
#include <set>
#include <string_view>

#include "base/library.h"

namespace vessel::net {
namespace {

// Bridge names are Vessel's own: lowercase letters, digits and '-', at most
// 15 bytes (IFNAMSIZ - 1). Restricting them this far means a name can be put
// between double quotes in an nft script with nothing to escape.
bool valid_bridge_name(std::string_view name) {
  if (name.empty() || name.size() > 15) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

// The networks render_ruleset() writes rules for: those with a valid,
// not yet seen bridge name. apply_firewall() refuses any other list, so
// the filter only matters to a direct caller of render_ruleset().
std::vector<FirewallNetwork> usable(const std::vector<FirewallNetwork>& networks) {
  std::vector<FirewallNetwork> out;
  std::set<std::string> seen;
  for (const FirewallNetwork& network : networks) {
    if (!valid_bridge_name(network.bridge) || network.subnet.prefix > 32) continue;
    if (!seen.insert(network.bridge).second) continue;
    out.push_back(network);
  }
  return out;
}

Status validate(const std::vector<FirewallNetwork>& networks) {
  std::set<std::string> seen;
  for (const FirewallNetwork& network : networks) {
    if (!valid_bridge_name(network.bridge))
      return Error(
          ErrorCode::kInvalidArgument,
          "bridge name '" + network.bridge + "' is not allowed (1 to 15 of a-z, 0-9 and '-')");
    if (network.subnet.prefix > 32)
      return Error(ErrorCode::kInvalidArgument,
                   "subnet of bridge '" + network.bridge + "' has a prefix longer than 32 bits");
    if (!seen.insert(network.bridge).second)
      return Error(ErrorCode::kInvalidArgument,
                   "bridge '" + network.bridge + "' is given for two networks");
  }
  return ok_status();
}

std::string quoted(const std::string& bridge) {
  return "\"" + bridge + "\"";
}

// libnftables is opened at the first rule change, not linked: with its
// own libraries (nftnl, xtables, jansson, gmp) it cost every start of the
// CLI and of each monitor ~1 ms, and a container without a network never
// touches it (docs/architecture.md, "Libraries opened on demand").
struct NftApi {
  decltype(&nft_ctx_new) ctx_new;
  decltype(&nft_ctx_free) ctx_free;
  decltype(&nft_ctx_buffer_output) buffer_output;
  decltype(&nft_ctx_buffer_error) buffer_error;
  decltype(&nft_ctx_get_output_buffer) get_output_buffer;
  decltype(&nft_ctx_get_error_buffer) get_error_buffer;
  decltype(&nft_run_cmd_from_buffer) run_cmd_from_buffer;
};

Result<const NftApi*> load_nftables() {
  static NftApi api;
  Library lib("libnftables.so.1", "libnftables1");
  lib.bind(api.ctx_new, "nft_ctx_new");
  lib.bind(api.ctx_free, "nft_ctx_free");
  lib.bind(api.buffer_output, "nft_ctx_buffer_output");
  lib.bind(api.buffer_error, "nft_ctx_buffer_error");
  lib.bind(api.get_output_buffer, "nft_ctx_get_output_buffer");
  lib.bind(api.get_error_buffer, "nft_ctx_get_error_buffer");
  lib.bind(api.run_cmd_from_buffer, "nft_run_cmd_from_buffer");
  if (Status s = lib.status(); !s.ok()) return s.error().wrap("nftables");
  return &api;
}

struct NftContextDeleter {
  const NftApi* api;
  void operator()(nft_ctx* ctx) const { api->ctx_free(ctx); }
};
// The context and, in its deleter, the library's functions.
using NftContext = std::unique_ptr<nft_ctx, NftContextDeleter>;

// A libnftables context with its output and errors captured in buffers
// rather than written to stdout and stderr.
Result<NftContext> make_context() {
  static const Result<const NftApi*> loaded = load_nftables();
  VESSEL_ASSIGN_OR_RETURN(const NftApi* api, loaded);
  NftContext ctx(api->ctx_new(NFT_CTX_DEFAULT), NftContextDeleter{api});
  if (!ctx) return Error(ErrorCode::kInternal, "create nftables context");
  if (api->buffer_output(ctx.get()) != 0 || api->buffer_error(ctx.get()) != 0)
    return Error(ErrorCode::kInternal, "buffer nftables output");
  return ctx;
}

// nft's error buffer holds the message, then the offending line of the
// script and a caret line under it; the first non-empty line says it all.
std::string first_line(const char* text) {
  std::string_view rest = text ? text : "";
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r'))
      line.remove_suffix(1);
    if (!line.empty()) return std::string(line);
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return "no message from nft";
}

// Runs `script` in `ctx`; on failure the error carries nft's first line.
Status run_in(const NftContext& ctx, const std::string& script, const std::string& what) {
  const NftApi& api = *ctx.get_deleter().api;
  if (api.run_cmd_from_buffer(ctx.get(), script.c_str()) == 0) return ok_status();
  const std::string message = first_line(api.get_error_buffer(ctx.get()));
  // libnftables reports failures as text only; the kernel's EPERM is the one
  // a caller can act on (run as root), so it gets its own code.
  const bool denied = message.find("Operation not permitted") != std::string::npos;
  return Error(denied ? ErrorCode::kPermissionDenied : ErrorCode::kInternal, what + ": " + message,
               denied ? EPERM : 0);
}

}  // namespace

std::string render_ruleset(const std::vector<FirewallNetwork>& networks) {
  const std::string table = std::string("ip ") + kNftTable;
  // Creating the table first makes the delete succeed whether or not it
  // existed; nft applies a whole buffer as one transaction, so the kernel
  // goes from the old table straight to the new one (or to none).
  std::string out = "table " + table + " {}\ndelete table " + table + "\n";
  const std::vector<FirewallNetwork> list = usable(networks);
  if (list.empty()) return out;

  out += "table " + table + " {\n";
  if (list.size() > 1) {
    out += "\tset bridges {\n\t\ttype ifname\n\t\telements = { ";
    for (size_t i = 0; i < list.size(); ++i) {
      if (i > 0) out += ", ";
      out += quoted(list[i].bridge);
    }
    out += " }\n\t}\n";
  }

  // Masquerade what a network sends anywhere but back onto its own bridge.
  out += "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n";
  for (const FirewallNetwork& network : list) {
    if (network.internal) continue;
    out += "\t\tip saddr " + network.subnet.to_string() + " oifname != " + quoted(network.bridge) +
           " masquerade\n";
  }
  out += "\t}\n";

  // Only drops: policy accept leaves every packet that does not cross one of
  // our bridges (and every packet we do not refuse) to the host's own rules.
  // The drops come with no "ct state established,related accept" before
  // them: conntrack matches on addresses and ports, not on interfaces, so a
  // container that spoofs the tuple of someone else's established flow
  // would otherwise pass, out of an internal network or into another one.
  // Nothing needs the exception either: the first packet of a flow across
  // these boundaries is already dropped, so no reply ever comes back.
  // "iifname X oifname != X" rather than "iifname X": with br_netfilter
  // loaded, frames bridged between two ports of X traverse this hook with X
  // as both the input and the output device, and must keep flowing.
  out += "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n";
  for (const FirewallNetwork& network : list) {
    if (!network.internal) continue;
    const std::string b = quoted(network.bridge);
    out += "\t\tiifname " + b + " oifname != " + b + " drop\n";
    out += "\t\toifname " + b + " iifname != " + b + " drop\n";
  }
  if (list.size() > 1) {
    for (const FirewallNetwork& network : list) {
      if (network.internal) continue;  // already cut off from everything above
      const std::string b = quoted(network.bridge);
      out += "\t\tiifname " + b + " oifname @bridges oifname != " + b + " drop\n";
    }
  }
  out += "\t}\n}\n";
  return out;
}

Status run_nft(const std::string& script) {
  VESSEL_ASSIGN_OR_RETURN(NftContext ctx, make_context());
  return run_in(ctx, script, "run nft script");
}

Status apply_firewall(const std::vector<FirewallNetwork>& networks) {
  const std::string what = std::string("apply nftables table 'ip ") + kNftTable + "'";
  auto valid = validate(networks);
  if (!valid.ok()) return valid.error().wrap(what);
  VESSEL_ASSIGN_OR_RETURN(NftContext ctx, make_context());
  return run_in(ctx, render_ruleset(networks), what);
}

Result<bool> firewall_table_exists() {
  VESSEL_ASSIGN_OR_RETURN(NftContext ctx, make_context());
  // "list tables ip" prints one "table ip NAME" line per table; listing the
  // table itself would fail both when it is missing and for real errors,
  // with only the text to tell them apart.
  VESSEL_TRY(run_in(ctx, "list tables ip", "list nftables tables"));
  const std::string wanted = std::string("table ip ") + kNftTable;
  const char* output = ctx.get_deleter().api->get_output_buffer(ctx.get());
  std::string_view rest = output ? output : "";
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    if (rest.substr(0, end) == wanted) return true;
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return false;
}

}  // namespace vessel::net
