// The container verbs besides run/create: start, stop, kill, restart, rm,
// ls, inspect, logs, wait, exec, attach.
#include <signal.h>
#include <unistd.h>

#include <poll.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/stats.h"
#include "base/log.h"
#include "base/strings.h"
#include "commands.h"
#include "containers/views.h"
#include "monitor/client.h"
#include "networks/views.h"
#include "runtime/config.h"
#include "runtime/container_vm.h"
#include "runtime/log_file.h"
#include "runtime/paths.h"
#include "runtime/runtime_dir.h"
#include "sys/fs.h"
#include "sys/terminal.h"

namespace vessel::cli {
namespace {

using containers::ContainerRecord;
using containers::Containers;
using nlohmann::json;
using state::RunState;

struct Flags {
  std::vector<std::string> refs;
  bool all = false, quiet = false, force = false, follow = false, timestamps = false;
  bool boot = false, attach = false, interactive = false, tty = false, detach = false;
  bool volumes = false, no_stream = false;
  std::string format = "table", signal, tail = "all", workdir, user;
  std::vector<std::string> env, command;
  int timeout = -1;
};

Result<std::unique_ptr<Containers>> open_containers(const GlobalOptions& g) {
  return Containers::open(runtime::resolve_root(g.root));
}

// Runs `fn` for each container named; errors print and make the exit code 1
// but do not stop the others (Docker's behaviour for rm, stop, kill...).
int for_each(
    const GlobalOptions& g, const std::string& verb, const std::vector<std::string>& refs,
    const std::function<Status(Containers&, const ContainerRecord&, const std::string&)>& fn) {
  auto cs = open_containers(g);
  if (!cs.ok()) {
    print_error(verb + ": " + cs.error().to_string());
    return kExitFailure;
  }
  int rc = kExitOk;
  for (const auto& ref : refs) {
    auto r = (*cs)->find(ref);
    Status s = r.ok() ? fn(**cs, *r, ref) : Status(r.error());
    if (!s.ok()) {
      print_error(verb + ": " + s.error().to_string());
      rc = kExitFailure;
    }
  }
  return rc;
}

// What the container's monitor bound for its published ports ("" when it
// is not running).
std::string ports_file(const std::string& root, const ContainerRecord& r) {
  auto content = sys::read_file(runtime::runtime_dir_of(root, r.id) + "/ports.json", 1 << 20);
  return content.ok() ? *content : "";
}

int list(const Flags& f, const GlobalOptions& g) {
  auto cs = open_containers(g);
  if (!cs.ok()) {
    print_error("ls: " + cs.error().to_string());
    return kExitFailure;
  }
  auto all = (*cs)->list();
  if (!all.ok()) {
    print_error("ls: " + all.error().to_string());
    return kExitFailure;
  }
  std::vector<ContainerRecord> shown;
  for (auto& r : *all)
    if (f.all || r.state.status == RunState::kRunning || r.state.status == RunState::kRestarting)
      shown.push_back(r);
  if (f.quiet) {
    for (const auto& r : shown)
      std::cout << r.id.substr(0, 12) << "\n";
    return kExitOk;
  }
  int64_t now = state::now_ns();
  if (f.format == "json") {
    json out = json::array();
    for (const auto& r : shown)
      out.push_back(containers::ls_view(**cs, r, now));
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("%-12s   %-24s   %-22s   %-16s   %-34s   %-15s   %-24s   %s\n", "CONTAINER ID",
              "IMAGE", "COMMAND", "CREATED", "STATUS", "ADDRESS", "PORTS", "NAMES");
  for (const auto& r : shown) {
    auto c = runtime::config_from_json(r.config);
    std::string cmd = c.ok() ? "\"" + containers::command_line(*c) + "\"" : "";
    if (cmd.size() > 22) cmd = cmd.substr(0, 20) + "…\"";
    std::string created = containers::describe_age(r.created, now) + " ago";
    json row = containers::ls_view(**cs, r, now);
    std::string addrs = row["IPAddress"], ports = row["Ports"];
    std::printf("%-12s   %-24s   %-22s   %-16s   %-34s   %-15s   %-24s   %s\n",
                r.id.substr(0, 12).c_str(), (r.image.empty() ? "(rootfs)" : r.image).c_str(),
                cmd.c_str(), created.c_str(), containers::describe_status(r, now).c_str(),
                addrs.c_str(), ports.c_str(), r.name.c_str());
  }
  return kExitOk;
}

int start(const Flags& f, const GlobalOptions& g) {
  if (f.attach && f.refs.size() > 1) {
    print_error("start: you cannot start and attach multiple containers at once");
    return kExitFailure;
  }
  if (f.attach) {
    auto cs = open_containers(g);
    if (!cs.ok()) {
      print_error("start: " + cs.error().to_string());
      return kExitFailure;
    }
    auto r = (*cs)->find(f.refs[0]);
    if (!r.ok()) {
      print_error("start: " + r.error().to_string());
      return kExitFailure;
    }
    auto launch = (*cs)->start(*r, true, g.debug);
    if (!launch.ok()) {
      print_error("start: " + launch.error().to_string());
      return kExitFailure;
    }
    auto c = runtime::config_from_json(r->config);
    bool tty = c.ok() && c->tty;
    return attach_container(**cs, *r, tty, f.interactive, "start");
  }
  return for_each(g, "start", f.refs,
                  [&](Containers& cs, const ContainerRecord& r, const std::string& ref) -> Status {
                    VESSEL_ASSIGN_OR_RETURN(auto launch, cs.start(r, false, g.debug));
                    if (launch) {
                      VESSEL_ASSIGN_OR_RETURN(auto report, monitor::wait_started(*launch));
                      if (!report.ok) return Error(ErrorCode::kInternal, report.message);
                    }
                    std::cout << ref << std::endl;
                    return ok_status();
                  });
}

int stop_or_restart(const Flags& f, const GlobalOptions& g, bool restart) {
  int sig = 0;
  if (!f.signal.empty()) {
    auto s = runtime::parse_signal(f.signal);
    if (!s.ok()) {
      print_error(std::string(restart ? "restart: " : "stop: ") + s.error().to_string());
      return kExitFailure;
    }
    sig = *s;
  }
  return for_each(g, restart ? "restart" : "stop", f.refs,
                  [&](Containers& cs, const ContainerRecord& r, const std::string& ref) -> Status {
                    VESSEL_TRY(cs.stop(r, sig, f.timeout));
                    if (restart) {
                      VESSEL_ASSIGN_OR_RETURN(ContainerRecord cur, cs.find(r.id));
                      VESSEL_ASSIGN_OR_RETURN(auto launch, cs.start(cur, false, g.debug));
                      if (launch) {
                        VESSEL_ASSIGN_OR_RETURN(auto report, monitor::wait_started(*launch));
                        if (!report.ok) return Error(ErrorCode::kInternal, report.message);
                      }
                    }
                    std::cout << ref << std::endl;
                    return ok_status();
                  });
}

int kill_containers(const Flags& f, const GlobalOptions& g) {
  auto sig = runtime::parse_signal(f.signal.empty() ? "KILL" : f.signal);
  if (!sig.ok()) {
    print_error("kill: " + sig.error().to_string());
    return kExitFailure;
  }
  return for_each(g, "kill", f.refs,
                  [&](Containers& cs, const ContainerRecord& r, const std::string& ref) -> Status {
                    VESSEL_TRY(cs.kill(r, *sig));
                    std::cout << ref << std::endl;
                    return ok_status();
                  });
}

int remove(const Flags& f, const GlobalOptions& g) {
  std::vector<std::string> refs = f.refs;
  if (f.all) {
    auto cs = open_containers(g);
    if (!cs.ok()) {
      print_error("rm: " + cs.error().to_string());
      return kExitFailure;
    }
    auto all = (*cs)->list();
    if (all.ok())
      for (const auto& r : *all)
        refs.push_back(r.id);
  }
  if (refs.empty() && !f.all) {
    print_error("rm: give at least one container (or --all)");
    return kExitFailure;
  }
  return for_each(g, "rm", refs,
                  [&](Containers& cs, const ContainerRecord& r, const std::string& ref) -> Status {
                    VESSEL_TRY(cs.remove(r, f.force, f.volumes));
                    std::cout << (f.all ? r.id.substr(0, 12) : ref) << std::endl;
                    return ok_status();
                  });
}

// prune: every stopped container (Docker's container prune).
int prune(const GlobalOptions& g) {
  auto cs = open_containers(g);
  if (!cs.ok()) {
    print_error("prune: " + cs.error().to_string());
    return kExitFailure;
  }
  auto all = (*cs)->list();
  if (!all.ok()) {
    print_error("prune: " + all.error().to_string());
    return kExitFailure;
  }
  int rc = kExitOk;
  bool header = false;
  for (const auto& r : *all) {
    if (r.state.status != RunState::kExited && r.state.status != RunState::kCreated &&
        r.state.status != RunState::kRemoving)
      continue;
    if (auto s = (*cs)->remove(r, false); !s.ok()) {
      if (s.error().code() == ErrorCode::kFailedPrecondition) continue;  // started meanwhile
      print_error("prune: " + s.error().to_string());
      rc = kExitFailure;
      continue;
    }
    if (!header) std::cout << "Deleted Containers:\n";
    header = true;
    std::cout << r.id << "\n";
  }
  return rc;
}

int inspect(const Flags& f, const GlobalOptions& g) {
  json out = json::array();
  int rc = for_each(g, "inspect", f.refs,
                    [&](Containers& cs, const ContainerRecord& r, const std::string&) -> Status {
                      out.push_back(containers::inspect_view(cs, r));
                      return ok_status();
                    });
  std::cout << out.dump(4) << "\n";
  return rc;
}

// vessel port CONTAINER [PORT[/PROTO]]: the published ports as bound now.
int port(const Flags& f, const GlobalOptions& g) {
  if (f.refs.empty() || f.refs.size() > 2) {
    print_error("port: give a container and optionally a port (e.g. 80/tcp)");
    return kExitUsage;
  }
  std::string filter = f.refs.size() == 2 ? f.refs[1] : "";
  if (!filter.empty() && filter.find('/') == std::string::npos) filter += "/tcp";
  bool found = false;
  int rc = for_each(g, "port", {f.refs[0]},
                    [&](Containers& cs, const ContainerRecord& r, const std::string&) -> Status {
                      for (const auto& line : networks::port_lines(ports_file(cs.root(), r))) {
                        if (!filter.empty() && line.rfind(filter + " ", 0) != 0) continue;
                        std::cout << (filter.empty() ? line : line.substr(line.find("-> ") + 3))
                                  << "\n";
                        found = true;
                      }
                      if (!filter.empty() && !found)
                        return Error(ErrorCode::kNotFound,
                                     "no public port '" + filter + "' published for " + r.name);
                      return ok_status();
                    });
  return rc;
}

void print_record(const runtime::LogRecord& r, bool timestamps) {
  std::string line = (timestamps ? runtime::format_timestamp(r.time_ns) + " " : "") + r.text +
                     (r.partial ? "" : "\n");
  FILE* out = r.stream == runtime::LogStream::kStdout ? stdout : stderr;
  std::fwrite(line.data(), 1, line.size(), out);
  std::fflush(out);
}

int logs(const Flags& f, const GlobalOptions& g) {
  return for_each(
      g, "logs", f.refs,
      [&](Containers& cs, const ContainerRecord& r, const std::string&) -> Status {
        std::string dir = runtime::container_dir(cs.root(), r.id);
        if (f.boot) {
          VESSEL_ASSIGN_OR_RETURN(std::string boot, sys::read_file(dir + "/boot.log", 64 << 20));
          std::cout << boot << std::flush;
          return ok_status();
        }
        std::string path = dir + "/container.log";
        // Where the file stands now: following starts after what is printed.
        uint64_t offset = 0;
        if (auto cur = sys::read_file(path, 1ull << 31); cur.ok())
          offset = cur->rfind('\n') == std::string::npos ? 0 : cur->rfind('\n') + 1;
        VESSEL_ASSIGN_OR_RETURN(auto records, runtime::read_log(path));
        size_t from = 0;
        if (f.tail != "all") {
          auto n = parse_u64(f.tail);
          if (!n) return Error(ErrorCode::kInvalidArgument, "invalid --tail '" + f.tail + "'");
          from = records.size() > *n ? records.size() - *n : 0;
        }
        for (size_t i = from; i < records.size(); ++i)
          print_record(records[i], f.timestamps);
        if (!f.follow) return ok_status();
        std::string root = cs.root(), id = r.id;
        return runtime::follow_log(
            path, offset, [&](const runtime::LogRecord& rec) { print_record(rec, f.timestamps); },
            [&] { return !runtime::running_owner(root, id); });
      });
}

int wait_containers(const Flags& f, const GlobalOptions& g) {
  return for_each(g, "wait", f.refs,
                  [&](Containers& cs, const ContainerRecord& r, const std::string&) -> Status {
                    VESSEL_TRY(cs.wait_gone(r, std::chrono::hours(24 * 365)));
                    VESSEL_ASSIGN_OR_RETURN(ContainerRecord done, cs.find(r.id));
                    std::cout << done.state.exit_code << std::endl;
                    return ok_status();
                  });
}

int exec(const Flags& f, const GlobalOptions& g) {
  if (f.command.size() < 2) {
    print_error("exec: usage: vessel exec [OPTIONS] CONTAINER COMMAND [ARG...]");
    return kExitFailure;
  }
  auto cs = open_containers(g);
  if (!cs.ok()) {
    print_error("exec: " + cs.error().to_string());
    return kExitFailure;
  }
  auto r = (*cs)->find(f.command[0]);
  if (!r.ok()) {
    print_error("exec: " + r.error().to_string());
    return kExitFailure;
  }
  auto c = runtime::config_from_json(r->config);
  if (!c.ok()) {
    print_error("exec: " + c.error().to_string());
    return kExitFailure;
  }
  protocol::Spawn spawn = runtime::main_spawn(*c, 0, 0);
  spawn.argv.assign(f.command.begin() + 1, f.command.end());
  apply_env_flags(spawn.env, f.env);
  if (!f.workdir.empty()) spawn.cwd = f.workdir;
  if (!f.user.empty()) {
    spawn.user = f.user;
    spawn.uid = spawn.gid = 0;
    spawn.groups.clear();
  }
  return exec_process(**cs, *r, std::move(spawn), f.tty, f.interactive, f.detach, "exec");
}

}  // namespace

std::string iso_time(int64_t ns) {
  return containers::iso_time(ns);
}

void apply_env_flags(std::vector<std::string>& env, const std::vector<std::string>& flags) {
  for (const auto& e : flags) {
    std::string item = e;
    if (item.find('=') == std::string::npos) {
      const char* v = ::getenv(item.c_str());
      if (!v) continue;
      item += std::string("=") + v;
    }
    std::string key = item.substr(0, item.find('='));
    std::erase_if(env, [&](const std::string& x) { return x.substr(0, x.find('=')) == key; });
    env.push_back(item);
  }
}

int exec_process(containers::Containers& cs, const containers::ContainerRecord& r,
                 protocol::Spawn spawn, bool tty, bool interactive, bool detach,
                 const std::string& verb) {
  auto ch = cs.connect(r);
  if (!ch.ok()) {
    print_error(verb + ": " + ch.error().to_string());
    return kExitFailure;
  }
  spawn.tty = tty;
  spawn.stdin_open = interactive && !detach;
  if (tty) {
    auto ws = sys::window_size(STDIN_FILENO);
    if (!ws) ws = sys::window_size(STDOUT_FILENO);
    if (ws) {
      spawn.rows = ws->rows;
      spawn.cols = ws->cols;
    }
  }
  auto signals = sys::SignalGuard::install({SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH});
  if (!signals.ok()) {
    print_error(verb + ": " + signals.error().to_string());
    return kExitFailure;
  }
  constexpr uint32_t kStream = 2;
  auto sent = ch->send_message(monitor::type_code(protocol::MsgType::kSpawn), kStream, spawn);
  auto fr = sent.ok()
                ? monitor::await_frame(*ch, monitor::type_code(protocol::MsgType::kSpawnResult),
                                       kStream, std::chrono::seconds(60))
                : Result<protocol::FrameReader::Frame>(sent.error());
  protocol::Reply reply;
  if (!fr.ok() || !protocol::decode(fr->payload, reply)) {
    print_error(verb + ": " + (fr.ok() ? std::string("malformed reply") : fr.error().to_string()));
    return kExitFailure;
  }
  if (reply.errnum != 0) {
    print_error(verb + ": " + reply.message);
    int code = runtime::exec_failure_code(reply.errnum);
    return code ? code : kExitFailure;
  }
  if (detach) return kExitOk;
  std::optional<sys::RawTerminal> raw;
  if (tty && interactive && ::isatty(STDIN_FILENO)) {
    auto t = sys::RawTerminal::enter(STDIN_FILENO);
    if (t.ok()) raw.emplace(std::move(*t));
  }
  auto exit = monitor::pump(*ch, kStream, {tty, interactive, true}, *signals);
  raw.reset();
  if (!exit.ok()) {
    print_error(verb + ": " + exit.error().to_string());
    return kExitFailure;
  }
  return exit->signal ? 128 + exit->signal : exit->code;
}

namespace {

std::string human_bytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.2f%s", v, units[u]);
  return buf;
}

// One resource sample from a running container's guest.
Result<protocol::Stats> sample(Containers& cs, const ContainerRecord& r) {
  return cs.stats(r);
}

int stats(const Flags& f, const GlobalOptions& g) {
  auto cs = open_containers(g);
  if (!cs.ok()) {
    print_error("stats: " + cs.error().to_string());
    return kExitFailure;
  }
  std::vector<ContainerRecord> targets;
  if (f.refs.empty()) {
    auto all = (*cs)->list();
    if (!all.ok()) {
      print_error("stats: " + all.error().to_string());
      return kExitFailure;
    }
    for (auto& r : *all)
      if (r.state.status == RunState::kRunning) targets.push_back(r);
  } else {
    for (const auto& ref : f.refs) {
      auto r = (*cs)->find(ref);
      if (!r.ok()) {
        print_error("stats: " + r.error().to_string());
        return kExitFailure;
      }
      targets.push_back(*r);
    }
  }
  std::map<std::string, protocol::Stats> previous;
  for (const auto& r : targets)
    if (auto s = sample(**cs, r); s.ok()) previous[r.id] = *s;
  bool tty = ::isatty(STDOUT_FILENO);
  while (true) {
    // CPU % needs two samples: the first round is a baseline.
    std::this_thread::sleep_for(std::chrono::milliseconds(f.no_stream ? 500 : 1000));
    json out = json::array();
    std::string table;
    char line[512];
    // VM MEM: what the container's VM holds of the host's memory (QEMU's
    // resident set), beside the container's own use inside it.
    std::snprintf(line, sizeof line,
                  "%-12s   %-20s   %-7s   %-21s   %-6s   %-10s   %-19s   %-19s   %s\n",
                  "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "VM MEM",
                  "NET I/O", "BLOCK I/O", "PIDS");
    table += line;
    for (const auto& r : targets) {
      auto s = sample(**cs, r);
      if (!s.ok()) {
        if (!f.refs.empty()) {
          print_error("stats: " + s.error().to_string());
          return kExitFailure;
        }
        continue;  // stopped meanwhile
      }
      std::optional<double> cpu;
      if (auto p = previous.find(r.id); p != previous.end())
        cpu = agent::cpu_percent(p->second, *s);
      previous[r.id] = *s;
      uint64_t mem = agent::memory_usage(*s);
      double mem_pct = agent::memory_percent(*s);
      out.push_back({{"ID", r.id},
                     {"Name", r.name},
                     {"CPUPerc", cpu ? json(*cpu) : json(nullptr)},
                     {"MemUsage", mem},
                     {"MemLimit", s->memory_limit},
                     {"MemPerc", mem_pct},
                     {"VMMemUsage", s->host_vm_rss},
                     {"NetInput", s->net_rx_bytes},
                     {"NetOutput", s->net_tx_bytes},
                     {"BlockInput", s->io_read_bytes},
                     {"BlockOutput", s->io_write_bytes},
                     {"PIDs", s->pids_current}});
      char cpu_text[32];
      if (cpu)
        std::snprintf(cpu_text, sizeof cpu_text, "%.2f%%", *cpu);
      else
        std::snprintf(cpu_text, sizeof cpu_text, "--");
      char mem_pct_text[16];
      std::snprintf(mem_pct_text, sizeof mem_pct_text, "%.2f%%", mem_pct);
      std::snprintf(
          line, sizeof line, "%-12s   %-20s   %-7s   %-21s   %-6s   %-10s   %-19s   %-19s   %llu\n",
          r.id.substr(0, 12).c_str(), r.name.c_str(), cpu_text,
          (human_bytes(mem) + " / " + human_bytes(s->memory_limit)).c_str(), mem_pct_text,
          human_bytes(s->host_vm_rss).c_str(),
          (human_bytes(s->net_rx_bytes) + " / " + human_bytes(s->net_tx_bytes)).c_str(),
          (human_bytes(s->io_read_bytes) + " / " + human_bytes(s->io_write_bytes)).c_str(),
          static_cast<unsigned long long>(s->pids_current));
      table += line;
    }
    if (f.format == "json")
      std::cout << out.dump(f.no_stream ? 2 : -1) << std::endl;
    else
      std::cout << (tty && !f.no_stream ? "\033[2J\033[H" : "") << table << std::flush;
    if (f.no_stream) return kExitOk;
  }
}

int attach(const Flags& f, const GlobalOptions& g) {
  auto cs = open_containers(g);
  if (!cs.ok()) {
    print_error("attach: " + cs.error().to_string());
    return kExitFailure;
  }
  auto r = (*cs)->find(f.refs[0]);
  if (!r.ok()) {
    print_error("attach: " + r.error().to_string());
    return kExitFailure;
  }
  auto c = runtime::config_from_json(r->config);
  if (!runtime::running_owner((*cs)->root(), r->id)) {
    print_error("attach: cannot attach to a stopped container, start it first");
    return kExitFailure;
  }
  return attach_container(**cs, *r, c.ok() && c->tty, c.ok() && c->open_stdin, "attach");
}

}  // namespace

// Attach before the main process starts (run, start -a) or while it runs
// (attach), pump until it exits, then wait for the monitor to finish
// cleaning up, so that when we return nothing of the run (with --rm,
// nothing at all) is left.
int attach_container(containers::Containers& cs, const containers::ContainerRecord& r, bool tty,
                     bool interactive, const std::string& verb) {
  auto signals = sys::SignalGuard::install({SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH});
  if (!signals.ok()) {
    print_error(verb + ": " + signals.error().to_string());
    return kExitUsage;
  }
  auto ch = cs.connect(r);
  if (!ch.ok()) {
    print_error(verb + ": " + ch.error().to_string());
    return kExitUsage;
  }
  auto attach = monitor::encode(monitor::Attach{static_cast<uint8_t>(interactive), 1});
  if (auto s =
          ch->send(monitor::type_code(monitor::ApiType::kAttach), monitor::kMainStream, attach);
      !s.ok()) {
    print_error(verb + ": " + s.error().to_string());
    return kExitUsage;
  }
  // The window size before the start too: the monitor spawns the main
  // process with it (else a quick `stty size` could see 0 0, as it did).
  auto send_size = [&] {
    auto ws = sys::window_size(STDIN_FILENO);
    if (!ws) ws = sys::window_size(STDOUT_FILENO);
    if (ws)
      (void)ch->send_message(monitor::type_code(protocol::MsgType::kResize), monitor::kMainStream,
                             protocol::Resize{ws->rows, ws->cols});
  };
  if (tty) send_size();
  // The start: boot, set up, spawn. A ^C meanwhile stops the container.
  std::optional<protocol::FrameReader::Frame> started;
  while (!started) {
    auto fr = monitor::await_frame(*ch, monitor::type_code(monitor::ApiType::kStarted),
                                   monitor::kMainStream, std::chrono::milliseconds(200));
    if (fr.ok()) {
      started = std::move(*fr);
      break;
    }
    if (fr.error().code() != ErrorCode::kTimeout) {
      print_error(verb + ": " + fr.error().to_string());
      return kExitUsage;
    }
    if (int sig = signals->take(); sig && sig != SIGWINCH) {
      (void)cs.stop(r, SIGKILL, 0);
      return 128 + sig;
    }
  }
  protocol::Reply reply;
  if (!protocol::decode(started->payload, reply)) {
    print_error("run: malformed start report from the monitor");
    return kExitUsage;
  }
  auto report = monitor::start_report(reply);
  if (!report.ok) {
    print_error(verb + ": " + report.message);
    (void)cs.wait_gone(r, std::chrono::seconds(30));
    return report.exit_code;
  }
  if (tty) send_size();  // attached to a running process: its size now
  std::optional<sys::RawTerminal> raw;
  if (tty && interactive && ::isatty(STDIN_FILENO)) {
    auto t = sys::RawTerminal::enter(STDIN_FILENO);
    if (t.ok()) raw.emplace(std::move(*t));
  }
  monitor::SessionOptions so{tty, interactive, true};
  auto exit = monitor::pump(*ch, monitor::kMainStream, so, *signals);
  raw.reset();
  if (!exit.ok()) {
    print_error(verb + ": " + exit.error().to_string());
    return kExitUsage;
  }
  // The monitor closes the connection when it is done; then it exits.
  (void)monitor::await_frame(*ch, 0xffff, 0, std::chrono::seconds(30));
  (void)cs.wait_gone(r, std::chrono::seconds(30));
  return exit->signal ? 128 + exit->signal : exit->code;
}

Runner add_container(CLI::App& app, const GlobalOptions& global) {
  auto f = std::make_shared<Flags>();
  std::vector<std::pair<CLI::App*, std::function<int()>>> verbs;
  auto verb = [&](const char* name, const char* help, std::function<int()> fn) {
    CLI::App* c = app.add_subcommand(name, help);
    verbs.emplace_back(c, std::move(fn));
    return c;
  };
  auto refs = [&](CLI::App* c, bool required = true) {
    auto* o = c->add_option("containers", f->refs, "Container names or IDs");
    if (required) o->required();
  };
  const GlobalOptions& g = global;

  auto* start_cmd = verb("start", "Start stopped containers", [f, &g] { return start(*f, g); });
  refs(start_cmd);
  start_cmd->add_flag("-a,--attach", f->attach, "Attach stdout/stderr and forward signals");
  start_cmd->add_flag("-i,--interactive", f->interactive, "Attach the container's stdin");

  for (bool restart : {false, true}) {
    auto* c =
        verb(restart ? "restart" : "stop",
             restart ? "Restart containers" : "Stop running containers (signal, then SIGKILL)",
             [f, &g, restart] { return stop_or_restart(*f, g, restart); });
    refs(c);
    c->add_option("-t,--time,--timeout", f->timeout, "Seconds to wait before SIGKILL");
    c->add_option("-s,--signal", f->signal,
                  "Signal to send (default: the container's stop signal)");
  }

  auto* kill_cmd = verb("kill", "Send a signal (default KILL) to containers",
                        [f, &g] { return kill_containers(*f, g); });
  refs(kill_cmd);
  kill_cmd->add_option("-s,--signal", f->signal, "Signal to send");

  auto* rm_cmd = verb("rm", "Remove containers", [f, &g] { return remove(*f, g); });
  rm_cmd->alias("delete");
  refs(rm_cmd, false);
  rm_cmd->add_flag("-f,--force", f->force, "Kill and remove running containers");
  rm_cmd->add_flag("-a,--all", f->all, "Remove all containers");
  rm_cmd->add_flag("-v,--volumes", f->volumes, "Remove anonymous volumes of the containers");

  auto* prune_cmd = verb("prune", "Remove all stopped containers", [&g] { return prune(g); });
  prune_cmd->add_flag("-f,--force", f->force, "Do not prompt (vessel never prompts)");

  auto* ls_cmd = verb("ls", "List containers", [f, &g] { return list(*f, g); });
  ls_cmd->alias("list");
  ls_cmd->alias("ps");
  ls_cmd->add_flag("-a,--all", f->all, "Show all containers (default: running ones)");
  ls_cmd->add_flag("-q,--quiet", f->quiet, "Only IDs");
  ls_cmd->add_option("--format", f->format, "table or json")
      ->check(CLI::IsMember({"table", "json"}));

  auto* inspect_cmd = verb("inspect", "Show containers' configuration and state as JSON",
                           [f, &g] { return inspect(*f, g); });
  refs(inspect_cmd);

  auto* port_cmd = verb("port", "List a container's published ports: port CONTAINER [PORT[/PROTO]]",
                        [f, &g] { return port(*f, g); });
  port_cmd->add_option("args", f->refs, "Container, then optionally a port")->required();

  auto* logs_cmd = verb("logs", "Show a container's output", [f, &g] { return logs(*f, g); });
  refs(logs_cmd);
  logs_cmd->add_flag("-f,--follow", f->follow, "Follow the output until the container stops");
  logs_cmd->add_option("-n,--tail", f->tail, "Lines from the end (default all)");
  logs_cmd->add_flag("-t,--timestamps", f->timestamps, "Show timestamps");
  logs_cmd->add_flag("--boot", f->boot, "Show the VM's boot log instead");

  auto* wait_cmd = verb("wait", "Wait for containers to stop, print their exit codes",
                        [f, &g] { return wait_containers(*f, g); });
  refs(wait_cmd);

  auto* exec_cmd =
      verb("exec", "Run a command in a running container", [f, &g] { return exec(*f, g); });
  // CONTAINER COMMAND ARGS... are taken as they are (see run.cc on why the
  // global flags are declared again).
  exec_cmd->prefix_command();
  exec_cmd->fallthrough(false);
  exec_cmd->add_option("--root", const_cast<GlobalOptions&>(global).root, "State root");
  exec_cmd->add_flag("--debug", const_cast<GlobalOptions&>(global).debug, "Verbose output");
  exec_cmd->add_flag("-i,--interactive", f->interactive, "Keep stdin open and forward it");
  exec_cmd->add_flag("-t,--tty", f->tty, "Allocate a pseudo-terminal");
  exec_cmd->add_flag("-d,--detach", f->detach, "Run in the background");
  exec_cmd->add_option("-e,--env", f->env, "Set an environment variable")->allow_extra_args(false);
  exec_cmd->add_option("-w,--workdir", f->workdir, "Working directory");
  exec_cmd->add_option("-u,--user", f->user, "User: user[:group], names or numbers");
  exec_cmd->footer("Usage: vessel exec [OPTIONS] CONTAINER COMMAND [ARG...]");

  auto* stats_cmd = verb("stats", "Show containers' resource use (CPU, memory, I/O, pids)",
                         [f, &g] { return stats(*f, g); });
  refs(stats_cmd, false);
  stats_cmd->add_flag("--no-stream", f->no_stream, "Print one sample and exit");
  stats_cmd->add_option("--format", f->format, "table or json")
      ->check(CLI::IsMember({"table", "json"}));

  auto* attach_cmd = verb("attach", "Attach to a running container's main process",
                          [f, &g] { return attach(*f, g); });
  refs(attach_cmd);

  return [verbs, f, exec_cmd] {
    for (auto& [c, fn] : verbs)
      if (c->parsed()) {
        if (c == exec_cmd) f->command = c->remaining();
        return fn();
      }
    return kExitUsage;
  };
}

}  // namespace vessel::cli
