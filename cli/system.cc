// vessel system kernel|status: what Vessel would use on this host.
#include <sys/utsname.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "api/server.h"
#include "base/strings.h"
#include "commands.h"
#include "runtime/container_vm.h"
#include "runtime/paths.h"
#include "sys/fs.h"
#include "vmm/accel.h"
#include "vmm/qemu_vmm.h"
#include "vmm/virtiofsd.h"

namespace vessel::cli {
namespace {

struct SystemFlags {
  std::string format = "table";
  std::string kernel;
  int idle_seconds = 5;
  std::string uri;
};

// vessel system service [--time SECONDS] [URI]: the Docker Engine API
// (api/ does the work).
int service(const SystemFlags& f, const GlobalOptions& g) {
  std::string root = runtime::resolve_root(g.root);
  api::ServiceOptions o;
  o.root = root;
  o.idle_seconds = f.idle_seconds;
  if (f.idle_seconds < 0) {
    print_error("system service: --time must be 0 (never exit) or a number of seconds");
    return kExitUsage;
  }
  if (f.uri.empty()) {
    o.socket_path = api::default_socket(root);
  } else {
    auto path = api::socket_from_uri(f.uri);
    if (!path.ok()) {
      print_error("system service: " + path.error().to_string());
      return kExitUsage;
    }
    o.socket_path = *path;
  }
  if (auto s = api::serve(o); !s.ok()) {
    print_error("system service: " + s.error().to_string());
    return kExitFailure;
  }
  return kExitOk;
}

int status(const SystemFlags& f, const GlobalOptions& g, bool kernel_only) {
  nlohmann::json out;
  auto assets = runtime::find_guest_assets(f.kernel.empty() ? std::nullopt
                                                            : std::optional<std::string>(f.kernel));
  if (assets.ok()) {
    out["kernel"] = assets->kernel;
    char resolved[PATH_MAX];
    if (::realpath(assets->kernel.c_str(), resolved)) out["kernelFile"] = resolved;
    std::string dir = resolved;
    dir = dir.substr(0, dir.rfind('/'));
    auto version = sys::read_file(dir + "/source-version", 4096);
    if (version.ok()) out["kernelSource"] = std::string(trim(*version));
    out["initramfs"] = assets->initrd;
  } else {
    out["kernel"] = nullptr;
    out["error"] = assets.error().to_string();
  }
  if (!kernel_only) {
    out["root"] = runtime::resolve_root(g.root);
    auto choice = vmm::choose_accel(vmm::read_host_facts());
    out["accel"] = vmm::accel_name(choice.accel);
    out["accelReason"] = choice.reason;
    // The QEMU a container without shares runs under that accelerator
    // (the lean build under KVM, where installed), and the one for VMs
    // with shares when it differs.
    vmm::VmConfig probe;
    probe.accel = choice.accel;
    auto qemu = vmm::find_qemu(probe);
    out["qemu"] = qemu.ok() ? nlohmann::json(*qemu) : nlohmann::json(nullptr);
    probe.shared_dirs = {vmm::SharedDir{"probe", "/"}};
    if (auto full = vmm::find_qemu(probe); full.ok() && qemu.ok() && *full != *qemu)
      out["qemuWithShares"] = *full;
    out["virtiofsd"] = vmm::virtiofsd_path();
    runtime::ConfinementStatus conf = runtime::confinement_status();
    out["confinement"] = {{"enabled", conf.enabled},
                          {"qemu", conf.qemu},
                          {"virtiofsd", conf.virtiofsd},
                          {"hostCgroup", conf.host_cgroup}};
    // What crashed monitors and commands left on the host (leases, DNS
    // servers, bridges, the firewall table): found, removed or repaired,
    // and said here.
    nlohmann::json cleanup = nlohmann::json::array();
    if (auto cs = containers::Containers::open(runtime::resolve_root(g.root)); cs.ok()) {
      (void)(*cs)->list("");  // reconcile: dead monitors give their addresses back
      auto swept = (*cs)->networks().sweep();
      if (swept.ok())
        for (const auto& line : *swept)
          cleanup.push_back(line);
      else
        cleanup.push_back("network cleanup failed: " + swept.error().to_string());
    }
    out["networkCleanup"] = cleanup;
  }
  if (f.format == "json") {
    std::cout << out.dump(2) << "\n";
  } else {
    for (auto& [k, v] : out.items()) {
      if (k == "confinement") {
        std::cout << k << ": " << (v["enabled"].get<bool>() ? "on" : "off") << "\n";
        for (const char* part : {"qemu", "virtiofsd", "hostCgroup"})
          std::cout << "  " << part << ": " << v[part].get<std::string>() << "\n";
        continue;
      }
      if (k == "networkCleanup") {
        std::cout << k << ": " << (v.empty() ? "nothing left behind" : "") << "\n";
        for (const auto& line : v)
          std::cout << "  " << line.get<std::string>() << "\n";
        continue;
      }
      std::cout << k << ": " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
    }
  }
  return assets.ok() ? kExitOk : kExitFailure;
}

}  // namespace

Runner add_system(CLI::App& app, const GlobalOptions& global) {
  auto flags = std::make_shared<SystemFlags>();
  CLI::App* cmd =
      app.add_subcommand("system", "Inspect the host setup Vessel uses; serve the Docker API");
  cmd->require_subcommand(1);
  auto* kernel = cmd->add_subcommand("kernel", "Show the guest kernel and initramfs in use");
  auto* st = cmd->add_subcommand("status", "Show kernel, accelerator, QEMU and state root");
  for (auto* c : {kernel, st}) {
    c->add_option("--format", flags->format, "Output format: table or json")
        ->check(CLI::IsMember({"table", "json"}));
    c->add_option("--kernel", flags->kernel, "Kernel to report instead of the built one");
  }
  auto* svc = cmd->add_subcommand(
      "service",
      "Serve the Docker Engine API on a unix socket (default: /run/vessel/docker.sock for "
      "root, else <root>/run/docker.sock); see docs/docker-api.md");
  svc->add_option("-t,--time", flags->idle_seconds,
                  "Exit after this many seconds without a connection (0: never; default 5)");
  svc->add_option("uri", flags->uri, "Where to listen: unix:///path/docker.sock");
  return [kernel, svc, flags, &global] {
    if (svc->parsed()) return service(*flags, global);
    return status(*flags, global, kernel->parsed());
  };
}

}  // namespace vessel::cli
