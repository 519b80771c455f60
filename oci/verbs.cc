// The verbs, as runc spells them (runc 1.1's flags; containerd's shim,
// conmon and CRI-O use these).
#include "verbs.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/strings.h"
#include "oci/runtime.h"
#include "oci/spec.h"
#include "runtime/config.h"
#include "sys/fs.h"

namespace vessel::ocirt {
namespace {

// Opens the runtime root or reports why not.
std::unique_ptr<oci::Runtime> open_root(const Global& g, const std::string& verb) {
  auto rt = oci::Runtime::open(g.root);
  if (!rt.ok()) {
    report_error(verb + ": " + rt.error().to_string());
    return nullptr;
  }
  return std::move(*rt);
}

int fail(const std::string& verb, const std::string& id, const Error& e) {
  report_error(verb + " '" + id + "': " + e.to_string());
  return 1;
}

}  // namespace

void add_verbs(CLI::App& app, const Global& g, std::vector<std::pair<CLI::App*, Verb>>& out) {
  auto add = [&](const char* name, const char* help) {
    CLI::App* c = app.add_subcommand(name, help);
    c->fallthrough();
    return c;
  };

  {  // create
    struct F {
      std::string id, bundle = ".", pid_file, console_socket;
      bool no_pivot = false, no_new_keyring = false;
      int preserve_fds = 0;
    };
    auto f = std::make_shared<F>();
    CLI::App* c = add("create", "Create a container (its VM booted, its process held)");
    c->add_option("id", f->id, "Container id")->required();
    c->add_option("-b,--bundle", f->bundle, "Bundle directory (default: .)");
    c->add_option("--pid-file", f->pid_file, "Write the container's pid here");
    c->add_option("--console-socket", f->console_socket,
                  "Unix socket that receives the pty master (process.terminal)");
    c->add_flag("--no-pivot", f->no_pivot, "Accepted (the guest always pivots)");
    c->add_flag("--no-new-keyring", f->no_new_keyring, "Accepted (the VM has its own keyring)");
    c->add_option("--preserve-fds", f->preserve_fds, "Only 0 is supported");
    out.push_back({c, [f, &g] {
                     if (f->preserve_fds != 0) {
                       report_error("create '" + f->id +
                                    "': --preserve-fds is not supported (file descriptors cannot "
                                    "cross into the VM)");
                       return 1;
                     }
                     auto rt = open_root(g, "create");
                     if (!rt) return 1;
                     oci::CreateOptions o{f->bundle, f->pid_file, f->console_socket, g.debug};
                     auto s = rt->create(f->id, o);
                     return s.ok() ? 0 : fail("create", f->id, s.error());
                   }});
  }
  {  // start
    auto id = std::make_shared<std::string>();
    CLI::App* c = add("start", "Start a created container's process");
    c->add_option("id", *id, "Container id")->required();
    out.push_back({c, [id, &g] {
                     auto rt = open_root(g, "start");
                     if (!rt) return 1;
                     auto s = rt->start(*id);
                     return s.ok() ? 0 : fail("start", *id, s.error());
                   }});
  }
  {  // state
    auto id = std::make_shared<std::string>();
    CLI::App* c = add("state", "Print a container's state (runtime-spec JSON)");
    c->add_option("id", *id, "Container id")->required();
    out.push_back({c, [id, &g] {
                     auto rt = open_root(g, "state");
                     if (!rt) return 1;
                     auto s = rt->state(*id);
                     if (!s.ok()) return fail("state", *id, s.error());
                     std::cout << oci::to_json(*s) << std::endl;
                     return 0;
                   }});
  }
  {  // kill
    struct F {
      std::string id, signal = "TERM";
      bool all = false;
    };
    auto f = std::make_shared<F>();
    CLI::App* c = add("kill", "Send a signal to a container's process (default TERM)");
    c->add_option("id", f->id, "Container id")->required();
    c->add_option("signal", f->signal, "Signal name or number");
    c->add_flag("-a,--all", f->all, "All processes (every one is in the VM)");
    out.push_back({c, [f, &g] {
                     auto sig = runtime::parse_signal(f->signal);
                     if (!sig.ok()) return fail("kill", f->id, sig.error());
                     auto rt = open_root(g, "kill");
                     if (!rt) return 1;
                     auto s = rt->kill(f->id, *sig, f->all);
                     return s.ok() ? 0 : fail("kill", f->id, s.error());
                   }});
  }
  {  // delete
    struct F {
      std::string id;
      bool force = false;
    };
    auto f = std::make_shared<F>();
    CLI::App* c = add("delete", "Remove a container and all its state");
    c->add_option("id", f->id, "Container id")->required();
    c->add_flag("-f,--force", f->force, "Kill it first if it is not stopped");
    out.push_back({c, [f, &g] {
                     auto rt = open_root(g, "delete");
                     if (!rt) return 1;
                     auto s = rt->remove(f->id, f->force);
                     return s.ok() ? 0 : fail("delete", f->id, s.error());
                   }});
  }
  {  // list
    struct F {
      std::string format = "table";
      bool quiet = false;
    };
    auto f = std::make_shared<F>();
    CLI::App* c = add("list", "List containers");
    c->add_option("-f,--format", f->format, "table or json")
        ->check(CLI::IsMember({"table", "json"}));
    c->add_flag("-q,--quiet", f->quiet, "Ids only");
    out.push_back({c, [f, &g] {
                     auto rt = open_root(g, "list");
                     if (!rt) return 1;
                     auto l = rt->list();
                     if (!l.ok()) return fail("list", g.root, l.error());
                     if (f->format == "json") {
                       auto j = nlohmann::json::array();
                       for (const auto& s : *l)
                         j.push_back(nlohmann::json::parse(oci::to_json(s)));
                       std::cout << j.dump() << std::endl;
                       return 0;
                     }
                     if (!f->quiet) std::cout << "ID\tPID\tSTATUS\tBUNDLE\tCREATED\n";
                     for (const auto& s : *l)
                       std::cout << (f->quiet ? s.id
                                              : s.id + "\t" + std::to_string(s.pid) + "\t" +
                                                    s.status + "\t" + s.bundle + "\t" + s.created)
                                 << "\n";
                     return 0;
                   }});
  }
  {  // ps
    struct F {
      std::string id, format = "table";
    };
    auto f = std::make_shared<F>();
    CLI::App* c = add("ps", "Host pids of a container's processes");
    c->add_option("id", f->id, "Container id")->required();
    c->add_option("-f,--format", f->format, "table or json")
        ->check(CLI::IsMember({"table", "json"}));
    c->allow_extras();  // ps(1) options, as runc takes them
    out.push_back({c, [f, &g] {
                     auto rt = open_root(g, "ps");
                     if (!rt) return 1;
                     auto p = rt->pids(f->id);
                     if (!p.ok()) return fail("ps", f->id, p.error());
                     if (f->format == "json") {
                       std::cout << nlohmann::json(*p).dump() << std::endl;
                     } else {
                       std::cout << "PID\n";
                       for (pid_t pid : *p)
                         std::cout << pid << "\n";
                     }
                     return 0;
                   }});
  }
  {  // exec
    struct F {
      std::string id, process, pid_file, console_socket, cwd;
      std::vector<std::string> command, env;
      bool detach = false, tty = false;
      std::string user;
    };
    auto f = std::make_shared<F>();
    CLI::App* c = add("exec", "Run another process in a running container");
    // As runc: options come before the id; everything after it is the
    // command, options included (`exec ID sh -c 'echo hi'`).
    c->positionals_at_end();
    c->add_option("id", f->id, "Container id")->required();
    c->add_option("command", f->command, "Command (without --process)");
    c->add_option("-p,--process", f->process, "runtime-spec process JSON file");
    c->add_flag("-d,--detach", f->detach, "Return once it runs (its pid is --pid-file's)");
    c->add_option("--pid-file", f->pid_file, "Write the process's pid here");
    c->add_option("--console-socket", f->console_socket, "Receives the pty master");
    c->add_flag("-t,--tty", f->tty, "Give it a terminal");
    c->add_option("--cwd", f->cwd, "Working directory (without --process)");
    c->add_option("-e,--env", f->env, "KEY=VALUE (without --process)");
    c->add_option("-u,--user", f->user, "UID[:GID] (without --process)");
    out.push_back({c, [f, &g] {
                     auto rt = open_root(g, "exec");
                     if (!rt) return 1;
                     oci::ExecOptions o;
                     o.detach = f->detach;
                     o.pid_file = f->pid_file;
                     o.console_socket = f->console_socket;
                     if (f->tty) o.tty = true;
                     std::string made;
                     if (f->process.empty()) {
                       // runc's inline form: the process is the flags.
                       if (f->command.empty()) {
                         report_error("exec '" + f->id + "': give --process FILE or a command");
                         return 1;
                       }
                       nlohmann::json p = {{"args", f->command},
                                           {"cwd", f->cwd.empty() ? "/" : f->cwd},
                                           {"terminal", f->tty},
                                           {"env", f->env}};
                       if (!f->user.empty()) {
                         auto colon = f->user.find(':');
                         try {
                           p["user"]["uid"] = std::stoul(f->user.substr(0, colon));
                           p["user"]["gid"] = colon == std::string::npos
                                                  ? 0ul
                                                  : std::stoul(f->user.substr(colon + 1));
                         } catch (const std::exception&) {
                           report_error("exec '" + f->id + "': invalid --user '" + f->user +
                                        "' (expected UID[:GID])");
                           return 1;
                         }
                       }
                       auto dir = sys::make_temp_dir(g.root, ".exec-");
                       if (!dir.ok()) return fail("exec", f->id, dir.error());
                       made = *dir;
                       o.process_file = made + "/process.json";
                       if (auto s = sys::write_file_atomic(o.process_file, p.dump()); !s.ok())
                         return fail("exec", f->id, s.error());
                     } else {
                       o.process_file = f->process;
                     }
                     auto code = rt->exec(f->id, o);
                     if (!made.empty()) (void)sys::remove_tree(made);
                     if (!code.ok()) return fail("exec", f->id, code.error());
                     return *code;
                   }});
  }
  for (const char* verb : {"pause", "resume"}) {
    auto id = std::make_shared<std::string>();
    CLI::App* c = add(verb, std::string(verb) == "pause" ? "Freeze a container's VM"
                                                         : "Thaw a paused container's VM");
    c->add_option("id", *id, "Container id")->required();
    bool pause = std::string(verb) == "pause";
    std::string name = verb;
    out.push_back({c, [id, &g, pause, name] {
                     auto rt = open_root(g, name);
                     if (!rt) return 1;
                     auto s = rt->pause(*id, pause);
                     return s.ok() ? 0 : fail(name, *id, s.error());
                   }});
  }
  {  // update
    struct Flags {
      std::string id, resources, memory;
      std::optional<int64_t> cpu_quota, cpu_period, pids_limit;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* c = add("update", "Change a running container's memory, CPU quota or pids limit");
    c->add_option("id", f->id, "Container id")->required();
    c->add_option("-r,--resources", f->resources,
                  "A JSON file of linux.resources (\"-\": standard input)");
    c->add_option("--memory", f->memory, "Memory limit, bytes or with a unit (100m, 1g); -1: none");
    c->add_option("--cpu-quota", f->cpu_quota, "CPU quota per period, microseconds; -1: none");
    c->add_option("--cpu-period", f->cpu_period, "CPU period, microseconds");
    c->add_option("--pids-limit", f->pids_limit, "Maximum number of processes; -1: none");
    out.push_back(
        {c, [f, &g] {
           oci::ResourceUpdate r;
           if (!f->resources.empty()) {
             // containerd's shim writes the JSON to our stdin ("-").
             auto text = sys::read_file(f->resources == "-" ? "/dev/stdin" : f->resources, 1 << 20);
             if (!text.ok()) return fail("update", f->id, text.error());
             std::vector<std::string> ignored;
             auto parsed = oci::parse_resources(*text, ignored);
             if (!parsed.ok()) return fail("update", f->id, parsed.error());
             for (const auto& i : ignored)
               log::debug("ignored: " + i);
             r = *parsed;
           }
           // Flags win over the file, as in runc.
           if (!f->memory.empty()) {
             auto bytes = f->memory == "-1" ? std::optional<uint64_t>(0) : parse_size(f->memory);
             if (!bytes || *bytes > static_cast<uint64_t>(INT64_MAX))
               return fail(
                   "update", f->id,
                   Error(ErrorCode::kInvalidArgument, "invalid --memory '" + f->memory + "'"));
             r.memory_bytes = static_cast<int64_t>(*bytes);
           }
           if (f->cpu_quota) r.cpu_quota_usec = *f->cpu_quota;
           if (f->cpu_period) r.cpu_period_usec = *f->cpu_period;
           if (f->pids_limit) r.pids = *f->pids_limit;
           auto rt = open_root(g, "update");
           if (!rt) return 1;
           auto s = rt->update(f->id, r);
           return s.ok() ? 0 : fail("update", f->id, s.error());
         }});
  }
  {  // features
    CLI::App* c = add("features", "Print what this runtime supports (JSON)");
    out.push_back({c, [] {
                     std::cout << oci::features_json() << std::endl;
                     return 0;
                   }});
  }
  {  // spec
    auto bundle = std::make_shared<std::string>(".");
    CLI::App* c = add("spec", "Write a default config.json in the bundle directory");
    c->add_option("-b,--bundle", *bundle, "Bundle directory (default: .)");
    bool rootless = false;
    c->add_flag("--rootless", rootless, "Not supported");
    out.push_back({c, [bundle] {
                     std::string path = *bundle + "/config.json";
                     if (::access(path.c_str(), F_OK) == 0) {
                       report_error("spec: '" + path + "' already exists");
                       return 1;
                     }
                     auto s = sys::write_file_atomic(path, oci::default_spec());
                     if (!s.ok()) {
                       report_error("spec: " + s.error().to_string());
                       return 1;
                     }
                     return 0;
                   }});
  }
}

}  // namespace vessel::ocirt
