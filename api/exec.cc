// /containers/{id}/exec and /exec/{id}/...: exec instances. An instance is
// kept in the service's memory (Context) from create to the service's
// exit; its process runs through the container's monitor as `vessel exec`.
#include <fcntl.h>
#include <unistd.h>

#include <random>

#include "agent/capabilities.h"
#include "api/context.h"
#include "api/handlers.h"
#include "api/session.h"
#include "base/strings.h"
#include "monitor/client.h"
#include "runtime/container_vm.h"

namespace vessel::api {

using nlohmann::json;

namespace {

std::string random_id() {
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 64; ++i)
    out += hex[rd() % 16];
  return out;
}

Result<std::vector<std::string>> strings(const json& body, const char* key) {
  std::vector<std::string> out;
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return out;
  if (it->is_string()) return std::vector<std::string>{it->get<std::string>()};
  if (!it->is_array())
    return Error(ErrorCode::kInvalidArgument, std::string(key) + ": expected a list of strings");
  for (const auto& x : *it) {
    if (!x.is_string() || x.get<std::string>().find('\0') != std::string::npos)
      return Error(ErrorCode::kInvalidArgument, std::string(key) + ": expected a list of strings");
    out.push_back(x.get<std::string>());
  }
  return out;
}

bool boolean(const json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && it->is_boolean() && it->get<bool>();
}

std::string string_field(const json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && it->is_string() ? it->get<std::string>() : "";
}

Reply create(Context& ctx, Request& req, Exchange&) {
  VESSEL_ASSIGN_OR_RETURN_REPLY(json body, parse_body(req));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  std::string ref = req.param("id");
  auto r = cs->find(ref);
  if (!r.ok())
    return r.error().code() == ErrorCode::kNotFound ? error_reply(404, "No such container: " + ref)
                                                    : error_reply(r.error());
  if (r->state.status != state::RunState::kRunning)
    return error_reply(409, "Container " + r->id + " is not running");
  if (cs->paused(*r))
    return error_reply(409, "Container " + r->id + " is paused, unpause the container before exec");
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cmd, strings(body, "Cmd"));
  if (cmd.empty()) return error_reply(400, "No exec command specified");
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto env, strings(body, "Env"));
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto config, runtime::config_from_json(r->config));
  auto e = std::make_shared<ExecEntry>();
  e->id = random_id();
  e->container = r->id;
  e->spawn = runtime::main_spawn(config, 0, 0);
  e->spawn.argv = cmd;
  // --privileged: every capability for this process, as Docker's exec.
  if (boolean(body, "Privileged"))
    e->spawn.capabilities = agent::container_capabilities(protocol::kAllCapabilities);
  for (const auto& item : env) {
    std::string key = item.substr(0, item.find('='));
    std::erase_if(e->spawn.env,
                  [&](const std::string& x) { return x.substr(0, x.find('=')) == key; });
    e->spawn.env.push_back(item);
  }
  if (auto wd = string_field(body, "WorkingDir"); !wd.empty()) e->spawn.cwd = wd;
  if (auto user = string_field(body, "User"); !user.empty()) {
    e->spawn.user = user;
    e->spawn.uid = e->spawn.gid = 0;
    e->spawn.groups.clear();
  }
  e->spawn.tty = boolean(body, "Tty");
  e->attach_stdin = boolean(body, "AttachStdin");
  e->attach_stdout = boolean(body, "AttachStdout");
  e->attach_stderr = boolean(body, "AttachStderr");
  ctx.add_exec(e);
  return json_reply(201, {{"Id", e->id}});
}

std::shared_ptr<ExecEntry> find_exec(Context& ctx, const Request& req, Reply& error) {
  auto e = ctx.exec(req.param("id"));
  if (!e) error = error_reply(404, "No such exec instance: " + req.param("id"));
  return e;
}

Reply start(Context& ctx, Request& req, Exchange& ex) {
  Reply err;
  auto e = find_exec(ctx, req, err);
  if (!e) return err;
  VESSEL_ASSIGN_OR_RETURN_REPLY(json body, parse_body(req));
  bool detach = boolean(body, "Detach");
  if (body.contains("Tty") && body["Tty"].is_boolean()) e->spawn.tty = body["Tty"].get<bool>();
  {
    std::lock_guard lock(e->mu);
    if (e->running || e->done)
      return error_reply(409, "exec " + e->id + " has already been started");
    e->running = true;
  }
  auto finish = [&](int code) {
    std::lock_guard lock(e->mu);
    e->running = false;
    e->done = true;
    e->exit_code = code;
    if (e->resize_fd >= 0) ::close(e->resize_fd);
    e->resize_fd = -1;
  };
  VESSEL_ASSIGN_OR_RETURN_REPLY(auto cs, ctx.containers());
  auto r = cs->find(e->container);
  if (!r.ok()) {
    finish(126);
    return error_reply(404, "No such container: " + e->container);
  }
  auto ch = cs->connect(*r);
  if (!ch.ok()) {
    finish(126);
    return error_reply(409, "Container " + e->container + " is not running");
  }
  protocol::Spawn spawn = e->spawn;
  spawn.stdin_open = e->attach_stdin && !detach;
  constexpr uint32_t kStream = 2;
  Reply taken;
  taken.taken = true;
  // The connection is taken over before the process starts, as Docker
  // does: clients read the 101 with a buffered reader and then the raw
  // socket, so output sent along with the headers could be lost.
  if (!detach && !ex.hijack(!spawn.tty).ok()) {
    finish(126);
    return taken;
  }
  // A failure after the hijack goes on the stream (Docker's way; the exit
  // code comes from exec inspect).
  auto fail = [&](int code, const std::string& message) {
    finish(code);
    if (detach) return error_reply(code == 126 || code == 127 ? 400 : 500, message);
    (void)ex.write(spawn.tty ? message + "\r\n" : frame_stream(1, message + "\n"));
    return taken;
  };
  if (auto s = ch->send_message(monitor::type_code(protocol::MsgType::kSpawn), kStream, spawn);
      !s.ok())
    return fail(126, "exec: " + s.error().to_string());
  auto fr = monitor::await_frame(*ch, monitor::type_code(protocol::MsgType::kSpawnResult), kStream,
                                 std::chrono::seconds(60));
  protocol::Reply reply;
  if (!fr.ok() || !protocol::decode(fr->payload, reply))
    return fail(126, "exec: " + (fr.ok() ? std::string("malformed reply from the monitor")
                                         : fr.error().to_string()));
  if (reply.errnum != 0) {
    int code = runtime::exec_failure_code(reply.errnum);
    return fail(code ? code : 126, "OCI runtime exec failed: exec failed: " + reply.message +
                                       (code == 127 ? ": executable file not found in $PATH" : "") +
                                       ": unknown");
  }
  {
    std::lock_guard lock(e->mu);
    e->pid = reply.pid;
  }
  if (detach) {
    // The process goes on without us: our connection to the monitor can go.
    return Reply{200, "application/json", "", {}, false};
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) == 0) {
    std::lock_guard lock(e->mu);
    e->resize_fd = pipe_fds[1];
  } else {
    pipe_fds[0] = -1;
  }
  SessionOptions so;
  so.tty = spawn.tty;
  so.forward_stdin = spawn.stdin_open;
  so.stdout = e->attach_stdout;
  so.stderr = e->attach_stderr;
  so.resize_fd = pipe_fds[0];
  int code = 137;
  auto exit = pump_session(*ch, kStream, ex, so);
  if (exit.ok()) code = exit->signal ? 128 + exit->signal : exit->code;
  finish(code);
  if (pipe_fds[0] >= 0) ::close(pipe_fds[0]);
  return taken;
}

Reply resize(Context& ctx, Request& req, Exchange&) {
  Reply err;
  auto e = find_exec(ctx, req, err);
  if (!e) return err;
  auto h = parse_u64(req.arg("h")), w = parse_u64(req.arg("w"));
  if (!h || !w || *h > 0xffff || *w > 0xffff)
    return error_reply(400, "invalid size: expected h and w between 0 and 65535");
  std::lock_guard lock(e->mu);
  if (e->resize_fd < 0) return error_reply(409, "exec " + e->id + " is not running");
  uint8_t b[4] = {static_cast<uint8_t>(*h >> 8), static_cast<uint8_t>(*h),
                  static_cast<uint8_t>(*w >> 8), static_cast<uint8_t>(*w)};
  (void)!::write(e->resize_fd, b, 4);
  return Reply{201, "application/json", "", {}, false};
}

Reply inspect(Context& ctx, Request& req, Exchange&) {
  Reply err;
  auto e = find_exec(ctx, req, err);
  if (!e) return err;
  std::lock_guard lock(e->mu);
  json args = json::array();
  for (size_t i = 1; i < e->spawn.argv.size(); ++i)
    args.push_back(e->spawn.argv[i]);
  return json_reply(200, {{"ID", e->id},
                          {"Running", e->running},
                          {"ExitCode", e->done ? json(e->exit_code) : json(nullptr)},
                          {"ProcessConfig",
                           {{"tty", e->spawn.tty != 0},
                            {"entrypoint", e->spawn.argv.empty() ? "" : e->spawn.argv[0]},
                            {"arguments", args},
                            {"privileged", false},
                            {"user", e->spawn.user}}},
                          {"OpenStdin", e->attach_stdin},
                          {"OpenStdout", e->attach_stdout},
                          {"OpenStderr", e->attach_stderr},
                          {"CanRemove", false},
                          {"ContainerID", e->container},
                          {"DetachKeys", ""},
                          {"Pid", e->pid}});
}

}  // namespace

void add_exec_routes(Router& r) {
  r.add("POST", "/containers/{id}/exec", create);
  r.add("POST", "/exec/{id}/start", start);
  r.add("POST", "/exec/{id}/resize", resize);
  r.add("GET", "/exec/{id}/json", inspect);
}

}  // namespace vessel::api
