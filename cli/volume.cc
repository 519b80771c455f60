// vessel volume create|ls|inspect|rm|prune: named host directories that
// containers mount over virtio-fs (-v NAME:/path).
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "containers/views.h"
#include "runtime/log_file.h"
#include "runtime/paths.h"

namespace vessel::cli {
namespace {

using nlohmann::json;

struct VolumeFlags {
  std::vector<std::string> names, labels;
  std::string format = "table";
  bool quiet = false, all = false, force = false;
};

int run_volume(CLI::App* which, const std::string& verb, const VolumeFlags& f,
               const GlobalOptions& g) {
  auto cs = containers::Containers::open(runtime::resolve_root(g.root));
  if (!cs.ok()) {
    print_error("volume " + verb + ": " + cs.error().to_string());
    return kExitFailure;
  }
  auto& c = **cs;
  auto fail = [&](const Error& e) {
    print_error("volume " + verb + ": " + e.to_string());
    return kExitFailure;
  };
  (void)which;
  if (verb == "create") {
    std::map<std::string, std::string> labels;
    for (const auto& l : f.labels) {
      auto eq = l.find('=');
      labels[l.substr(0, eq)] = eq == std::string::npos ? "" : l.substr(eq + 1);
    }
    std::string name = f.names.empty() ? "" : f.names[0];
    // Docker: creating an existing volume is not an error.
    if (!name.empty() && c.volume(name).ok()) {
      std::cout << name << "\n";
      return kExitOk;
    }
    auto v = c.create_volume(name, labels);
    if (!v.ok()) return fail(v.error());
    std::cout << v->name << "\n";
    return kExitOk;
  }
  if (verb == "ls") {
    auto vols = c.volumes();
    if (!vols.ok()) return fail(vols.error());
    if (f.quiet) {
      for (const auto& v : *vols)
        std::cout << v.name << "\n";
    } else if (f.format == "json") {
      json out = json::array();
      for (const auto& v : *vols)
        out.push_back(containers::volume_view(c, v));
      std::cout << out.dump(2) << "\n";
    } else {
      std::printf("%-10s %s\n", "DRIVER", "VOLUME NAME");
      for (const auto& v : *vols)
        std::printf("%-10s %s\n", "local", v.name.c_str());
    }
    return kExitOk;
  }
  if (verb == "inspect") {
    json out = json::array();
    int rc = kExitOk;
    for (const auto& n : f.names) {
      auto v = c.volume(n);
      if (!v.ok()) {
        rc = fail(v.error());
        continue;
      }
      out.push_back(containers::volume_view(c, *v));
    }
    std::cout << out.dump(4) << "\n";
    return rc;
  }
  if (verb == "rm") {
    int rc = kExitOk;
    for (const auto& n : f.names) {
      auto s = c.remove_volume(n);
      if (!s.ok()) {
        if (f.force && s.error().code() == ErrorCode::kNotFound) continue;
        rc = fail(s.error());
        continue;
      }
      std::cout << n << "\n";
    }
    return rc;
  }
  // prune
  auto pruned = c.prune_volumes(f.all);
  if (!pruned.ok()) return fail(pruned.error());
  if (!pruned->first.empty()) std::cout << "Deleted Volumes:\n";
  for (const auto& n : pruned->first)
    std::cout << n << "\n";
  std::printf("\nTotal reclaimed space: %.1f MB\n", static_cast<double>(pruned->second) / 1e6);
  return kExitOk;
}

}  // namespace

Runner add_volume(CLI::App& app, const GlobalOptions& global) {
  auto f = std::make_shared<VolumeFlags>();
  CLI::App* cmd = app.add_subcommand("volume", "Manage volumes");
  cmd->require_subcommand(1);
  auto* create = cmd->add_subcommand("create", "Create a volume");
  create->add_option("name", f->names, "Volume name (generated when omitted)")->expected(0, 1);
  create->add_option("-l,--label", f->labels, "Set a label (KEY=VALUE)")->allow_extra_args(false);
  auto* ls = cmd->add_subcommand("ls", "List volumes");
  ls->alias("list");
  ls->add_flag("-q,--quiet", f->quiet, "Only names");
  ls->add_option("--format", f->format, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto* inspect = cmd->add_subcommand("inspect", "Show volumes as JSON");
  inspect->add_option("names", f->names, "Volume names")->required();
  auto* rm = cmd->add_subcommand("rm", "Remove volumes (not while a container uses them)");
  rm->alias("delete");
  rm->add_option("names", f->names, "Volume names")->required();
  rm->add_flag("-f,--force", f->force, "Ignore volumes that do not exist");
  auto* prune = cmd->add_subcommand("prune", "Remove unused anonymous volumes");
  prune->add_flag("-a,--all", f->all, "Remove unused named volumes too");
  prune->add_flag("-f,--force", f->force, "Do not prompt (vessel never prompts)");
  return [=, &global] {
    for (auto* sub : {create, ls, inspect, rm, prune})
      if (sub->parsed()) return run_volume(sub, sub->get_name(), *f, global);
    return kExitUsage;
  };
}

}  // namespace vessel::cli
