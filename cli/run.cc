// vessel run: run a command in a new container (its own VM).
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "base/log.h"
#include "base/strings.h"
#include "commands.h"
#include "runtime/paths.h"
#include "runtime/run.h"
#include "sys/fs.h"

namespace vessel::cli {
namespace {

struct RunFlags {
  bool rm = false, interactive = false, tty = false, read_only = false;
  std::vector<std::string> env, env_files;
  std::string workdir, user, rootfs, rootfs_image, name, hostname, memory = "512m", accel, kernel;
  double cpus = 2;
  std::string pull = "missing";
  std::optional<std::string> entrypoint;
  PullFlags pull_flags;
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
Status parse_user(const std::string& user, runtime::RunSpec& spec) {
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

// The notice that says we fell back to software emulation, once per state
// root so it does not clutter every run.
void notice_accel(const vmm::AccelChoice& choice, const runtime::RunSpec& spec) {
  if (choice.accel != vmm::Accel::kTcg || choice.reason == "requested") return;
  std::string marker = spec.root + "/.tcg-notice";
  if (!spec.debug && ::access(marker.c_str(), F_OK) == 0) return;
  log::warn("KVM unusable (" + choice.reason +
            "); using TCG software emulation (slower). --accel chooses explicitly.");
  if (sys::make_dirs(spec.root, 0700).ok()) (void)sys::write_file_atomic(marker, "");
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

// Resolves IMAGE (pulling it as --pull says) and fills the spec from its
// config the way Docker does: Entrypoint + (CMD args or the image's Cmd),
// Env under -e, WorkingDir unless -w, User unless -u.
Status apply_image(const RunFlags& f, const std::string& name, std::vector<std::string> args,
                   runtime::RunSpec& spec) {
  VESSEL_ASSIGN_OR_RETURN(image::Reference ref, image::parse_reference(name));
  VESSEL_ASSIGN_OR_RETURN(images::ImageStore store, images::ImageStore::open(spec.root));
  VESSEL_ASSIGN_OR_RETURN(std::optional<images::ImageRecord> found, store.find(ref));
  if (!found && f.pull != "always") {
    VESSEL_ASSIGN_OR_RETURN(found, load_embedded(store, ref));
  }
  if (f.pull == "always" || (!found && f.pull == "missing")) {
    VESSEL_ASSIGN_OR_RETURN(images::ImageRecord pulled, pull_image(store, ref, f.pull_flags));
    found = std::move(pulled);
  }
  if (!found)
    return Error(ErrorCode::kNotFound,
                 "image '" + ref.familiar() + "' is not present locally (and --pull is never)");
  VESSEL_ASSIGN_OR_RETURN(image::ImageConfig config, store.config(*found));
  VESSEL_ASSIGN_OR_RETURN(spec.root_image, store.snapshot(*found));

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
  return ok_status();
}

int run(const RunFlags& f, const GlobalOptions& g) {
  runtime::RunSpec spec;
  spec.root = runtime::resolve_root(g.root);
  spec.debug = g.debug;
  if (!f.rootfs.empty() && !f.rootfs_image.empty()) {
    print_error("run: give only one of --rootfs DIR and --rootfs-image FILE");
    return kExitUsage;
  }
  bool from_image = f.rootfs.empty() && f.rootfs_image.empty();
  spec.rootfs = f.rootfs;
  spec.root_image = f.rootfs_image;
  spec.argv = f.command;
  auto env = collect_env(f);
  if (!env.ok()) {
    print_error("run: " + env.error().to_string());
    return kExitUsage;
  }
  spec.env = std::move(*env);
  if (!f.workdir.empty()) spec.workdir = f.workdir;
  if (auto s = parse_user(f.user, spec); !s.ok()) {
    print_error("run: " + s.error().to_string());
    return kExitUsage;
  }
  spec.tty = f.tty;
  spec.interactive = f.interactive;
  spec.hostname = f.hostname;
  spec.name = f.name;
  spec.read_only = f.read_only;
  if (!(f.cpus > 0) || f.cpus > 255) {
    print_error("run: invalid --cpus " + std::to_string(f.cpus) + " (expected 0 < cpus <= 255)");
    return kExitUsage;
  }
  spec.cpus = static_cast<unsigned>(std::ceil(f.cpus));  // vCPUs are whole
  auto mem = parse_size(f.memory);
  if (!mem) {
    print_error("run: invalid --memory '" + f.memory + "' (expected e.g. 512m or 1g)");
    return kExitUsage;
  }
  spec.memory_bytes = *mem;
  std::string accel = f.accel;
  if (accel.empty()) {
    const char* e = ::getenv("VESSEL_ACCEL");
    accel = e ? e : "auto";
  }
  auto a = vmm::parse_accel(accel);
  if (!a.ok()) {
    print_error("run: " + a.error().to_string());
    return kExitUsage;
  }
  spec.accel = *a;
  if (!f.kernel.empty()) spec.kernel = f.kernel;

  if (from_image) {
    std::vector<std::string> args(f.command.begin() + 1, f.command.end());
    if (auto st = apply_image(f, f.command[0], std::move(args), spec); !st.ok()) {
      print_error("run: " + st.error().to_string());
      return kExitUsage;
    }
  }
  auto outcome = runtime::run_container(std::move(spec), notice_accel);
  if (!outcome.ok()) {
    print_error("run: " + outcome.error().to_string());
    return kExitUsage;
  }
  // The guest's message already says why ("executable file not found").
  if (outcome->exec_error) print_error("run: " + outcome->exec_error->message());
  return outcome->exit_code;
}

}  // namespace

Runner add_run(CLI::App& app, const GlobalOptions& global) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* cmd = app.add_subcommand("run", "Run a command in a new container (its own VM)");
  cmd->set_help_flag("--help", "Print this help");  // -h is --hostname, as in Docker
  // Everything after the first non-flag argument is the command and its args.
  // (fallthrough would hand the command to the parent, so the global flags
  // are repeated here instead.)
  cmd->prefix_command();
  cmd->fallthrough(false);
  cmd->add_option("--rootfs", flags->rootfs, "Host directory to use as the root filesystem");
  cmd->add_option("--rootfs-image", flags->rootfs_image,
                  "ext4 image to use read-only as the root, with a fresh writable layer on top");
  cmd->add_flag("--rm", flags->rm, "Remove the container when it exits");
  cmd->add_option("--pull", flags->pull, "Pull the image: missing (default), always or never")
      ->check(CLI::IsMember({"missing", "always", "never"}));
  cmd->add_option("--entrypoint", flags->entrypoint, "Override the image's Entrypoint");
  cmd->add_option("--platform", flags->pull_flags.platform, "Platform to pull (os/arch[/variant])");
  cmd->add_option("--scheme", flags->pull_flags.scheme, "Registry scheme: https, http or auto")
      ->check(CLI::IsMember({"http", "https", "auto"}));
  cmd->add_flag("-i,--interactive", flags->interactive, "Keep stdin open and forward it");
  cmd->add_flag("-t,--tty", flags->tty, "Allocate a pseudo-terminal");
  cmd->add_option("-e,--env", flags->env, "Set an environment variable (KEY=VALUE or KEY)")
      ->allow_extra_args(false);
  cmd->add_option("--env-file", flags->env_files, "Read environment variables from a file")
      ->allow_extra_args(false);
  cmd->add_option("-w,--workdir", flags->workdir, "Working directory inside the container");
  cmd->add_option("-u,--user", flags->user, "User to run as: user[:group], names or numbers");
  cmd->add_option("--cpus", flags->cpus, "Virtual CPUs (default 2)");
  cmd->add_option("-m,--memory", flags->memory, "Memory, e.g. 256m or 1g (default 512m)");
  cmd->add_option("--name", flags->name, "Name of the container");
  cmd->add_option("-h,--hostname", flags->hostname, "Hostname inside the container");
  cmd->add_flag("--read-only", flags->read_only, "Mount the root filesystem read-only");
  cmd->add_option("--accel", flags->accel,
                  "Accelerator: kvm, tcg or auto (default: $VESSEL_ACCEL or auto)");
  cmd->add_option("--kernel", flags->kernel, "Guest kernel to boot instead of the built one");
  cmd->footer(
      "Usage: vessel run [OPTIONS] IMAGE [COMMAND [ARG...]]\n"
      "       vessel run [OPTIONS] (--rootfs DIR | --rootfs-image FILE) COMMAND [ARG...]");
  auto* mutable_global = const_cast<GlobalOptions*>(&global);
  cmd->add_option("--root", mutable_global->root, "State root");
  cmd->add_flag("--debug", mutable_global->debug, "Boot log to stderr");
  return [cmd, flags, &global] {
    flags->command = cmd->remaining();
    if (flags->command.empty()) {
      print_error(
          "run: no image or command given (usage: vessel run [OPTIONS] IMAGE [COMMAND...])");
      return kExitUsage;
    }
    return run(*flags, global);
  };
}

}  // namespace vessel::cli
