// vessel machine create|start|stop|restart|rm|ls|inspect|exec|shell|logs|set|set-default:
// persistent machines (the image's own init as PID 1, a disk of their own,
// the host home shared). The logic is in src/machines.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/strings.h"
#include "commands.h"
#include "machines/machines.h"
#include "net/port_spec.h"
#include "networks/views.h"
#include "runtime/paths.h"
#include "runtime/runtime_dir.h"
#include "sys/fs.h"
#include "vmm/accel.h"

namespace vessel::cli {
namespace {

using machines::Machines;
using nlohmann::json;
using state::ContainerRecord;

struct MachineFlags {
  // create
  std::string name, cpus = "2", memory = "2g", disk = "16g", home, user, accel, pull = "missing";
  bool no_home = false, set_default = false, no_start = false, autostart = false;
  std::vector<std::string> mounts, networks, publish;
  PullFlags pull_flags;
  std::string image;
  // others
  std::vector<std::string> refs;  // names (and for exec: NAME CMD...)
  std::string format = "table";
  bool quiet = false, force = false, all_autostart = false, boot = false, follow = false;
  bool as_root = false, tty = false, interactive = false;
  std::vector<std::string> env;
  std::string workdir;
  int timeout = 60;
};

std::string human(uint64_t bytes) {
  if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0)
    return std::to_string(bytes >> 30) + "GiB";
  return std::to_string(bytes >> 20) + "MiB";
}

std::string state_text(Machines& ms, const ContainerRecord& r) {
  bool up = runtime::owner_alive(ms.root(), r.id);
  return up ? "running" : "stopped";
}

// The address the machine holds now on its first network, or "".
std::string address_of(Machines& ms, const ContainerRecord& r) {
  auto leases = ms.containers().store().leases();
  if (!leases.ok()) return "";
  for (const auto& l : *leases)
    if (l.container == r.id) return net::Ipv4{l.ip}.to_string();
  return "";
}

json settings_json(const runtime::ContainerConfig& c) {
  json mounts = json::array();
  for (const auto& m : c.mounts)
    if (!(c.machine.share_home && m.target == c.machine.home))
      mounts.push_back(m.source + ":" + m.target + (m.read_only ? ":ro" : ""));
  return {{"cpus", c.cpus},
          {"memory", human(c.memory_bytes)},
          {"disk", human(c.machine.disk_bytes)},
          {"home", c.machine.share_home ? c.machine.home : "none"},
          {"mounts", mounts},
          {"autostart", c.machine.autostart}};
}

json inspect_json(Machines& ms, const ContainerRecord& r) {
  auto c = runtime::config_from_json(r.config);
  json j = {{"Id", r.id},
            {"Name", r.name},
            {"Image", r.image},
            {"ImageID", r.image_id},
            {"Created", iso_time(r.created)},
            {"State",
             {{"Status", state_text(ms, r)},
              {"StartedAt", iso_time(r.state.started)},
              {"FinishedAt", iso_time(r.state.finished)},
              {"Error", r.state.error}}},
            {"Default", ms.default_name() == r.name},
            {"Address", address_of(ms, r)}};
  if (!c.ok()) return j;
  j["Settings"] = settings_json(*c);
  j["Pending"] = c->machine.pending;
  j["User"] = c->machine.user.empty() ? json(nullptr)
                                      : json({{"Name", c->machine.user},
                                              {"Uid", c->machine.uid},
                                              {"Gid", c->machine.gid},
                                              {"Home", c->machine.home},
                                              {"Shell", c->machine.shell}});
  j["Disk"] = c->root_image;
  j["Init"] = c->machine.init;
  std::string ports_json;
  if (auto p = sys::read_file(runtime::runtime_dir_of(ms.root(), r.id) + "/ports.json", 1 << 20);
      p.ok())
    ports_json = *p;
  auto settings = networks::network_settings(ms.containers().networks(), r.id, r.name,
                                             networks::ports_view(c->ports, ports_json));
  if (settings.ok()) j["NetworkSettings"] = *settings;
  return j;
}

Result<ContainerRecord> create(Machines& ms, const MachineFlags& f, const GlobalOptions& g) {
  machines::CreateOptions o;
  o.name = f.name;
  auto cpus = parse_u64(f.cpus);
  if (!cpus || *cpus < 1 || *cpus > 255)
    return Error(ErrorCode::kInvalidArgument,
                 "invalid --cpus '" + f.cpus + "' (expected 1 to 255)");
  o.cpus = static_cast<unsigned>(*cpus);
  auto memory = parse_size(f.memory), disk = parse_size(f.disk);
  if (!memory)
    return Error(ErrorCode::kInvalidArgument, "invalid --memory '" + f.memory + "' (e.g. 2g)");
  if (*memory < machines::kMinMemory)
    return Error(ErrorCode::kInvalidArgument,
                 "--memory " + f.memory + " is too small: a machine needs at least 256m");
  if (!disk)
    return Error(ErrorCode::kInvalidArgument, "invalid --disk '" + f.disk + "' (e.g. 16g)");
  o.memory_bytes = *memory;
  o.disk_bytes = *disk;
  if (!f.user.empty()) {
    VESSEL_ASSIGN_OR_RETURN(o.user, machines::parse_user(f.user));
  } else {
    VESSEL_ASSIGN_OR_RETURN(o.user, machines::invoking_user());
  }
  if (f.no_home && !f.home.empty())
    return Error(ErrorCode::kInvalidArgument, "give only one of --home and --no-home");
  o.home = f.home;
  o.no_home = f.no_home;
  for (const auto& m : f.mounts) {
    VESSEL_ASSIGN_OR_RETURN(auto spec, machines::parse_mount(m));
    o.mounts.push_back(std::move(spec));
  }
  for (const auto& n : f.networks)
    o.networks.push_back({n, "", "", {}});
  for (const auto& p : f.publish) {
    VESSEL_ASSIGN_OR_RETURN(auto mappings, net::parse_publish(p));
    o.ports.insert(o.ports.end(), mappings.begin(), mappings.end());
  }
  o.autostart = f.autostart;
  std::string accel = f.accel;
  if (accel.empty()) {
    const char* e = ::getenv("VESSEL_ACCEL");
    accel = e && *e ? e : "auto";
  }
  VESSEL_ASSIGN_OR_RETURN(auto a, vmm::parse_accel(accel));
  o.accel = a ? vmm::accel_name(*a) : "";
  VESSEL_ASSIGN_OR_RETURN(auto assets, runtime::find_guest_assets(std::nullopt, true));
  o.kernel = assets.kernel;
  o.initrd = assets.initrd;
  VESSEL_ASSIGN_OR_RETURN(ResolvedImage image,
                          resolve_image(ms.root(), f.image, f.pull, f.pull_flags));
  o.image = image.ref.familiar();
  o.image_id = image.record.manifest.str();
  o.snapshot = image.snapshot;
  (void)g;
  return ms.create(o);
}

// Rotates the console log before a boot: boot.log (the current boot) ->
// boot.log.1 -> .2 -> .3 (dropped).
void rotate_console(Machines& ms, const ContainerRecord& r) {
  std::string base = runtime::container_dir(ms.root(), r.id) + "/boot.log";
  for (int i = 2; i >= 1; --i)
    ::rename((base + "." + std::to_string(i)).c_str(),
             (base + "." + std::to_string(i + 1)).c_str());
  ::rename(base.c_str(), (base + ".1").c_str());
}

Status start_one(Machines& ms, const ContainerRecord& r, bool debug) {
  if (runtime::owner_alive(ms.root(), r.id)) return ok_status();
  rotate_console(ms, r);
  VESSEL_ASSIGN_OR_RETURN(bool started, ms.start(r, debug));
  (void)started;
  return ok_status();
}

// The Spawn of a command in the machine: as its user (unless --root), with
// a login-like environment, in `cwd`.
Result<protocol::Spawn> machine_spawn(const runtime::ContainerConfig& c, const MachineFlags& f,
                                      std::vector<std::string> argv, const std::string& cwd) {
  protocol::Spawn s;
  s.argv = std::move(argv);
  bool as_user = !f.as_root && !c.machine.user.empty();
  std::string home = as_user ? c.machine.home : "/root";
  std::string user = as_user ? c.machine.user : "root";
  s.env = {std::string("PATH=") + runtime::kDefaultPath, "HOME=" + home, "USER=" + user,
           "LOGNAME=" + user, "HOSTNAME=" + c.hostname};
  if (as_user) s.env.push_back("SHELL=" + c.machine.shell);
  if (f.tty) {
    const char* term = ::getenv("TERM");
    s.env.push_back(std::string("TERM=") + (term && *term ? term : "xterm"));
  }
  if (const char* lang = ::getenv("LANG"); lang && *lang)
    s.env.push_back(std::string("LANG=") + lang);
  apply_env_flags(s.env, f.env);
  s.cwd = cwd.empty() ? home : cwd;
  if (as_user) s.user = c.machine.user;
  return s;
}

// `machine exec`: NAME may be left out (the default machine) when the first
// word is not a machine.
int exec_in(Machines& ms, const MachineFlags& f, bool shell) {
  std::string verb = shell ? "machine shell" : "machine exec";
  auto fail = [&](const Error& e) {
    print_error(verb + ": " + e.to_string());
    return kExitFailure;
  };
  std::vector<std::string> words = f.refs;
  std::string ref;
  if (shell) {
    if (words.size() > 1)
      return fail(Error(ErrorCode::kInvalidArgument, "give at most one machine"));
    if (!words.empty()) ref = words[0];
  } else {
    if (words.empty()) return fail(Error(ErrorCode::kInvalidArgument, "no command given"));
    if (words.size() > 1 && ms.find(words[0]).ok()) {
      ref = words[0];
      words.erase(words.begin());
    }
  }
  auto r = ms.find(ref);
  if (!r.ok()) return fail(r.error());
  if (!runtime::owner_alive(ms.root(), r->id))
    return fail(
        Error(ErrorCode::kFailedPrecondition,
              "machine " + r->name + " is not running (vessel machine start " + r->name + ")"));
  auto c = runtime::config_from_json(r->config);
  if (!c.ok()) return fail(c.error());
  std::string cwd = f.workdir;
  std::vector<std::string> argv = words;
  bool tty = f.tty, interactive = f.interactive;
  if (shell) {
    // A login shell as the user, in the current directory when the machine
    // sees it at the same path (under the shared home).
    std::string sh = !f.as_root && !c->machine.user.empty() ? c->machine.shell : "/bin/sh";
    argv = {sh, "-l"};
    char here[PATH_MAX];
    if (cwd.empty() && c->machine.share_home && ::getcwd(here, sizeof here)) {
      std::string h = here, home = c->machine.home;
      if (h == home || h.starts_with(home + "/")) cwd = h;
    }
    interactive = true;
    tty = ::isatty(STDIN_FILENO) != 0;
  }
  MachineFlags g = f;
  g.tty = tty;
  auto spawn = machine_spawn(*c, g, argv, cwd);
  if (!spawn.ok()) return fail(spawn.error());
  return exec_process(ms.containers(), *r, std::move(*spawn), tty, interactive, false, verb);
}

int logs(Machines& ms, const MachineFlags& f) {
  auto r = ms.find(f.refs.empty() ? "" : f.refs[0]);
  if (!r.ok()) {
    print_error("machine logs: " + r.error().to_string());
    return kExitFailure;
  }
  std::string base = runtime::container_dir(ms.root(), r->id) + "/boot.log";
  if (!f.boot)
    for (int i = 3; i >= 1; --i)
      if (auto old = sys::read_file(base + "." + std::to_string(i), 1ull << 30); old.ok())
        std::cout << *old;
  uint64_t offset = 0;
  auto print_new = [&] {
    auto cur = sys::read_file(base, 1ull << 30);
    if (!cur.ok()) return;
    if (cur->size() < offset) offset = 0;  // a new boot began
    std::cout << cur->substr(offset) << std::flush;
    offset = cur->size();
  };
  print_new();
  while (f.follow && runtime::owner_alive(ms.root(), r->id)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    print_new();
  }
  if (f.follow) print_new();
  return kExitOk;
}

int run_machine(const std::string& verb, const MachineFlags& f, const GlobalOptions& g) {
  auto fail = [&](const Error& e) {
    print_error("machine " + verb + ": " + e.to_string());
    return e.code() == ErrorCode::kInvalidArgument || e.code() == ErrorCode::kNotFound
               ? kExitFailure
               : kExitFailure;
  };
  auto opened = Machines::open(runtime::resolve_root(g.root));
  if (!opened.ok()) return fail(opened.error());
  Machines& ms = **opened;
  if (verb == "create") {
    auto r = create(ms, f, g);
    if (!r.ok()) return fail(r.error());
    if (f.set_default || ms.default_name().empty()) (void)ms.set_default(r->name);
    if (!f.no_start) {
      if (auto s = start_one(ms, *r, g.debug); !s.ok()) {
        // A machine that cannot boot (no init, a bad image) is not kept.
        (void)ms.remove(*r, true);
        return fail(s.error());
      }
    }
    std::cout << r->name << "\n";
    return kExitOk;
  }
  if (verb == "ls") {
    auto all = ms.list();
    if (!all.ok()) return fail(all.error());
    std::string def = ms.default_name();
    if (f.quiet) {
      for (const auto& r : *all)
        std::cout << r.name << "\n";
      return kExitOk;
    }
    if (f.format == "json") {
      json out = json::array();
      for (const auto& r : *all) {
        auto c = runtime::config_from_json(r.config);
        json e = {{"Name", r.name},
                  {"Id", r.id},
                  {"State", state_text(ms, r)},
                  {"Image", r.image},
                  {"Address", address_of(ms, r)},
                  {"Default", r.name == def}};
        if (c.ok()) {
          e["Settings"] = settings_json(*c);
          e["Pending"] = c->machine.pending;
        }
        out.push_back(std::move(e));
      }
      std::cout << out.dump(2) << "\n";
      return kExitOk;
    }
    std::printf("%-20s   %-8s   %-28s   %-4s   %-8s   %-8s   %s\n", "NAME", "STATE", "IMAGE",
                "CPUS", "MEMORY", "DISK", "ADDRESS");
    for (const auto& r : *all) {
      auto c = runtime::config_from_json(r.config);
      std::string name = r.name + (r.name == def ? " *" : "");
      std::printf("%-20s   %-8s   %-28s   %-4s   %-8s   %-8s   %s\n", name.c_str(),
                  state_text(ms, r).c_str(), r.image.c_str(),
                  c.ok() ? std::to_string(c->cpus).c_str() : "",
                  c.ok() ? human(c->memory_bytes).c_str() : "",
                  c.ok() ? human(c->machine.disk_bytes).c_str() : "", address_of(ms, r).c_str());
    }
    return kExitOk;
  }
  if (verb == "exec" || verb == "shell") return exec_in(ms, f, verb == "shell");
  if (verb == "logs") return logs(ms, f);
  if (verb == "set-default") {
    auto r = ms.find(f.refs.at(0));
    if (!r.ok()) return fail(r.error());
    if (auto s = ms.set_default(r->name); !s.ok()) return fail(s.error());
    return kExitOk;
  }
  if (verb == "set") {
    auto r = ms.find(f.refs.at(0));
    if (!r.ok()) return fail(r.error());
    std::vector<std::string> settings(f.refs.begin() + 1, f.refs.end());
    auto restart = ms.set(*r, settings);
    if (!restart.ok()) return fail(restart.error());
    bool waits = false;
    for (const auto& s : settings)
      waits = waits || !s.starts_with("autostart=");
    if (*restart)
      std::cout << "Stored. Machine " << r->name
                << " is running: the change applies after a restart (vessel machine restart "
                << r->name << ").\n";
    else if (waits)
      std::cout << "Stored; applies at the next start.\n";
    return kExitOk;
  }
  // start, stop, restart, rm, inspect: one or more machines (default: the default one).
  std::vector<std::string> refs = f.refs;
  if ((verb == "start" || verb == "stop") && f.all_autostart) {
    auto all = ms.list();
    if (!all.ok()) return fail(all.error());
    for (const auto& r : *all) {
      auto c = runtime::config_from_json(r.config);
      if (c.ok() && c->machine.autostart) refs.push_back(r.name);
    }
    if (refs.empty()) return kExitOk;
  } else if (refs.empty()) {
    refs.push_back("");
  }
  int rc = kExitOk;
  json out = json::array();
  for (const auto& ref : refs) {
    auto r = ms.find(ref);
    if (!r.ok()) {
      if (verb == "rm" && f.force && r.error().code() == ErrorCode::kNotFound) continue;
      rc = fail(r.error());
      continue;
    }
    Status s = ok_status();
    if (verb == "start") {
      s = start_one(ms, *r, g.debug);
    } else if (verb == "stop") {
      s = ms.stop(*r, std::chrono::seconds(f.timeout));
    } else if (verb == "restart") {
      s = ms.stop(*r, std::chrono::seconds(f.timeout));
      if (s.ok()) s = start_one(ms, *r, g.debug);
    } else if (verb == "rm") {
      s = ms.remove(*r, f.force);
    } else if (verb == "inspect") {
      out.push_back(inspect_json(ms, *r));
      continue;
    }
    if (!s.ok()) {
      rc = fail(s.error());
      continue;
    }
    std::cout << r->name << "\n";
  }
  if (verb == "inspect") std::cout << out.dump(4) << "\n";
  return rc;
}

}  // namespace

Runner add_machine(CLI::App& app, const GlobalOptions& global) {
  auto f = std::make_shared<MachineFlags>();
  CLI::App* cmd = app.add_subcommand(
      "machine", "Manage persistent machines (an image's own init, a disk, your home shared)");
  cmd->require_subcommand(1);
  auto* create = cmd->add_subcommand("create", "Create a machine from an image and boot it");
  create->add_option("image", f->image, "Image (pulled if missing)")->required();
  create->add_option("--name", f->name, "Machine name (default: default)");
  create->add_option("--cpus", f->cpus, "Virtual CPUs (default 2)");
  create->add_option("-m,--memory", f->memory, "Memory, e.g. 2g (default 2g, at least 256m)");
  create->add_option("--disk", f->disk, "Disk size, sparse (default 16g)");
  create->add_option("--home", f->home, "Host directory shared as the home (default: your home)");
  create->add_flag("--no-home", f->no_home, "Share no home directory");
  create->add_option("--user", f->user,
                     "The machine's user: NAME or NAME:UID:GID (default: you, or SUDO_USER)");
  create->add_option("--mount", f->mounts, "Share a host directory: HOST:GUEST[:ro]")
      ->allow_extra_args(false);
  create->add_option("--network,--net", f->networks, "Network to join (repeatable; none)")
      ->allow_extra_args(false);
  create->add_option("-p,--publish", f->publish, "Publish a port: [HOSTIP:][HOSTPORT:]PORT[/udp]")
      ->allow_extra_args(false);
  create->add_flag("--set-default", f->set_default, "Make it the default machine");
  create->add_flag("--no-start", f->no_start, "Create without booting it");
  create->add_flag("--autostart", f->autostart, "Start it with `machine start --all-autostart`");
  create->add_option("--accel", f->accel, "Accelerator: kvm, tcg or auto");
  create->add_option("--pull", f->pull, "Pull the image: missing (default), always or never")
      ->check(CLI::IsMember({"missing", "always", "never"}));
  add_pull_flags(create, f->pull_flags);
  auto* start = cmd->add_subcommand("start", "Start machines (default: the default machine)");
  start->add_option("names", f->refs, "Machines");
  start->add_flag("--all-autostart", f->all_autostart, "Start every machine with autostart=true");
  auto* stop = cmd->add_subcommand("stop", "Shut machines down cleanly (forced after --time)");
  stop->add_option("names", f->refs, "Machines");
  stop->add_option("-t,--time", f->timeout, "Seconds before the power-off is forced (default 60)");
  stop->add_flag("--all-autostart", f->all_autostart, "Stop every machine with autostart=true");
  auto* restart = cmd->add_subcommand("restart", "Stop and start machines");
  restart->add_option("names", f->refs, "Machines");
  restart->add_option("-t,--time", f->timeout, "Seconds before the power-off is forced");
  auto* rm = cmd->add_subcommand("rm", "Remove machines and their disks");
  rm->alias("delete");
  rm->add_option("names", f->refs, "Machines")->required();
  rm->add_flag("-f,--force", f->force, "Remove running machines too (forced off)");
  auto* ls = cmd->add_subcommand("ls", "List machines (* marks the default)");
  ls->alias("list");
  ls->add_flag("-q,--quiet", f->quiet, "Only names");
  ls->add_option("--format", f->format, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto* inspect = cmd->add_subcommand("inspect", "Show machines as JSON (current and pending)");
  inspect->add_option("names", f->refs, "Machines");
  auto* exec = cmd->add_subcommand("exec", "Run a command in a running machine");
  exec->prefix_command();
  exec->fallthrough(false);
  exec->add_flag("--root", f->as_root, "As root rather than the machine's user");
  exec->add_option("-e,--env", f->env, "Set an environment variable")->allow_extra_args(false);
  exec->add_option("-w,--workdir", f->workdir, "Working directory");
  exec->add_flag("-t,--tty", f->tty, "Allocate a pseudo-terminal");
  exec->add_flag("-i,--interactive", f->interactive, "Keep stdin open");
  exec->footer("Usage: vessel machine exec [OPTIONS] [NAME] COMMAND [ARG...]");
  auto* shell = cmd->add_subcommand("shell", "A login shell in a running machine");
  shell->add_option("name", f->refs, "Machine (default: the default machine)");
  shell->add_flag("--root", f->as_root, "As root");
  auto* logs_cmd = cmd->add_subcommand("logs", "The machine's console (all kept boots)");
  logs_cmd->add_option("name", f->refs, "Machine");
  logs_cmd->add_flag("--boot", f->boot, "Only the current (or last) boot");
  logs_cmd->add_flag("-f,--follow", f->follow, "Follow until the machine stops");
  auto* set = cmd->add_subcommand(
      "set",
      "Change settings: cpus=N memory=SIZE disk=SIZE home=DIR|none mounts=H:G[:ro],... "
      "autostart=true|false (applied at the next start)");
  set->add_option("args", f->refs, "NAME KEY=VALUE...")->required()->expected(2, -1);
  auto* set_default = cmd->add_subcommand("set-default", "Make a machine the default one");
  set_default->add_option("name", f->refs, "Machine")->required()->expected(1);
  return [=, &global] {
    for (auto* sub :
         {create, start, stop, restart, rm, ls, inspect, exec, shell, logs_cmd, set, set_default})
      if (sub->parsed()) {
        if (sub == exec) f->refs = exec->remaining();
        return run_machine(sub->get_name(), *f, global);
      }
    return kExitUsage;
  };
}

}  // namespace vessel::cli
