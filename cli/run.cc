// vessel run and vessel create: a new container (its own VM) from an image
// or a root directory; run also starts it and, unless -d, attaches to it.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <iostream>

#include "agent/capabilities.h"
#include "base/log.h"
#include "base/strings.h"
#include "commands.h"
#include "containers/containers.h"
#include "monitor/client.h"
#include "net/port_spec.h"
#include "networks/networks.h"
#include "runtime/config.h"
#include "runtime/paths.h"
#include "sys/fs.h"
#include "sys/terminal.h"
#include "vmm/accel.h"

namespace vessel::cli {
namespace {

struct RunFlags {
  bool rm = false, interactive = false, tty = false, read_only = false, detach = false;
  bool init = false;
  std::string restart = "no", stop_signal, cidfile;
  int stop_timeout = -1;
  std::vector<std::string> labels, volumes, mounts, tmpfs, ulimits;
  std::vector<std::string> cap_add, cap_drop, security_opts;
  bool privileged = false;
  int64_t pids_limit = 0;
  std::string memory_reclaim = "auto";
  std::vector<std::string> env, env_files;
  std::string workdir, user, rootfs, rootfs_image, name, hostname, memory = "512m", accel, kernel;
  double cpus = 2;
  std::string pull = "missing";
  std::optional<std::string> entrypoint;
  PullFlags pull_flags;
  // Networking.
  std::vector<std::string> networks, aliases, dns, dns_search, dns_options, add_hosts, publish;
  std::string ip, mac;
  bool publish_all = false;
  std::vector<std::string> command;
};

// "-e KEY" takes KEY's value from our environment, and is dropped when it is
// unset, as Docker does.
void add_env(std::vector<std::string>& out, const std::string& item) {
  if (item.find('=') != std::string::npos) {
    out.push_back(item);
    return;
  }
  if (const char* v = ::getenv(item.c_str())) out.push_back(item + "=" + v);
}

Result<std::vector<std::string>> collect_env(const RunFlags& f) {
  std::vector<std::string> env;
  for (const auto& path : f.env_files) {
    auto content = sys::read_file(path, 1 << 20);
    if (!content.ok()) return content.error().wrap("read env file");
    int lineno = 0;
    for (const auto& raw : split(*content, '\n')) {
      ++lineno;
      std::string_view line = trim(raw);
      if (line.empty() || line[0] == '#') continue;
      if (line[0] == '=')
        return Error(
            ErrorCode::kInvalidArgument,
            "env file '" + path + "' line " + std::to_string(lineno) + ": no variable name");
      add_env(env, std::string(line));
    }
  }
  for (const auto& e : f.env)
    add_env(env, e);
  return env;
}

// -u / the image's User: numeric "uid[:gid]" goes into the numeric fields;
// anything with a name is resolved by the guest in the container's own
// /etc/passwd and /etc/group, as Docker does.
Status parse_user(const std::string& user, runtime::ContainerConfig& spec) {
  if (user.empty()) return ok_status();
  auto parts = split(user, ':');
  if (parts.size() > 2 || parts[0].empty() || (parts.size() == 2 && parts[1].empty()) ||
      user.size() > 256)
    return Error(ErrorCode::kInvalidArgument,
                 "invalid user '" + user + "' (expected user[:group], names or numbers)");
  auto uid = parse_u64(parts[0]);
  std::optional<uint64_t> gid = uint64_t{0};
  if (parts.size() == 2) gid = parse_u64(parts[1]);
  if (uid && gid && *uid <= 0xfffffffe && *gid <= 0xfffffffe) {
    spec.uid = static_cast<uint32_t>(*uid);
    spec.gid = static_cast<uint32_t>(*gid);
    return ok_status();
  }
  spec.user = user;
  return ok_status();
}

// Merges environments: `overrides` win over `base` for the same name.
std::vector<std::string> merge_env(const std::vector<std::string>& base,
                                   const std::vector<std::string>& overrides) {
  auto key = [](const std::string& e) { return e.substr(0, e.find('=')); };
  std::vector<std::string> out;
  for (const auto& b : base) {
    bool overridden = false;
    for (const auto& o : overrides)
      overridden = overridden || key(o) == key(b);
    if (!overridden) out.push_back(b);
  }
  out.insert(out.end(), overrides.begin(), overrides.end());
  return out;
}

}  // namespace

Result<ResolvedImage> resolve_image(const std::string& root, const std::string& name,
                                    const std::string& pull, const PullFlags& flags,
                                    uint64_t root_base_room) {
  VESSEL_ASSIGN_OR_RETURN(image::Reference ref, image::parse_reference(name));
  VESSEL_ASSIGN_OR_RETURN(images::ImageStore store, images::ImageStore::open(root));
  VESSEL_ASSIGN_OR_RETURN(std::optional<images::ImageRecord> found, store.find(ref));
  if (!found && pull != "always") {
    VESSEL_ASSIGN_OR_RETURN(found, load_embedded(store, ref));
  }
  if (pull == "always" || (!found && pull == "missing")) {
    VESSEL_ASSIGN_OR_RETURN(images::ImageRecord pulled, pull_image(store, ref, flags));
    found = std::move(pulled);
  }
  if (!found)
    return Error(ErrorCode::kNotFound,
                 "image '" + ref.familiar() + "' is not present locally (and --pull is never)");
  ResolvedImage out{ref, *found, {}, {}};
  VESSEL_ASSIGN_OR_RETURN(out.config, store.config(*found));
  VESSEL_ASSIGN_OR_RETURN(out.snapshot, store.snapshot(*found));
  if (root_base_room != 0) {
    VESSEL_ASSIGN_OR_RETURN(out.root_base, store.root_base(*found, root_base_room));
  }
  return out;
}

namespace {

// Resolves IMAGE (pulling it as --pull says) and fills the configuration
// from its config the way Docker does: Entrypoint + (CMD args or the image's
// Cmd), Env under -e, WorkingDir unless -w, User unless -u, StopSignal
// unless --stop-signal, Labels under --label.
Status apply_image(const RunFlags& f, const std::string& root, const std::string& name,
                   std::vector<std::string> args, runtime::ContainerConfig& spec) {
  // A writable root runs from the image's writable base (root_disk).
  VESSEL_ASSIGN_OR_RETURN(
      ResolvedImage resolved,
      resolve_image(root, name, f.pull, f.pull_flags, spec.read_only ? 0 : spec.writable_bytes));
  const image::Reference& ref = resolved.ref;
  const image::ImageConfig& config = resolved.config;
  spec.root_image = spec.read_only ? resolved.snapshot : resolved.root_base;
  spec.root_disk = !spec.read_only;
  spec.image = ref.familiar();
  spec.image_id = resolved.record.manifest.str();

  std::vector<std::string> argv = config.config.entrypoint;
  if (f.entrypoint)
    argv = f.entrypoint->empty() ? std::vector<std::string>{}
                                 : std::vector<std::string>{*f.entrypoint};
  if (!args.empty())
    argv.insert(argv.end(), args.begin(), args.end());
  else if (!f.entrypoint)
    argv.insert(argv.end(), config.config.cmd.begin(), config.config.cmd.end());
  if (argv.empty())
    return Error(ErrorCode::kInvalidArgument,
                 "image '" + ref.familiar() + "' has no Entrypoint or Cmd: give a command");
  spec.argv = std::move(argv);
  spec.env = merge_env(config.config.env, spec.env);
  if (f.workdir.empty() && !config.config.working_dir.empty())
    spec.workdir = config.config.working_dir;
  if (f.user.empty() && !config.config.user.empty()) {
    if (auto s = parse_user(config.config.user, spec); !s.ok())
      return s.error().wrap("image '" + ref.familiar() + "'");
  }
  if (f.stop_signal.empty() && !config.config.stop_signal.empty()) {
    auto sig = runtime::parse_signal(config.config.stop_signal);
    if (sig.ok()) spec.stop_signal = *sig;
  }
  // The image's VOLUMEs become anonymous volumes unless something is
  // mounted there already.
  for (const auto& target : config.config.volumes) {
    bool covered = false;
    for (const auto& m : spec.mounts)
      covered = covered || m.target == target;
    if (covered) continue;
    auto m = runtime::parse_volume_flag(target);
    if (!m.ok()) return m.error().wrap("image '" + ref.familiar() + "' VOLUME");
    spec.mounts.push_back(std::move(*m));
  }
  for (const auto& [k, v] : config.config.labels)
    spec.labels.emplace(k, v);  // --label entries, added first, win
  // -P: every ExposedPorts entry on a free host port, unless -p gave it.
  if (f.publish_all) {
    for (const auto& key : config.config.exposed_ports) {
      auto port = net::parse_port_key(key);
      if (!port.ok()) return port.error().wrap("image '" + ref.familiar() + "' ExposedPorts");
      bool given = false;
      for (const auto& m : spec.ports)
        given = given || (m.container_port == port->first && m.proto == port->second);
      if (!given) spec.ports.push_back({"", 0, port->first, port->second});
    }
  }
  return ok_status();
}

// The notice that says we fell back to software emulation, once per state
// root so it does not clutter every run.
void notice_accel(const std::string& root, const std::string& accel, bool debug) {
  auto wanted = vmm::parse_accel(accel.empty() ? "auto" : accel);
  if (!wanted.ok()) return;
  auto choice = vmm::resolve_accel(*wanted, vmm::read_host_facts());
  if (!choice.ok() || choice->accel != vmm::Accel::kTcg || choice->reason == "requested") return;
  std::string marker = root + "/.tcg-notice";
  if (!debug && ::access(marker.c_str(), F_OK) == 0) return;
  log::warn("KVM unusable (" + choice->reason +
            "); using TCG software emulation (slower). --accel chooses explicitly.");
  if (sys::make_dirs(root, 0700).ok()) (void)sys::write_file_atomic(marker, "");
}

// The flags and the image make the configuration; errors are the user's (125).
Result<runtime::ContainerConfig> build_config(const RunFlags& f, const std::string& root) {
  runtime::ContainerConfig spec;
  if (!f.rootfs.empty() && !f.rootfs_image.empty())
    return Error(ErrorCode::kInvalidArgument,
                 "give only one of --rootfs DIR and --rootfs-image FILE");
  bool from_image = f.rootfs.empty() && f.rootfs_image.empty();
  spec.rootfs = f.rootfs;
  spec.root_image = f.rootfs_image;
  spec.argv = f.command;
  VESSEL_ASSIGN_OR_RETURN(spec.env, collect_env(f));
  if (!f.workdir.empty()) spec.workdir = f.workdir;
  VESSEL_TRY(parse_user(f.user, spec));
  spec.tty = f.tty;
  spec.open_stdin = f.interactive;
  spec.hostname = f.hostname;
  spec.read_only = f.read_only;
  spec.auto_remove = f.rm;
  if (!(f.cpus > 0) || f.cpus > 255)
    return Error(ErrorCode::kInvalidArgument,
                 "invalid --cpus " + std::to_string(f.cpus) + " (expected 0 < cpus <= 255)");
  spec.cpus = static_cast<unsigned>(std::ceil(f.cpus));  // vCPUs are whole
  if (std::floor(f.cpus) != f.cpus)                      // the rest is a cgroup quota
    spec.cpu_millis = static_cast<uint32_t>(std::lround(f.cpus * 1000));
  auto mem = parse_size(f.memory);
  if (!mem)
    return Error(ErrorCode::kInvalidArgument,
                 "invalid --memory '" + f.memory + "' (expected e.g. 512m or 1g)");
  spec.memory_bytes = *mem;
  spec.ulimits = f.ulimits;
  spec.cap_add = f.cap_add;
  spec.cap_drop = f.cap_drop;
  // Docker's --privileged, as far as capabilities go (the VM has no host
  // devices to give).
  if (f.privileged) spec.cap_add.push_back("ALL");
  for (const auto& o : f.security_opts)
    VESSEL_TRY(agent::apply_security_opt(o, spec.no_new_privileges));
  if (f.pids_limit < 0 && f.pids_limit != -1)
    return Error(ErrorCode::kInvalidArgument, "invalid --pids-limit (expected N > 0, or -1)");
  spec.pids_limit = f.pids_limit > 0 ? static_cast<uint64_t>(f.pids_limit) : 0;
  if (f.memory_reclaim != "auto" && f.memory_reclaim != "off")
    return Error(ErrorCode::kInvalidArgument,
                 "invalid --memory-reclaim '" + f.memory_reclaim + "' (expected auto or off)");
  spec.memory_reclaim = f.memory_reclaim == "auto";
  std::string accel = f.accel;
  if (accel.empty()) {
    const char* e = ::getenv("VESSEL_ACCEL");
    accel = e && *e ? e : "auto";
  }
  VESSEL_ASSIGN_OR_RETURN(auto a, vmm::parse_accel(accel));
  spec.accel = a ? vmm::accel_name(*a) : "";
  VESSEL_ASSIGN_OR_RETURN(spec.restart, runtime::parse_restart_policy(f.restart));
  if (!f.stop_signal.empty()) {
    VESSEL_ASSIGN_OR_RETURN(spec.stop_signal, runtime::parse_signal(f.stop_signal));
  }
  if (f.stop_timeout >= 0) spec.stop_timeout = f.stop_timeout;
  for (const auto& l : f.labels) {
    auto eq = l.find('=');
    spec.labels[l.substr(0, eq)] = eq == std::string::npos ? "" : l.substr(eq + 1);
  }
  for (const auto& v : f.volumes) {
    VESSEL_ASSIGN_OR_RETURN(runtime::MountSpec m, runtime::parse_volume_flag(v));
    spec.mounts.push_back(std::move(m));
  }
  for (const auto& v : f.mounts) {
    VESSEL_ASSIGN_OR_RETURN(runtime::MountSpec m, runtime::parse_mount_flag(v));
    spec.mounts.push_back(std::move(m));
  }
  for (const auto& v : f.tmpfs) {
    VESSEL_ASSIGN_OR_RETURN(runtime::MountSpec m, runtime::parse_tmpfs_flag(v));
    spec.mounts.push_back(std::move(m));
  }
  for (const auto& p : f.publish) {
    VESSEL_ASSIGN_OR_RETURN(auto mappings, net::parse_publish(p));
    spec.ports.insert(spec.ports.end(), mappings.begin(), mappings.end());
  }
  spec.dns = f.dns;
  spec.dns_search = f.dns_search;
  spec.dns_options = f.dns_options;
  spec.extra_hosts = f.add_hosts;
  VESSEL_ASSIGN_OR_RETURN(
      runtime::GuestAssets assets,
      runtime::find_guest_assets(f.kernel.empty() ? std::nullopt
                                                  : std::optional<std::string>(f.kernel)));
  spec.kernel = assets.kernel;
  spec.initrd = assets.initrd;
  if (from_image) {
    std::vector<std::string> args(f.command.begin() + 1, f.command.end());
    VESSEL_TRY(apply_image(f, root, f.command[0], std::move(args), spec));
  }
  return spec;
}

Result<containers::ContainerRecord> create(const RunFlags& f, const GlobalOptions& g,
                                           containers::Containers& cs) {
  VESSEL_ASSIGN_OR_RETURN(runtime::ContainerConfig config, build_config(f, cs.root()));
  if (!f.cidfile.empty() && ::access(f.cidfile.c_str(), F_OK) == 0)
    return Error(ErrorCode::kAlreadyExists, "container ID file '" + f.cidfile + "' already exists");
  notice_accel(cs.root(), config.accel, g.debug);
  // --ip, --mac-address and --network-alias belong to the first network.
  std::vector<networks::Attachment> attachments;
  for (const auto& n : f.networks)
    attachments.push_back({n, "", "", {}});
  if (!f.ip.empty() || !f.mac.empty() || !f.aliases.empty()) {
    if (attachments.empty()) attachments.push_back({networks::kDefaultNetwork, "", "", {}});
    attachments.front().ip = f.ip;
    attachments.front().mac = f.mac;
    attachments.front().aliases = f.aliases;
  }
  VESSEL_ASSIGN_OR_RETURN(containers::ContainerRecord r,
                          cs.create(std::move(config), f.name, attachments));
  if (!f.cidfile.empty()) {
    if (auto s = sys::write_file_atomic(f.cidfile, r.id); !s.ok()) {
      (void)cs.remove(r, true);
      return s.error().wrap("write --cidfile");
    }
  }
  return r;
}

int run(const RunFlags& f, const GlobalOptions& g) {
  std::string root = runtime::resolve_root(g.root);
  if (f.detach && f.rm && f.restart != "no") {
    print_error("run: conflicting options: --restart and --rm");
    return kExitUsage;
  }
  auto cs = containers::Containers::open(root);
  if (!cs.ok()) {
    print_error("run: " + cs.error().to_string());
    return kExitUsage;
  }
  auto r = create(f, g, **cs);
  if (!r.ok()) {
    print_error("run: " + r.error().to_string());
    return kExitUsage;
  }
  auto launch = (*cs)->start(*r, !f.detach, g.debug);
  if (!launch.ok() || !*launch) {
    print_error("run: " +
                (launch.ok() ? std::string("already running") : launch.error().to_string()));
    if (f.rm) (void)(*cs)->remove(*r, true);
    return kExitUsage;
  }
  if (!f.detach) return attach_container(**cs, *r, f.tty, f.interactive, "run");
  auto report = monitor::wait_started(**launch);
  if (!report.ok()) {
    print_error("run: " + report.error().to_string());
    return kExitUsage;
  }
  if (!report->ok) {
    print_error("run: " + report->message);
    return report->exit_code;
  }
  std::cout << r->id << std::endl;
  return kExitOk;
}

void add_container_flags(CLI::App* cmd, RunFlags& f) {
  cmd->add_option("--rootfs", f.rootfs, "Host directory to use as the root filesystem");
  cmd->add_option("--rootfs-image", f.rootfs_image,
                  "ext4 image to use read-only as the root, with a fresh writable layer on top");
  cmd->add_flag("--rm", f.rm, "Remove the container when it exits");
  cmd->add_option("--pull", f.pull, "Pull the image: missing (default), always or never")
      ->check(CLI::IsMember({"missing", "always", "never"}));
  cmd->add_option("--entrypoint", f.entrypoint, "Override the image's Entrypoint");
  cmd->add_option("--platform", f.pull_flags.platform, "Platform to pull (os/arch[/variant])");
  cmd->add_option("--scheme", f.pull_flags.scheme, "Registry scheme: https, http or auto")
      ->check(CLI::IsMember({"http", "https", "auto"}));
  cmd->add_flag("-i,--interactive", f.interactive, "Keep stdin open and forward it");
  cmd->add_flag("-t,--tty", f.tty, "Allocate a pseudo-terminal");
  cmd->add_option("-e,--env", f.env, "Set an environment variable (KEY=VALUE or KEY)")
      ->allow_extra_args(false);
  cmd->add_option("--env-file", f.env_files, "Read environment variables from a file")
      ->allow_extra_args(false);
  cmd->add_option("-w,--workdir", f.workdir, "Working directory inside the container");
  cmd->add_option("-u,--user", f.user, "User to run as: user[:group], names or numbers");
  cmd->add_option("--cpus", f.cpus, "Virtual CPUs (default 2)");
  cmd->add_option("-m,--memory", f.memory, "Memory, e.g. 256m or 1g (default 512m)");
  cmd->add_option("--name", f.name, "Name of the container");
  cmd->add_option("-h,--hostname", f.hostname, "Hostname inside the container");
  cmd->add_flag("--read-only", f.read_only, "Mount the root filesystem read-only");
  cmd->add_option("-v,--volume", f.volumes,
                  "Mount a host path, a named volume or an anonymous volume: "
                  "SRC:DST[:ro] or DST")
      ->allow_extra_args(false);
  cmd->add_option("--mount", f.mounts,
                  "Mount: type=bind|volume|tmpfs,source=..,target=..[,readonly]")
      ->allow_extra_args(false);
  cmd->add_option("--ulimit", f.ulimits, "Set a ulimit: NAME=SOFT[:HARD] (e.g. nofile=1024:2048)")
      ->allow_extra_args(false);
  cmd->add_option("--cap-add", f.cap_add, "Add a capability to Docker's default set (or ALL)")
      ->allow_extra_args(false);
  cmd->add_option("--cap-drop", f.cap_drop, "Drop a capability from the default set (or ALL)")
      ->allow_extra_args(false);
  cmd->add_flag("--privileged", f.privileged, "Give the container every capability");
  cmd->add_option("--security-opt", f.security_opts,
                  "Security option: no-new-privileges[=true|false]")
      ->allow_extra_args(false);
  cmd->add_option("--pids-limit", f.pids_limit, "Limit the container's processes (-1: none)");
  cmd->add_option("--memory-reclaim", f.memory_reclaim,
                  "auto: return an idle container's page cache to the host; off: keep it "
                  "(default auto)");
  cmd->add_option("--tmpfs", f.tmpfs, "Mount a tmpfs: DST[:size=64m,mode=1777]")
      ->allow_extra_args(false);
  cmd->add_option("--restart", f.restart,
                  "Restart policy: no, on-failure[:max-retries], always, unless-stopped");
  cmd->add_option("--stop-signal", f.stop_signal, "Signal that stops the container (default TERM)");
  cmd->add_option("--stop-timeout", f.stop_timeout, "Seconds to wait before SIGKILL on stop");
  cmd->add_option("-l,--label", f.labels, "Set a label (KEY=VALUE)")->allow_extra_args(false);
  cmd->add_option("--cidfile", f.cidfile, "Write the container ID to this file");
  cmd->add_flag("--init", f.init, "Accepted for Docker compatibility (vessel-init always reaps)");
  cmd->add_option("--accel", f.accel,
                  "Accelerator: kvm, tcg or auto (default: $VESSEL_ACCEL or auto)");
  cmd->add_option("--network,--net", f.networks,
                  "Connect to a network (repeatable; 'none': only loopback; default: default)")
      ->allow_extra_args(false);
  cmd->add_option("--ip", f.ip, "IPv4 address on the (first) network");
  cmd->add_option("--mac-address", f.mac, "MAC address on the (first) network");
  cmd->add_option("--network-alias", f.aliases, "Another name on the (first) network")
      ->allow_extra_args(false);
  cmd->add_option("-p,--publish", f.publish,
                  "Publish a port: [HOSTIP:][HOSTPORT:]CTRPORT[/tcp|udp], ranges allowed")
      ->allow_extra_args(false);
  cmd->add_flag("-P,--publish-all", f.publish_all,
                "Publish the image's exposed ports on free host ports");
  cmd->add_option("--dns", f.dns, "DNS server instead of the network's")->allow_extra_args(false);
  cmd->add_option("--dns-search", f.dns_search, "DNS search domain")->allow_extra_args(false);
  cmd->add_option("--dns-option", f.dns_options, "DNS resolver option")->allow_extra_args(false);
  cmd->add_option("--add-host", f.add_hosts, "Add NAME:IP to /etc/hosts (IP may be host-gateway)")
      ->allow_extra_args(false);
  cmd->add_option("--kernel", f.kernel, "Guest kernel to boot instead of the built one");
}

CLI::App* add_container_command(CLI::App& app, const GlobalOptions& global, const char* name,
                                const char* description, RunFlags& flags) {
  CLI::App* cmd = app.add_subcommand(name, description);
  cmd->set_help_flag("--help", "Print this help");  // -h is --hostname, as in Docker
  // Everything after the first non-flag argument is the command and its args.
  // (fallthrough would hand the command to the parent, so the global flags
  // are repeated here instead.)
  cmd->prefix_command();
  cmd->fallthrough(false);
  add_container_flags(cmd, flags);
  auto* mutable_global = const_cast<GlobalOptions*>(&global);
  cmd->add_option("--root", mutable_global->root, "State root");
  cmd->add_flag("--debug", mutable_global->debug, "Boot log to stderr");
  return cmd;
}

}  // namespace

Runner add_run(CLI::App& app, const GlobalOptions& global) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* cmd = add_container_command(app, global, "run",
                                        "Run a command in a new container (its own VM)", *flags);
  cmd->add_flag("-d,--detach", flags->detach, "Run in the background and print the container ID");
  cmd->footer(
      "Usage: vessel run [OPTIONS] IMAGE [COMMAND [ARG...]]\n"
      "       vessel run [OPTIONS] (--rootfs DIR | --rootfs-image FILE) COMMAND [ARG...]");
  auto* create_cmd = add_container_command(app, global, "create",
                                           "Create a container without starting it", *flags);
  create_cmd->footer("Usage: vessel create [OPTIONS] IMAGE [COMMAND [ARG...]]");
  return [cmd, create_cmd, flags, &global] {
    CLI::App* which = cmd->parsed() ? cmd : create_cmd;
    flags->command = which->remaining();
    if (flags->command.empty()) {
      print_error(std::string(which->get_name()) + ": no image or command given (usage: vessel " +
                  which->get_name() + " [OPTIONS] IMAGE [COMMAND...])");
      return kExitUsage;
    }
    if (which == cmd) return run(*flags, global);
    auto cs = containers::Containers::open(runtime::resolve_root(global.root));
    if (!cs.ok()) {
      print_error("create: " + cs.error().to_string());
      return kExitUsage;
    }
    auto r = create(*flags, global, **cs);
    if (!r.ok()) {
      print_error("create: " + r.error().to_string());
      return kExitUsage;
    }
    std::cout << r->id << std::endl;
    return kExitOk;
  };
}

}  // namespace vessel::cli
