// /containers/...: create, start, attach, wait, logs, list, inspect, stop,
// kill, restart, remove, resize, prune. Lifecycle calls go to the
// containers layer; the JSON comes from containers/views.h.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "api/context.h"
#include "api/create_body.h"
#include "api/handlers.h"
#include "api/session.h"
#include "base/log.h"
#include "base/strings.h"
#include "containers/copy.h"
#include "containers/views.h"
#include "images/image_store.h"
#include "monitor/client.h"
#include "runtime/container_vm.h"
#include "runtime/log_file.h"
#include "runtime/paths.h"
#include "runtime/runtime_dir.h"
#include "sys/fs.h"
#include "vmm/accel.h"

namespace vessel::api {

using containers::ContainerRecord;
using containers::Containers;
using nlohmann::json;
using state::RunState;

Result<FoundContainer> find_container(Context& ctx, const Request& req) {
  VESSEL_ASSIGN_OR_RETURN(auto cs, ctx.containers());
  std::string ref = req.param("id");
  auto r = cs->find(ref);
  if (!r.ok()) {
    if (r.error().code() == ErrorCode::kNotFound)
      return Error(ErrorCode::kNotFound, "No such container: " + ref);
    return r.error();
  }
  return FoundContainer{std::move(cs), std::move(*r)};
}

namespace {

using Found = FoundContainer;
Result<Found> find(Context& ctx, const Request& req) {
  return find_container(ctx, req);
}

bool running(const ContainerRecord& r) {
  return r.state.status == RunState::kRunning || r.state.status == RunState::kRestarting;
}

// "1000" or "1000:1000" -> numeric ids; names stay for the guest to resolve.
void apply_user(const std::string& user, runtime::ContainerConfig& c) {
  auto parts = split(user, ':');
  auto uid = parse_u64(parts[0]);
  std::optional<uint64_t> gid = uint64_t{0};
  if (parts.size() == 2) gid = parse_u64(parts[1]);
  if (parts.size() <= 2 && uid && gid && *uid <= 0xfffffffe && *gid <= 0xfffffffe) {
    c.uid = static_cast<uint32_t>(*uid);
    c.gid = static_cast<uint32_t>(*gid);
    c.user.clear();
  } else {
    c.user = user;
  }
}

// The image named by the body, found locally (an image embedded in the
// build counts as local, as for `vessel run`); Docker's 404 otherwise, on
// which clients pull and try again.
Result<std::pair<images::ImageRecord, image::Reference>> local_image(const std::string& name,
                                                                     images::ImageStore& store) {
  VESSEL_ASSIGN_OR_RETURN(image::Reference ref, image::parse_reference(name));
  VESSEL_ASSIGN_OR_RETURN(auto found, store.find(ref));
  if (!found && ref.registry == image::kDockerHubRegistry && !ref.digest) {
    std::string layout = runtime::embedded_image_layout(ref.repository);
    if (!layout.empty()) {
      VESSEL_TRY(store.load_layout(layout, ref.repository));
      VESSEL_ASSIGN_OR_RETURN(found, store.find(ref));
    }
  }
  if (!found) return Error(ErrorCode::kNotFound, "No such image: " + ref.familiar());
  return std::make_pair(*found, ref);
}

// The body's configuration completed from the image as Docker does:
// Entrypoint + (Cmd or the image's Cmd), the image's Env under the body's,
// WorkingDir, User and StopSignal unless given, Labels under the body's,
// VOLUMEs as anonymous volumes, ExposedPorts when PublishAllPorts.
Result<runtime::ContainerConfig> complete_config(const std::string& root, CreateSpec spec) {
  VESSEL_ASSIGN_OR_RETURN(images::ImageStore store, images::ImageStore::open(root));
  VESSEL_ASSIGN_OR_RETURN(auto found, local_image(spec.image, store));
  auto& [rec, ref] = found;
  VESSEL_ASSIGN_OR_RETURN(image::ImageConfig image, store.config(rec));
  runtime::ContainerConfig c = std::move(spec.config);
  if (c.read_only) {
    VESSEL_ASSIGN_OR_RETURN(c.root_image, store.snapshot(rec));
  } else {
    // Written in place under a disk of its own (ContainerConfig::root_disk).
    VESSEL_ASSIGN_OR_RETURN(c.root_image, store.root_base(rec, c.writable_bytes));
    c.root_disk = true;
  }
  c.image = ref.familiar();
  c.image_id = rec.manifest.str();
  const auto& ic = image.config;
  std::vector<std::string> argv = spec.entrypoint ? *spec.entrypoint : ic.entrypoint;
  if (spec.cmd)
    argv.insert(argv.end(), spec.cmd->begin(), spec.cmd->end());
  else if (!spec.entrypoint)
    argv.insert(argv.end(), ic.cmd.begin(), ic.cmd.end());
  if (argv.empty())
    return Error(ErrorCode::kInvalidArgument,
                 "No command specified (image '" + ref.familiar() + "' has no Entrypoint or Cmd)");
  c.argv = std::move(argv);
  std::vector<std::string> env;
  auto key = [](const std::string& e) { return e.substr(0, e.find('=')); };
  for (const auto& e : ic.env) {
    bool overridden = false;
    for (const auto& o : c.env)
      overridden = overridden || key(o) == key(e);
    if (!overridden) env.push_back(e);
  }
  env.insert(env.end(), c.env.begin(), c.env.end());
  c.env = std::move(env);
  if (!spec.workdir_set && !ic.working_dir.empty()) c.workdir = ic.working_dir;
  std::string user = spec.user_set ? c.user : ic.user;
  if (!user.empty()) apply_user(user, c);
  if (!spec.stop_signal_set && !ic.stop_signal.empty())
    if (auto sig = runtime::parse_signal(ic.stop_signal); sig.ok()) c.stop_signal = *sig;
  for (const auto& [k, v] : ic.labels)
    c.labels.emplace(k, v);
  for (const auto& target : ic.volumes) {
    bool covered = false;
    for (const auto& m : c.mounts)
      covered = covered || m.target == target;
    if (covered) continue;
    VESSEL_ASSIGN_OR_RETURN(runtime::MountSpec m, runtime::parse_volume_flag(target));
    c.mounts.push_back(std::move(m));
  }
  if (spec.publish_all)
    for (const auto& k : ic.exposed_ports) {
      VESSEL_ASSIGN_OR_RETURN(auto port, net::parse_port_key(k));
      bool given = false;
      for (const auto& m : c.ports)
        given = given || (m.container_port == port.first && m.proto == port.second);
      if (!given) c.ports.push_back({"", 0, port.first, port.second});
    }
  const char* accel_env = ::getenv("VESSEL_ACCEL");
  VESSEL_ASSIGN_OR_RETURN(auto accel,
                          vmm::parse_accel(accel_env && *accel_env ? accel_env : "auto"));
  c.accel = accel ? vmm::accel_name(*accel) : "";
  VESSEL_ASSIGN_OR_RETURN(runtime::GuestAssets assets, runtime::find_guest_assets(std::nullopt));
  c.kernel = assets.kernel;
  c.initrd = assets.initrd;
  return c;
}

Reply create(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(json body, parse_body(req));
  auto spec = parse_create_body(body);
  if (!spec.ok()) return error_reply(400, spec.error().to_string());
  std::string name = req.arg("name");
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  if (!name.empty())
    if (auto s = containers::validate_name(name); !s.ok())
      return error_reply(400, s.error().to_string());
  auto attachments = spec->attachments;
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto config, complete_config(ctx.root(), std::move(*spec)));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  if (!name.empty())
    if (auto other = cs->find(name); other.ok() && other->name == name)
      return error_reply(409, "Conflict. The container name \"/" + name +
                                  "\" is already in use by container \"" + other->id +
                                  "\". You have to remove (or rename) that container to be able "
                                  "to reuse that name.");
  VESSEL_ASSIGN_OR_RETURN_REPLY(ContainerRecord r,
                                cs->create(std::move(config), name, attachments));
  return json_reply(201, {{"Id", r.id}, {"Warnings", json::array()}});
}

// Reads the monitor connection until the main process's Exit comes (its
// code, 128 + signal for a signal; -1 if none came), the monitor closes
// (`closed`), or `timeout` passes.
struct HeardExit {
  int code = -1;
  bool closed = false;
};
HeardExit read_exit(monitor::Channel& ch, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  HeardExit out;
  while (true) {
    protocol::FrameReader::Frame f;
    while (ch.next(f)) {
      protocol::Exit e;
      if (f.header.type == monitor::type_code(protocol::MsgType::kExit) &&
          f.header.stream == monitor::kMainStream && protocol::decode(f.payload, e)) {
        out.code = e.signal ? 128 + e.signal : e.code;
        return out;
      }
    }
    if (out.closed) return out;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return out;
    pollfd p{ch.fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) > 0 && !ch.read_available().ok())
      out.closed = true;  // what came before the end is still read above
  }
}

// Docker's start error text, which its CLI maps to exit codes 127 and 126.
std::string start_error(const monitor::StartReport& report) {
  if (report.exit_code == 127)
    return "failed to create task for container: " + report.message +
           ": executable file not found in $PATH: unknown";
  if (report.exit_code == 126)
    return "failed to create task for container: " + report.message +
           ": permission denied: unknown";
  return report.message;
}

Status start_container(Context& ctx, Containers& cs, const ContainerRecord& r,
                       std::string* failure) {
  auto waiters = ctx.take_waiters(r.id);
  auto launch = cs.start(r, !waiters.empty(), false);
  auto release = [&](const std::string& error) {
    for (auto& w : waiters) {
      std::lock_guard lock(w->mu);
      w->released = true;
      w->error = error;
      w->cv.notify_all();
    }
  };
  if (!launch.ok()) {
    release(launch.error().to_string());
    return launch.error();
  }
  release("");
  if (!*launch) return ok_status();
  VESSEL_ASSIGN_OR_RETURN(auto report, monitor::wait_started(**launch));
  if (!report.ok) {
    *failure = start_error(report);
    return Error(report.exit_code == 125 ? ErrorCode::kInternal : ErrorCode::kInvalidArgument,
                 *failure);
  }
  ctx.notify_started(r.id);
  return ok_status();
}

Reply start(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  if (running(f.r)) return Reply{304, "application/json", "", {}, false};
  std::string failure;
  if (auto s = start_container(ctx, *f.cs, f.r, &failure); !s.ok())
    return failure.empty() ? error_reply(s.error()) : error_reply(400, failure);
  return Reply{204, "application/json", "", {}, false};
}

Reply attach(Context& ctx, Request& req, Exchange& ex) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  auto cfg = runtime::config_from_json(f.r.config);
  if (!cfg.ok()) return error_reply(cfg.error());
  SessionOptions so;
  so.tty = cfg->tty;
  so.forward_stdin = req.flag("stdin") && cfg->open_stdin;
  so.stdout = req.flag("stdout");
  so.stderr = req.flag("stderr");
  std::shared_ptr<AttachWaiter> waiter;
  if (!runtime::running_owner(ctx.root(), f.r.id)) waiter = ctx.wait_for_start(f.r.id);
  Reply taken;
  taken.taken = true;
  if (!ex.hijack(!so.tty).ok()) {
    if (waiter) ctx.forget_waiter(f.r.id, waiter);
    return taken;
  }
  if (waiter) {
    std::unique_lock lock(waiter->mu);
    while (!waiter->released) {
      waiter->cv.wait_for(lock, std::chrono::milliseconds(250));
      if (waiter->released) break;
      if (ex.client_gone()) {
        lock.unlock();
        ctx.forget_waiter(f.r.id, waiter);
        return taken;
      }
    }
    if (!waiter->error.empty()) return taken;
  }
  auto ch = f.cs->connect(f.r);
  if (!ch.ok()) return taken;
  auto a = monitor::encode(monitor::Attach{static_cast<uint8_t>(so.forward_stdin), 1});
  if (!ch->send(monitor::type_code(monitor::ApiType::kAttach), monitor::kMainStream, a).ok())
    return taken;
  // The start: boot, set up, spawn (the monitor waits for this attach).
  // Not given up when the client hangs up meanwhile: what it sent before
  // (stdin, then its end) is still forwarded, by the pump below.
  auto started = monitor::await_frame(*ch, monitor::type_code(monitor::ApiType::kStarted),
                                      monitor::kMainStream, std::chrono::minutes(10));
  if (!started.ok()) return taken;
  protocol::Reply reply;
  if (!protocol::decode(started->payload, reply)) return taken;
  auto report = monitor::start_report(reply);
  if (!report.ok) return taken;  // the start request says why
  (void)pump_session(*ch, monitor::kMainStream, ex, so);
  return taken;
}

Reply wait(Context& ctx, Request& req, Exchange& ex) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  std::string condition = req.arg("condition");
  if (condition.empty()) condition = "not-running";
  if (condition != "not-running" && condition != "next-exit" && condition != "removed")
    return error_reply(
        400, "invalid condition '" + condition + "' (expected not-running, next-exit or removed)");
  Reply taken;
  taken.taken = true;
  // Headers now: clients (docker run) start the container only once the
  // wait is registered, i.e. once they see these.
  if (!ex.begin_stream(200, "application/json").ok()) return taken;
  ContainerRecord last = f.r;
  bool seen_running = running(f.r);
  int64_t finished_at_start = f.r.state.finished;
  bool created = f.r.state.status == RunState::kCreated;
  // Listen to the monitor too: it tells its attached clients the exit even
  // when --rm removes the record at once (polling alone could miss the
  // exit code then). Connect as soon as the monitor is there, but attach
  // only once the main process runs (an attach before would release a
  // monitor that waits for the client's real attach): the start handler
  // wakes us then, and the attach is in the monitor's socket long before
  // its last round of reading, after the VM is off.
  std::optional<monitor::Channel> ch;
  bool attached = false;
  int exit_code = -1;  // -1: not heard from the monitor
  uint64_t starts_seen = ctx.start_count(f.r.id);
  bool run = running(f.r);
  auto listen = [&] {
    if (!ch && exit_code < 0 && runtime::running_owner(ctx.root(), f.r.id))
      if (auto c = f.cs->connect(f.r); c.ok()) {
        ch.emplace(std::move(*c));
      }
    if (ch && !attached && run) {
      auto a = monitor::encode(monitor::Attach{0, 0});
      attached =
          ch->send(monitor::type_code(monitor::ApiType::kAttach), monitor::kMainStream, a).ok();
    }
  };
  while (true) {
    auto cur = f.cs->find(f.r.id);
    if (!cur.ok()) {
      if (cur.error().code() == ErrorCode::kNotFound) {  // removed
        // The monitor removes the record before it tells the exit.
        if (attached && exit_code < 0) {
          exit_code = read_exit(*ch, std::chrono::seconds(5)).code;
          if (exit_code >= 0) ctx.hear_exit(f.r.id, exit_code);
        }
        break;
      }
    } else {
      last = *cur;
      run = running(last);
      seen_running = seen_running || run;
      if (!run) exit_code = -1;  // the record has it now
      if (condition == "not-running" && !run) break;
      if (condition == "next-exit" && !run &&
          (seen_running || last.state.finished != finished_at_start ||
           (created && last.state.status == RunState::kExited)))
        break;
    }
    listen();
    if (ex.client_gone()) return taken;
    if (attached) {
      HeardExit heard = read_exit(*ch, std::chrono::milliseconds(100));
      if (heard.code >= 0) {
        exit_code = heard.code;
        ctx.hear_exit(f.r.id, exit_code);
      }
      if (heard.code >= 0 || heard.closed) {
        ch.reset();  // heard, or the monitor has gone
        attached = false;
      }
    } else {
      ctx.await_start(f.r.id, starts_seen, std::chrono::milliseconds(100));
      if (ctx.start_count(f.r.id) != starts_seen) {
        starts_seen = ctx.start_count(f.r.id);
        run = true;  // the start handler saw the main process run
        listen();
      }
    }
  }
  if (exit_code >= 0 && last.state.status != RunState::kExited) last.state.exit_code = exit_code;
  // As `vessel wait`: the answer comes once the monitor has finished too, so
  // that a remove right after it is not refused.
  if (last.state.status == RunState::kExited) (void)f.cs->wait_gone(last, std::chrono::seconds(30));
  log::debug("wait " + f.r.id.substr(0, 12) + " (" + condition + "): exit " +
             std::to_string(last.state.exit_code) + (exit_code >= 0 ? " (from the monitor)" : ""));
  json body = {{"StatusCode", last.state.exit_code}, {"Error", nullptr}};
  if (!last.state.error.empty() && last.state.exit_code == 125)
    body["Error"] = {{"Message", last.state.error}};
  (void)ex.write(dump_json(body) + "\n");
  return taken;
}

std::string log_frame(const runtime::LogRecord& rec, bool timestamps, bool tty) {
  std::string line = (timestamps ? runtime::format_timestamp(rec.time_ns) + " " : "") + rec.text +
                     (rec.partial ? "" : "\n");
  if (tty) return line;
  return frame_stream(rec.stream == runtime::LogStream::kStdout ? 1 : 2, line);
}

Reply logs(Context& ctx, Request& req, Exchange& ex) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  bool out = req.flag("stdout"), err = req.flag("stderr");
  if (!out && !err) return error_reply(400, "Bad parameters: you must choose at least one stream");
  auto cfg = runtime::config_from_json(f.r.config);
  bool tty = cfg.ok() && cfg->tty;
  bool timestamps = req.flag("timestamps"), follow = req.flag("follow");
  std::string tail = req.arg("tail", "all");
  std::optional<uint64_t> n;
  if (tail != "all" && !tail.empty()) {
    n = parse_u64(tail);
    if (!n) return error_reply(400, "invalid tail '" + tail + "' (expected a number or all)");
  }
  std::string path = runtime::container_dir(ctx.root(), f.r.id) + "/container.log";
  uint64_t offset = 0;
  if (auto cur = sys::read_file(path, 1ull << 31); cur.ok())
    offset = cur->rfind('\n') == std::string::npos ? 0 : cur->rfind('\n') + 1;
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto records, runtime::read_log(path));
  size_t from = n && records.size() > *n ? records.size() - *n : 0;
  auto wanted = [&](const runtime::LogRecord& r) {
    return r.stream == runtime::LogStream::kStdout ? out : err;
  };
  std::string body;
  for (size_t i = from; i < records.size(); ++i)
    if (wanted(records[i])) body += log_frame(records[i], timestamps, tty);
  if (!follow) {
    Reply r;
    r.content_type = "application/vnd.docker.raw-stream";
    r.body = std::move(body);
    return r;
  }
  Reply taken;
  taken.taken = true;
  if (!ex.begin_stream(200, "application/vnd.docker.raw-stream").ok() || !ex.write(body).ok())
    return taken;
  bool gone = false;
  std::string root = ctx.root(), id = f.r.id;
  (void)runtime::follow_log(
      path, offset,
      [&](const runtime::LogRecord& rec) {
        if (!gone && wanted(rec)) gone = !ex.write(log_frame(rec, timestamps, tty)).ok();
      },
      [&] { return gone || ex.client_gone() || !runtime::running_owner(root, id); });
  return taken;
}

// Docker's list filters: id, name (substring, as Docker), status, label
// (key or key=value), exited; others are refused by name.
Result<bool> matches(const ContainerRecord& r, const runtime::ContainerConfig& c,
                     const std::map<std::string, std::vector<std::string>>& filters) {
  for (const auto& [k, values] : filters) {
    if (values.empty()) continue;
    // Docker: label filters must all match; the values of other keys are
    // alternatives.
    if (k == "label") {
      for (const auto& v : values) {
        auto eq = v.find('=');
        auto it = c.labels.find(v.substr(0, eq));
        if (it == c.labels.end() || (eq != std::string::npos && it->second != v.substr(eq + 1)))
          return false;
      }
      continue;
    }
    bool any = false;
    for (const auto& v : values) {
      if (k == "id")
        any = any || r.id.rfind(v, 0) == 0;
      else if (k == "name")
        any = any || r.name.find(v[0] == '/' ? v.substr(1) : v) != std::string::npos;
      else if (k == "status")
        any = any || state::state_name(r.state.status) == v;
      else if (k == "exited")
        any =
            any || (r.state.status == RunState::kExited && std::to_string(r.state.exit_code) == v);
      else if (k == "label") {
        auto eq = v.find('=');
        auto it = c.labels.find(v.substr(0, eq));
        any = any ||
              (it != c.labels.end() && (eq == std::string::npos || it->second == v.substr(eq + 1)));
      } else if (k == "ancestor") {
        any = any || r.image == v || r.image_id == v;
      } else {
        return Error(ErrorCode::kInvalidArgument, "invalid filter '" + k + "'");
      }
    }
    if (!any) return false;
  }
  return true;
}

Reply list(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto filters, parse_filters(req.arg("filters")));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto all, cs->list());
  bool show_all = req.flag("all");
  std::optional<uint64_t> limit;
  if (auto l = req.arg("limit"); !l.empty() && l != "-1" && l != "0") limit = parse_u64(l);
  json out = json::array();
  int64_t now = state::now_ns();
  // Newest first, as Docker lists.
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const auto& r = *it;
    if (!show_all && !running(r) && !filters.count("status")) continue;
    auto c = runtime::config_from_json(r.config);
    VESSEL_ASSIGN_OR_RETURN_REPLY(bool ok,
                                  matches(r, c.ok() ? *c : runtime::ContainerConfig{}, filters));
    if (!ok) continue;
    out.push_back(containers::list_view(*cs, r, now));
    if (limit && out.size() >= *limit) break;
  }
  return json_reply(200, out);
}

Reply inspect(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  json view = containers::inspect_view(*f.cs, f.r);
  // Docker lists the short id among each network's aliases (Vessel's DNS
  // answers it too); docker-compose looks for it to know a container is
  // already connected as it wants.
  if (auto nets = view["NetworkSettings"].find("Networks");
      nets != view["NetworkSettings"].end() && nets->is_object())
    for (auto& [name, ep] : nets->items()) {
      (void)name;
      json& aliases = ep["Aliases"];
      if (!aliases.is_array()) aliases = json::array();
      std::string short_id = f.r.id.substr(0, 12);
      if (std::find(aliases.begin(), aliases.end(), short_id) == aliases.end())
        aliases.push_back(short_id);
    }
  return json_reply(200, view);
}

Result<int> timeout_arg(const Request& req) {
  std::string t = req.arg("t", req.arg("timeout"));
  if (t.empty()) return -1;
  std::optional<int64_t> n;
  if (t == "-1")
    n = -1;
  else if (auto u = parse_u64(t))
    n = static_cast<int64_t>(*u);
  if (!n || *n > 86400) return Error(ErrorCode::kInvalidArgument, "invalid timeout '" + t + "'");
  return static_cast<int>(*n);
}

Result<int> signal_arg(const Request& req, int fallback) {
  std::string s = req.arg("signal");
  if (s.empty()) return fallback;
  return runtime::parse_signal(s);
}

Reply stop(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  VESSEL_ASSIGN_OR_RETURN_REPLY(int timeout, timeout_arg(req));
  VESSEL_ASSIGN_OR_RETURN_REPLY(int sig, signal_arg(req, 0));
  if (!running(f.r)) return Reply{304, "application/json", "", {}, false};
  if (auto s = f.cs->stop(f.r, sig, timeout); !s.ok()) return error_reply(s.error());
  return Reply{204, "application/json", "", {}, false};
}

Reply restart(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  VESSEL_ASSIGN_OR_RETURN_REPLY(int timeout, timeout_arg(req));
  VESSEL_ASSIGN_OR_RETURN_REPLY(int sig, signal_arg(req, 0));
  if (auto s = f.cs->stop(f.r, sig, timeout); !s.ok()) return error_reply(s.error());
  VESSEL_ASSIGN_OR_RETURN_REPLY(ContainerRecord cur, f.cs->find(f.r.id));
  std::string failure;
  if (auto s = start_container(ctx, *f.cs, cur, &failure); !s.ok())
    return failure.empty() ? error_reply(s.error()) : error_reply(400, failure);
  return Reply{204, "application/json", "", {}, false};
}

Reply kill(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  VESSEL_ASSIGN_OR_RETURN_REPLY(int sig, signal_arg(req, SIGKILL));
  if (!running(f.r)) return error_reply(409, "Container " + f.r.id + " is not running");
  if (auto s = f.cs->kill(f.r, sig); !s.ok()) return error_reply(s.error());
  return Reply{204, "application/json", "", {}, false};
}

Reply remove(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  bool force = req.flag("force");
  if (running(f.r) && !force)
    return error_reply(409, "You cannot remove a running container " + f.r.id +
                                ". Stop the container before attempting removal or force remove");
  if (auto s = f.cs->remove(f.r, force, req.flag("v")); !s.ok()) return error_reply(s.error());
  return Reply{204, "application/json", "", {}, false};
}

Reply resize(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  auto h = parse_u64(req.arg("h")), w = parse_u64(req.arg("w"));
  if (!h || !w || *h > 0xffff || *w > 0xffff)
    return error_reply(400, "invalid size: expected h and w between 0 and 65535");
  if (!running(f.r)) return error_reply(409, "Container " + f.r.id + " is not running");
  auto ch = f.cs->connect(f.r);
  if (!ch.ok()) return error_reply(ch.error());
  if (auto s =
          ch->send_message(monitor::type_code(protocol::MsgType::kResize), monitor::kMainStream,
                           protocol::Resize{static_cast<uint16_t>(*h), static_cast<uint16_t>(*w)});
      !s.ok())
    return error_reply(s.error());
  return json_reply(200, json::object());
}

Reply prune(Context& ctx, Request&, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto all, cs->list());
  json deleted = json::array();
  for (const auto& r : all) {
    if (running(r)) continue;
    if (cs->remove(r, false).ok()) deleted.push_back(r.id);
  }
  return json_reply(200, {{"ContainersDeleted", deleted}, {"SpaceReclaimed", 0}});
}

// Docker's stats object from two guest samples (`pre` may be empty: the
// first of a stream). CPU times are the container cgroup's; Docker's
// system_cpu_usage is the guest's clock times its CPUs, so the CLI's
// (cpu delta / system delta) * online CPUs is the container's share of
// its VM's CPUs.
json stats_view(const ContainerRecord& r, const protocol::Stats& s,
                const std::optional<protocol::Stats>& pre) {
  auto cpu = [](const protocol::Stats& x) {
    return json{
        {"cpu_usage",
         {{"total_usage", x.cpu_usage_usec * 1000},
          {"usage_in_kernelmode", x.cpu_system_usec * 1000},
          {"usage_in_usermode", x.cpu_user_usec * 1000}}},
        {"system_cpu_usage", x.timestamp_ns * std::max<uint32_t>(x.cpus, 1)},
        {"online_cpus", x.cpus},
        {"throttling_data", {{"periods", 0}, {"throttled_periods", 0}, {"throttled_time", 0}}}};
  };
  int64_t now = state::now_ns();
  return {{"id", r.id},
          {"name", "/" + r.name},
          {"read", runtime::format_timestamp(now)},
          {"preread", pre ? runtime::format_timestamp(
                                now - static_cast<int64_t>(s.timestamp_ns - pre->timestamp_ns))
                          : "0001-01-01T00:00:00Z"},
          {"cpu_stats", cpu(s)},
          {"precpu_stats", pre ? cpu(*pre)
                               : json{{"cpu_usage", {{"total_usage", 0}}},
                                      {"system_cpu_usage", 0},
                                      {"online_cpus", s.cpus}}},
          {"memory_stats",
           {{"usage", s.memory_current},
            {"limit", s.memory_limit},
            {"stats",
             {{"anon", s.memory_anon},
              {"file", s.memory_file},
              {"inactive_file", s.memory_inactive_file},
              {"oom_kill", s.oom_kills}}}}},
          {"pids_stats", {{"current", s.pids_current}, {"limit", s.pids_limit}}},
          {"blkio_stats",
           {{"io_service_bytes_recursive",
             json::array(
                 {{{"major", 0}, {"minor", 0}, {"op", "read"}, {"value", s.io_read_bytes}},
                  {{"major", 0}, {"minor", 0}, {"op", "write"}, {"value", s.io_write_bytes}}})}}},
          {"networks", {{"eth0", {{"rx_bytes", s.net_rx_bytes}, {"tx_bytes", s.net_tx_bytes}}}}},
          {"num_procs", 0},
          {"vessel_vm_memory", s.host_vm_rss}};
}

// /containers/{id}/stats: stream=false (docker stats --no-stream) answers
// one object from two samples half a second apart; else one a second until
// the client goes or the container stops.
Reply stats(Context& ctx, Request& req, Exchange& ex) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  bool stream = req.flag("stream", true);
  if (!running(f.r)) {
    if (!stream) return error_reply(409, "Container " + f.r.id + " is not running");
  }
  std::optional<protocol::Stats> pre;
  if (!stream || req.flag("one-shot") == false) {
    if (auto first = f.cs->stats(f.r); first.ok()) pre = *first;
  }
  if (!stream) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    VESSEL_ASSIGN_OR_RETURN_REPLY(auto s, f.cs->stats(f.r));
    return json_reply(200, stats_view(f.r, s, pre));
  }
  Reply taken;
  taken.taken = true;
  if (!ex.begin_stream(200, "application/json").ok()) return taken;
  while (!ex.client_gone()) {
    auto s = f.cs->stats(f.r);
    if (!s.ok()) return taken;  // stopped
    if (!ex.write(dump_json(stats_view(f.r, *s, pre)) + "\n").ok()) return taken;
    pre = *s;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  return taken;
}

Reply not_yet(Context&, Request& req, Exchange&) {
  return error_reply(501, "'" + req.method + " " + req.path +
                              "' is not supported by Vessel yet (see docs/docker-api.md)");
}

Reply pause_or_unpause(Context& ctx, Request& req, bool freeze) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  if (auto s = f.cs->pause(f.r, freeze); !s.ok()) return error_reply(s.error());
  ctx.publish(event("container", freeze ? "pause" : "unpause", f.r.id, container_attributes(f.r),
                    state::now_ns()));
  return Reply{204, "application/json", "", {}, false};
}
Reply pause(Context& ctx, Request& req, Exchange&) {
  return pause_or_unpause(ctx, req, true);
}
Reply unpause(Context& ctx, Request& req, Exchange&) {
  return pause_or_unpause(ctx, req, false);
}

// Splits a line of ps output into `n` fields, the last taking the rest
// (the command, with its spaces), as Docker parses it.
std::vector<std::string> ps_fields(const std::string& line, size_t n) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size() && out.size() + 1 < n) {
    while (i < line.size() && line[i] == ' ')
      ++i;
    size_t end = line.find(' ', i);
    if (end == std::string::npos) end = line.size();
    if (end > i) out.push_back(line.substr(i, end - i));
    i = end;
  }
  while (i < line.size() && line[i] == ' ')
    ++i;
  if (i < line.size()) out.push_back(line.substr(i));
  return out;
}

// GET /containers/{id}/top?ps_args=: ps (the image's) runs in the
// container, as root; its own row is left out, as Docker's host-side ps
// never shows.
Reply top(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  if (!running(f.r)) return error_reply(409, "Container " + f.r.id + " is not running");
  if (f.cs->paused(f.r)) return error_reply(409, "Container " + f.r.id + " is paused");
  std::vector<std::string> argv{"ps"};
  for (auto& a : split(req.arg("ps_args", "-ef"), ' '))
    if (!a.empty()) argv.push_back(a);
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cfg, runtime::config_from_json(f.r.config));
  protocol::Spawn spawn = runtime::main_spawn(cfg, 0, 0);
  spawn.argv = argv;
  spawn.user.clear();
  spawn.uid = spawn.gid = 0;
  spawn.groups.clear();
  spawn.tty = spawn.stdin_open = 0;
  spawn.cwd = "/";
  VESSEL_ASSIGN_OR_RETURN_REPLY(monitor::Channel ch, f.cs->connect(f.r));
  containers::GuestCopy ps(ch, 2);
  if (auto s = ps.start(spawn); !s.ok())
    return error_reply(500, "top: cannot run ps in container " + f.r.name +
                                " (the image needs a ps): " + s.error().message());
  std::string out;
  std::vector<uint8_t> chunk;
  while (true) {
    auto more = ps.next(chunk);
    if (!more.ok()) return error_reply(more.error());
    if (!*more) break;
    if (out.size() < (4u << 20)) out.append(chunk.begin(), chunk.end());
  }
  if (auto s = ps.finish(false); !s.ok())
    return error_reply(500, "ps failed: " + s.error().message());
  auto lines = split(out, '\n');
  if (lines.empty() || lines[0].empty()) return error_reply(500, "ps printed nothing");
  auto titles = ps_fields(lines[0], SIZE_MAX);
  size_t pid_col = std::find(titles.begin(), titles.end(), "PID") - titles.begin();
  if (pid_col == titles.size()) return error_reply(500, "Couldn't find PID field in ps output");
  std::string self;
  for (const auto& a : argv)
    self += (self.empty() ? "" : " ") + a;
  json procs = json::array();
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    auto fields = ps_fields(lines[i], titles.size());
    if (fields.size() <= pid_col) continue;
    if (fields[pid_col] == std::to_string(ps.pid()) || fields.back() == self) continue;
    procs.push_back(fields);
  }
  return json_reply(200, {{"Titles", titles}, {"Processes", procs}});
}

Reply rename(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  std::string name = req.arg("name");
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  if (name.empty()) return error_reply(400, "Neither old nor new names may be empty");
  if (auto s = containers::validate_name(name); !s.ok())
    return error_reply(400, s.error().to_string());
  if (name == f.r.name)
    return error_reply(409, "Renaming a container with the same name as its current name");
  if (auto s = f.cs->store().rename_container(f.r.id, name); !s.ok()) {
    if (s.error().code() == ErrorCode::kAlreadyExists)
      return error_reply(409, "Conflict. The container name \"/" + name +
                                  "\" is already in use. You have to remove (or rename) that "
                                  "container to be able to reuse that name.");
    return error_reply(s.error());
  }
  json attrs = container_attributes(f.r);
  attrs["name"] = name;
  attrs["oldName"] = "/" + f.r.name;
  ctx.publish(event("container", "rename", f.r.id, attrs, state::now_ns()));
  return Reply{204, "application/json", "", {}, false};
}

// POST /containers/{id}/update: the restart policy at any time (a running
// container's monitor reads it when the process ends); Memory, NanoCpus,
// CpuQuota/CpuPeriod and PidsLimit at any time too: a running container's
// guest applies them within what its VM was given at boot (409 naming the
// field beyond it) and its record keeps them for its next starts; a
// stopped container's VM is sized by them at its next start. Anything else
// set is refused by name.
Reply update(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(json body, parse_body(req));
  VESSEL_ASSIGN_OR_RETURN_REPLY(Found f, find(ctx, req));
  // Clients send every field of Docker's Resources, zero when unset.
  auto set = [&](const char* k) {
    auto it = body.find(k);
    return it != body.end() && is_set(*it);
  };
  const std::vector<std::string> limits = {"Memory", "NanoCpus", "CpuQuota", "CpuPeriod",
                                           "PidsLimit"};
  for (const auto& [k, v] : body.items()) {
    (void)v;
    if (k == "RestartPolicy" || std::find(limits.begin(), limits.end(), k) != limits.end())
      continue;
    if (set(k.c_str()))
      return error_reply(400,
                         "updating " + k + " is not supported by Vessel (see docs/docker-api.md)");
  }
  // The same checks as at create: parse a HostConfig of the changed fields.
  json hc = json::object();
  for (const auto& k : limits)
    if (set(k.c_str())) hc[k] = body[k];
  if (hc.contains("CpuPeriod") && !hc.contains("CpuQuota"))
    return error_reply(400,
                       "HostConfig.CpuPeriod: give it with CpuQuota (Vessel keeps a CPU "
                       "limit as the share of a CPU they make)");
  bool policy = body.contains("RestartPolicy") && body["RestartPolicy"].is_object() &&
                !body["RestartPolicy"].value("Name", std::string()).empty();
  if (policy) hc["RestartPolicy"] = body["RestartPolicy"];
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cfg, runtime::config_from_json(f.r.config));
  json probe = {{"Image", f.r.image.empty() ? "none" : f.r.image}, {"HostConfig", hc}};
  auto parsed = parse_create_body(probe);
  if (!parsed.ok()) return error_reply(400, parsed.error().to_string());
  const auto& n = parsed->config;
  bool memory = hc.contains("Memory"), pids = hc.contains("PidsLimit");
  bool cpu = hc.contains("NanoCpus") || hc.contains("CpuQuota");
  if (policy && f.r.state.status != RunState::kCreated && cfg.auto_remove &&
      n.restart.kind != runtime::RestartPolicy::Kind::kNo)
    return error_reply(
        400, "Restart policy cannot be updated because AutoRemove is enabled for the container");
  if ((memory || cpu || pids) && running(f.r)) {
    // Within the VM's memory and vCPUs, fixed when it booted.
    auto beyond = [&](const std::string& field, const std::string& asked, const std::string& vm) {
      return error_reply(409, "cannot update " + field + " of running container " + f.r.name +
                                  ": " + asked + " is more than the " + vm +
                                  " its VM was given at boot (stop the container, update, "
                                  "start it)");
    };
    auto mib = [](uint64_t b) { return std::to_string(b >> 20) + " MiB"; };
    monitor::Limits change;
    if (memory) {
      if (n.memory_bytes > cfg.memory_bytes)
        return beyond("Memory", mib(n.memory_bytes), mib(cfg.memory_bytes));
      change.memory_bytes = static_cast<int64_t>(n.memory_bytes);
    }
    if (cpu) {
      uint64_t millis = n.cpu_millis ? n.cpu_millis : uint64_t{n.cpus} * 1000;
      if (millis > uint64_t{cfg.cpus} * 1000)
        return beyond(
            hc.contains("NanoCpus") ? "NanoCpus" : "CpuQuota",
            std::to_string(millis / 1000) +
                (millis % 1000 ? "." + std::to_string(millis % 1000 + 1000).substr(1) : "") +
                " CPUs",
            std::to_string(cfg.cpus) + " vCPUs");
      // All the VM's vCPUs are no quota.
      bool whole = millis == uint64_t{cfg.cpus} * 1000;
      change.cpu_quota_usec = whole ? 0 : static_cast<int64_t>(millis * 100);
      change.cpu_period_usec = whole ? 0 : protocol::kDefaultCpuPeriodUsec;
    }
    if (pids) change.pids = static_cast<int64_t>(n.pids_limit);
    if (auto s = f.cs->update_limits(f.r, change); !s.ok()) return error_reply(s.error());
    memory = cpu = pids = false;  // applied, and kept in the record
  }
  auto updated = f.cs->store().update_container(f.r.id, [&](ContainerRecord& cur) -> Status {
    VESSEL_ASSIGN_OR_RETURN(auto c, runtime::config_from_json(cur.config));
    if (memory) {  // the next VM's size
      c.memory_bytes = n.memory_bytes;
      c.memory_limit_bytes = 0;
    }
    if (cpu) {
      c.cpus = n.cpus;
      c.cpu_millis = n.cpu_millis;
    }
    if (pids) c.pids_limit = n.pids_limit;
    if (policy) c.restart = n.restart;
    cur.config = runtime::to_json(c);
    return ok_status();
  });
  if (!updated.ok()) return error_reply(updated.error());
  return json_reply(200, {{"Warnings", json::array()}});
}

}  // namespace

void add_container_routes(Router& r) {
  r.add("POST", "/containers/create", create);
  r.add("GET", "/containers/json", list);
  r.add("POST", "/containers/prune", prune);
  r.add("GET", "/containers/{id}/json", inspect);
  r.add("POST", "/containers/{id}/start", start);
  r.add("POST", "/containers/{id}/attach", attach);
  r.add("POST", "/containers/{id}/wait", wait);
  r.add("GET", "/containers/{id}/logs", logs);
  r.add("POST", "/containers/{id}/stop", stop);
  r.add("POST", "/containers/{id}/restart", restart);
  r.add("POST", "/containers/{id}/kill", kill);
  r.add("DELETE", "/containers/{id}", remove);
  r.add("POST", "/containers/{id}/resize", resize);
  r.add("POST", "/containers/{id}/pause", pause);
  r.add("POST", "/containers/{id}/unpause", unpause);
  r.add("GET", "/containers/{id}/top", top);
  r.add("POST", "/containers/{id}/rename", rename);
  r.add("POST", "/containers/{id}/update", update);
  r.add("GET", "/containers/{id}/stats", stats);
  for (const char* p : {"/containers/{id}/changes", "/containers/{id}/attach/ws"})
    r.add("GET", p, not_yet);
}

}  // namespace vessel::api
