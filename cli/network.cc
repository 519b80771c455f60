// vessel network create|ls|inspect|rm|prune: the networks containers join
// (a bridge each, NAT out unless --internal, names resolved on each).
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "commands.h"
#include "networks/views.h"
#include "runtime/paths.h"

namespace vessel::cli {
namespace {

using nlohmann::json;

struct NetworkFlags {
  std::vector<std::string> names, labels;
  std::string subnet, gateway, format = "table";
  bool internal = false, quiet = false, force = false;
};

json list_entry(const networks::Network& n) {
  return {{"Name", n.name},
          {"Id", n.id},
          {"Driver", "bridge"},
          {"Subnet", n.subnet.to_string()},
          {"Gateway", n.gateway.to_string()},
          {"Bridge", n.bridge},
          {"Internal", n.internal},
          {"Labels", n.labels}};
}

int run_network(const std::string& verb, const NetworkFlags& f, const GlobalOptions& g) {
  auto fail = [&](const Error& e) {
    print_error("network " + verb + ": " + e.to_string());
    return kExitFailure;
  };
  auto cs = containers::Containers::open(runtime::resolve_root(g.root));
  if (!cs.ok()) return fail(cs.error());
  auto& c = **cs;
  auto& nets = c.networks();
  // Containers whose monitors died give their addresses back first, so
  // what we show and decide on is current.
  (void)c.list("");
  // And whatever else crashes left (bridges of no network, a stale
  // firewall, DNS servers of networks without running containers).
  if (auto swept = nets.sweep(); swept.ok())
    for (const auto& line : *swept)
      log::info(line);
  if (verb == "create") {
    networks::CreateOptions o;
    o.name = f.names.empty() ? "" : f.names[0];
    o.subnet = f.subnet;
    o.gateway = f.gateway;
    o.internal = f.internal;
    for (const auto& l : f.labels) {
      auto eq = l.find('=');
      o.labels[l.substr(0, eq)] = eq == std::string::npos ? "" : l.substr(eq + 1);
    }
    auto n = nets.create(o);
    if (!n.ok()) return fail(n.error());
    std::cout << n->name << "\n";
    return kExitOk;
  }
  if (verb == "ls") {
    auto all = nets.list();
    if (!all.ok()) return fail(all.error());
    if (f.quiet) {
      for (const auto& n : *all)
        std::cout << n.name << "\n";
    } else if (f.format == "json") {
      json out = json::array();
      for (const auto& n : *all)
        out.push_back(list_entry(n));
      std::cout << out.dump(2) << "\n";
    } else {
      std::printf("%-20s %-12s %-18s %-15s %-15s %s\n", "NAME", "NETWORK ID", "SUBNET", "GATEWAY",
                  "BRIDGE", "INTERNAL");
      for (const auto& n : *all)
        std::printf("%-20s %-12s %-18s %-15s %-15s %s\n", n.name.c_str(),
                    n.id.substr(0, 12).c_str(), n.subnet.to_string().c_str(),
                    n.gateway.to_string().c_str(), n.bridge.c_str(), n.internal ? "yes" : "no");
    }
    return kExitOk;
  }
  if (verb == "inspect") {
    json out = json::array();
    int rc = kExitOk;
    for (const auto& name : f.names) {
      auto n = nets.get(name);
      if (!n.ok()) {
        rc = fail(n.error());
        continue;
      }
      auto v = networks::network_view(nets, c.store(), *n);
      if (!v.ok()) {
        rc = fail(v.error());
        continue;
      }
      out.push_back(std::move(*v));
    }
    std::cout << out.dump(4) << "\n";
    return rc;
  }
  if (verb == "rm") {
    int rc = kExitOk;
    for (const auto& name : f.names) {
      auto s = nets.remove(name);
      if (!s.ok()) {
        if (f.force && s.error().code() == ErrorCode::kNotFound) continue;
        rc = fail(s.error());
        continue;
      }
      std::cout << name << "\n";
    }
    return rc;
  }
  // prune
  auto pruned = nets.prune();
  if (!pruned.ok()) return fail(pruned.error());
  if (!pruned->empty()) std::cout << "Deleted Networks:\n";
  for (const auto& n : *pruned)
    std::cout << n << "\n";
  return kExitOk;
}

}  // namespace

Runner add_network(CLI::App& app, const GlobalOptions& global) {
  auto f = std::make_shared<NetworkFlags>();
  CLI::App* cmd = app.add_subcommand("network", "Manage networks");
  cmd->require_subcommand(1);
  auto* create = cmd->add_subcommand("create", "Create a network");
  create->add_option("name", f->names, "Network name")->required()->expected(1);
  create->add_option("--subnet", f->subnet, "Subnet in CIDR form (default: a free /24)");
  create->add_option("--gateway", f->gateway, "Gateway address (default: the subnet's first)");
  create->add_flag("--internal", f->internal, "No route out of the network");
  create->add_option("-l,--label", f->labels, "Set a label (KEY=VALUE)")->allow_extra_args(false);
  auto* ls = cmd->add_subcommand("ls", "List networks");
  ls->alias("list");
  ls->add_flag("-q,--quiet", f->quiet, "Only names");
  ls->add_option("--format", f->format, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto* inspect = cmd->add_subcommand("inspect", "Show networks as JSON");
  inspect->add_option("names", f->names, "Network names")->required();
  auto* rm = cmd->add_subcommand("rm", "Remove networks (not while a container is attached)");
  rm->alias("delete");
  rm->add_option("names", f->names, "Network names")->required();
  rm->add_flag("-f,--force", f->force, "Ignore networks that do not exist");
  auto* prune = cmd->add_subcommand("prune", "Remove networks no container uses");
  prune->add_flag("-f,--force", f->force, "Do not prompt (vessel never prompts)");
  return [=, &global] {
    for (auto* sub : {create, ls, inspect, rm, prune})
      if (sub->parsed()) return run_network(sub->get_name(), *f, global);
    return kExitUsage;
  };
}

}  // namespace vessel::cli
