// The Docker Engine API (`vessel system service`, issue 12) driven by real
// clients: the docker CLI of Debian's docker.io (/usr/bin/docker), a newer
// docker CLI where installed (/usr/local/bin/docker), docker-py
// (python3-docker), and raw HTTP for what clients never send. Each test
// runs in a network namespace of its own (NetworkTest) with one service on
// a socket in its scratch directory, serving its temporary state root.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "images/local_registry.h"
#include "net/network_fixture.h"
#include "sys/fs.h"
#include "sys/process.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kDockerCli = "/usr/bin/docker";
constexpr const char* kNewDockerCli = "/usr/local/bin/docker";

class DockerApiTest : public NetworkTest {
 protected:
  void SetUp() override {
    if (::access(kDockerCli, X_OK) != 0)
      GTEST_SKIP() << "no docker CLI at " << kDockerCli << " (install docker.io)";
    NetworkTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    socket_ = scratch_dir() + "/docker.sock";
    ::setenv("VESSEL_ACCEL", "tcg", 1);  // the service's containers, as run_cli does
    UniqueFd log(::open((scratch_dir() + "/service.log").c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_TRUE(log) << "open the service log: " << std::strerror(errno);
    sys::SpawnOptions o;
    // --debug: each request is logged, printed when a test fails.
    o.argv = {paths().vessel, "--debug", "--root", state_root(),       "system",
              "service",      "--time",  "0",      "unix://" + socket_};
    o.fds = {{2, log.get()}};
    auto p = sys::Process::spawn(o);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    service_.emplace(std::move(*p));
    ASSERT_TRUE(wait_until(
        [&] {
          return raw("GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                     .find("200 OK") != std::string::npos;
        },
        10s))
        << "the service did not answer /_ping: " << service_log();
  }

  void TearDown() override {
    if (service_) {
      (void)service_->kill(SIGTERM);
      (void)service_->wait(10s);
      service_.reset();
    }
    if (HasFailure() && !socket_.empty())
      std::fprintf(stderr, "--- service log:\n%s\n", service_log().c_str());
    NetworkTest::TearDown();
  }

  std::string service_log() {
    auto text = sys::read_file(scratch_dir() + "/service.log", 1 << 20);
    return text.ok() ? *text : "";
  }

  // A docker CLI run against the service, with a config directory of the
  // test's own (the user's ~/.docker is never read).
  CliResult docker(const std::vector<std::string>& args, RunOptions o = {},
                   const std::string& cli = kDockerCli) {
    std::vector<std::string> argv{cli};
    argv.insert(argv.end(), args.begin(), args.end());
    o.env.push_back("DOCKER_HOST=unix://" + socket_);
    o.env.push_back("DOCKER_CONFIG=" + scratch_dir() + "/docker-config");
    return run_process(argv, o);
  }

  // A connection to the service with `request` sent (-1 on failure).
  UniqueFd send_request(const std::string& request) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fd;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", socket_.c_str());
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
    (void)::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL);
    return fd;
  }

  // What arrives on `fd` until it closes or `quiet` passes without data
  // (or 10 s in all).
  static std::string read_reply(int fd, std::chrono::milliseconds quiet = 10s) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    char buf[65536];
    while (fd >= 0 && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(quiet.count())) <= 0) break;
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  // One raw request on a fresh connection; everything the service answers
  // until it closes (or 10 s).
  std::string raw(const std::string& request) {
    UniqueFd fd = send_request(request);
    return read_reply(fd.get());
  }

  std::string socket_;
  std::optional<sys::Process> service_;
};

std::string post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: " +
         "application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// The body of a raw reply, parsed (null when it is not JSON).
json body_of(const std::string& reply) {
  auto at = reply.find("\r\n\r\n");
  if (at == std::string::npos) return json();
  return json::parse(reply.substr(at + 4), nullptr, false);
}

TEST_F(DockerApiTest, RunPrintsOutputAndGivesTheExitCodeBack) {
  CliResult hi = docker({"run", "--rm", kImage, "echo", "hi"});
  EXPECT_EQ(hi.exit_code, 0) << hi.err;
  EXPECT_EQ(hi.out, "hi\n");
  CliResult three = docker({"run", "--rm", kImage, "sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(three.exit_code, 3) << three.err;
  EXPECT_EQ(three.out, "out\n");
  EXPECT_TRUE(contains(three.err, "err\n")) << three.err;
  CliResult missing = docker({"run", "--rm", kImage, "no-such-command"});
  EXPECT_EQ(missing.exit_code, 127) << missing.err;
  // Capabilities as Docker gives them: NET_ADMIN (bit 12) alone in every
  // set but the inheritable and ambient ones, and no_new_privs.
  CliResult caps =
      docker({"run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "--security-opt",
              "no-new-privileges", kImage, "grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"});
  EXPECT_EQ(caps.exit_code, 0) << caps.err;
  EXPECT_EQ(caps.out,
            "CapInh:\t0000000000000000\nCapPrm:\t0000000000001000\nCapEff:\t0000000000001000\n"
            "CapBnd:\t0000000000001000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n");
  // --privileged: every capability the guest kernel has; no_new_privs off.
  CliResult all = docker({"run", "--rm", "--privileged", kImage, "grep", "-E",
                          "^(CapEff|NoNewPrivs)", "/proc/self/status"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.out, "CapEff:\t000001ffffffffff\nNoNewPrivs:\t0\n");
  if (::access(kNewDockerCli, X_OK) == 0) {
    CliResult v = docker({"version", "--format", "{{.Client.APIVersion}}"}, {}, kNewDockerCli);
    EXPECT_EQ(v.exit_code, 0) << v.err;
    EXPECT_EQ(v.out, "1.41\n");  // negotiated down to what Vessel serves
    CliResult newer =
        docker({"run", "--rm", kImage, "sh", "-c", "echo new; exit 5"}, {}, kNewDockerCli);
    EXPECT_EQ(newer.exit_code, 5) << newer.err;
    EXPECT_EQ(newer.out, "new\n");
  }
  // --rm: nothing left.
  CliResult ps = docker({"ps", "-a", "-q"});
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_EQ(ps.out, "");
}

TEST_F(DockerApiTest, DetachedContainerPsLogsExecInspectStopRm) {
  // Events from now on, of containers only (read at the end).
  UniqueFd events = send_request(
      "GET /v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D HTTP/1.1\r\nHost: "
      "x\r\n\r\n");
  ASSERT_TRUE(events);
  CliResult run = docker({"run", "-d", "--name", "web", "-l", "role=test", kImage, "sh", "-c",
                          "echo ready; while true; do sleep 1; done"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string id = run.out.substr(0, run.out.find('\n'));
  EXPECT_TRUE(is_full_id(id)) << run.out;
  EXPECT_TRUE(wait_until([&] { return contains(docker({"logs", "web"}).out, "ready"); }, 60s));

  CliResult ps = docker({"ps", "--format", "{{.Names}} {{.Status}}"});
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_TRUE(contains(ps.out, "web Up")) << ps.out;
  CliResult filtered = docker({"ps", "-q", "--no-trunc", "--filter", "label=role=test"});
  EXPECT_EQ(filtered.out, id + "\n");
  EXPECT_EQ(docker({"ps", "-q", "--filter", "name=nomatch"}).out, "");

  CliResult exec = docker({"exec", "web", "sh", "-c", "echo inside; exit 4"});
  EXPECT_EQ(exec.exit_code, 4) << exec.err;
  EXPECT_EQ(exec.out, "inside\n");
  CliResult in = docker({"exec", "-i", "web", "cat"}, {.stdin_data = "through stdin\n"});
  EXPECT_EQ(in.exit_code, 0) << in.err;
  EXPECT_EQ(in.out, "through stdin\n");
  CliResult nocmd = docker({"exec", "web", "no-such-command"});
  EXPECT_EQ(nocmd.exit_code, 127) << nocmd.err;
  // exec --privileged: every capability for that process alone.
  CliResult priv = docker({"exec", "--privileged", "web", "grep", "CapEff", "/proc/self/status"});
  EXPECT_EQ(priv.out, "CapEff:\t000001ffffffffff\n") << priv.err;
  EXPECT_EQ(docker({"exec", "web", "grep", "CapEff", "/proc/self/status"}).out,
            "CapEff:\t00000000a80425fb\n");  // Docker's default set

  CliResult di = docker({"inspect", "web"});
  ASSERT_EQ(di.exit_code, 0) << di.err;
  json j = json::parse(di.out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << di.out;
  EXPECT_EQ(j[0]["Id"], id);
  EXPECT_EQ(j[0]["Name"], "/web");
  EXPECT_EQ(j[0]["State"]["Running"], true);
  EXPECT_EQ(j[0]["Config"]["Labels"]["role"], "test");
  // The same object `vessel inspect` shows (one view for both).
  json mine = inspect(id);
  EXPECT_EQ(mine["Config"], j[0]["Config"]);
  EXPECT_EQ(mine["HostConfig"], j[0]["HostConfig"]);

  CliResult st = docker({"stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", "web"});
  EXPECT_EQ(st.exit_code, 0) << st.err;
  EXPECT_TRUE(contains(st.out, "web ") && contains(st.out, " / ")) << st.out;

  // -it through a terminal: the process gets one.
  RunOptions pty;
  pty.pty = true;
  CliResult term = docker({"exec", "-it", "web", "sh", "-c", "tty; echo cols=$(stty size)"}, pty);
  EXPECT_EQ(term.exit_code, 0) << term.out;
  EXPECT_TRUE(contains(term.out, "/dev/pts/")) << term.out;

  // A client that goes away in the middle of an attach: the container
  // runs on and the service goes on serving.
  {
    UniqueFd attach = send_request(
        "POST /v1.41/containers/web/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: "
        "x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
    EXPECT_TRUE(contains(read_reply(attach.get(), 1s), "HTTP/1.1 101 UPGRADED"));
  }
  EXPECT_TRUE(contains(docker({"ps", "--format", "{{.Names}}"}).out, "web\n"));

  CliResult stop = docker({"stop", "-t", "1", "web"});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(docker({"inspect", "-f", "{{.State.Status}}", "web"}).out, "exited\n");
  CliResult rm = docker({"rm", "web"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  CliResult gone = docker({"rm", "web"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_TRUE(contains(gone.err, "No such container: web")) << gone.err;
  EXPECT_EQ(docker({"ps", "-a", "-q"}).out, "");

  // The events of its life, in order: create, start, die (with the exit
  // code of SIGTERM's death), destroy.
  std::string stream = read_reply(events.get(), 1s);
  std::vector<std::string> actions;
  for (const auto& line :
       lines(stream.substr(std::min(stream.size(), stream.find("\r\n\r\n") + 4)))) {
    json e = json::parse(line, nullptr, false);
    if (!e.is_object()) continue;
    EXPECT_EQ(e["Type"], "container") << line;
    if (e["Actor"]["ID"] != id) continue;
    actions.push_back(e["Action"]);
    if (e["Action"] == "die") {
      EXPECT_EQ(e["Actor"]["Attributes"]["name"], "web") << line;
    }
  }
  EXPECT_EQ(actions, (std::vector<std::string>{"create", "start", "die", "destroy"})) << stream;
}

TEST_F(DockerApiTest, VolumesAndBadRequestsWithoutAVm) {
  CliResult create = docker({"volume", "create", "--label", "k=v", "data"});
  EXPECT_EQ(create.exit_code, 0) << create.err;
  EXPECT_EQ(create.out, "data\n");
  CliResult ls = docker({"volume", "ls", "-q"});
  EXPECT_EQ(ls.out, "data\n") << ls.err;
  CliResult vi = docker({"volume", "inspect", "-f", "{{.Driver}} {{.Labels}}", "data"});
  EXPECT_EQ(vi.out, "local map[k:v]\n") << vi.err;
  EXPECT_EQ(docker({"volume", "rm", "data"}).exit_code, 0);
  EXPECT_EQ(docker({"volume", "ls", "-q"}).out, "");
  CliResult nov = docker({"volume", "rm", "data"});
  EXPECT_NE(nov.exit_code, 0);
  EXPECT_TRUE(contains(nov.err, "No such volume: data")) << nov.err;

  // Malformed JSON, a field of the wrong type, an unsupported feature, an
  // unknown endpoint, a version too new, a body over the limit: Docker's
  // error shapes, and the service goes on serving.
  std::string bad = raw(post("/v1.41/containers/create", "{\"Image\": "));
  EXPECT_TRUE(contains(bad, "HTTP/1.1 400")) << bad;
  EXPECT_EQ(body_of(bad)["message"], "invalid JSON body: not well-formed JSON") << bad;
  std::string type = raw(post("/v1.41/containers/create",
                              R"({"Image": "vessel/busybox", "HostConfig": {"Memory": "1g"}})"));
  EXPECT_EQ(body_of(type)["message"], "HostConfig.Memory: expected an integer") << type;
  // What the VM cannot honour is refused by name: a host device, a seccomp
  // profile (the CLI sends the file's JSON).
  CliResult device = docker({"create", "--device", "/dev/null:/dev/xnull", kImage});
  EXPECT_NE(device.exit_code, 0);
  EXPECT_TRUE(contains(device.err, "HostConfig.Devices (--device) is not supported")) << device.err;
  ASSERT_TRUE(sys::write_file_atomic(scratch_dir() + "/seccomp.json",
                                     R"({"defaultAction": "SCMP_ACT_ALLOW"})")
                  .ok());
  CliResult seccomp =
      docker({"create", "--security-opt", "seccomp=" + scratch_dir() + "/seccomp.json", kImage});
  EXPECT_NE(seccomp.exit_code, 0);
  EXPECT_TRUE(
      contains(seccomp.err, "HostConfig.SecurityOpt: unsupported security option 'seccomp'"))
      << seccomp.err;
  CliResult cap = docker({"create", "--cap-add", "NET_ADMN", kImage});
  EXPECT_TRUE(contains(cap.err, "HostConfig.CapAdd: unknown capability")) << cap.err;
  CliResult shares = docker({"create", "--cpu-shares", "512", kImage});
  EXPECT_TRUE(contains(shares.err, "HostConfig.CpuShares (--cpu-shares) is not supported"))
      << shares.err;
  EXPECT_EQ(docker({"ps", "-a", "-q"}).out, "");  // none of them was made
  std::string unknown =
      raw("GET /v1.41/no/such/thing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(contains(unknown, "HTTP/1.1 404")) << unknown;
  EXPECT_EQ(body_of(unknown)["message"], "page not found");
  std::string newer = raw("GET /v1.99/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(contains(newer, "HTTP/1.1 400")) << newer;
  EXPECT_TRUE(contains(newer, "Maximum supported API version is 1.41")) << newer;
  std::string huge = raw("POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                         std::to_string(64 << 20) + "\r\n\r\n{");
  EXPECT_TRUE(contains(huge, "HTTP/1.1 413")) << huge;
  std::string nosuch =
      raw("GET /containers/nope/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(contains(nosuch, "HTTP/1.1 404")) << nosuch;
  EXPECT_EQ(body_of(nosuch)["message"], "No such container: nope");
  std::string image = raw(post("/containers/create", R"({"Image": "no/such-image"})"));
  EXPECT_TRUE(contains(image, "HTTP/1.1 404")) << image;
  EXPECT_EQ(body_of(image)["message"], "No such image: no/such-image:latest");
  std::string utf8 =
      raw("GET /v1.41\xc1/containers/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(contains(utf8, "HTTP/1.1 400")) << utf8;  // once crashed the service
  std::string ping = raw("HEAD /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(contains(ping, "HTTP/1.1 200")) << ping;
  EXPECT_TRUE(contains(ping, "Api-Version: 1.41")) << ping;
  EXPECT_TRUE(contains(ping, "Ostype: linux") || contains(ping, "OSType: linux")) << ping;
  CliResult df = docker({"system", "df", "--format", "{{.Type}}"});
  EXPECT_EQ(df.exit_code, 0) << df.err;
  EXPECT_TRUE(contains(df.out, "Images\n")) << df.out;
  CliResult info = docker({"info", "--format", "{{.OSType}} {{.Containers}}"});
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(info.out, "linux 0\n");
}

TEST_F(DockerApiTest, ServiceExitsWhenIdleAndTakesASystemdSocket) {
  // --time 1: gone about a second after the last connection, socket too.
  std::string sock = scratch_dir() + "/idle.sock";
  auto started = std::chrono::steady_clock::now();
  CliResult idle =
      run_cli({"--root", state_root(), "system", "service", "--time", "1", "unix://" + sock},
              {.timeout = 30s});
  EXPECT_EQ(idle.exit_code, 0) << idle.err;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "the socket was left behind";
  // A second service on a live socket is refused, naming it.
  CliResult twice = run_cli({"--root", state_root(), "system", "service", "unix://" + socket_});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_TRUE(contains(twice.err, "another service is listening there")) << twice.err;
  CliResult tcp = run_cli({"--root", state_root(), "system", "service", "tcp://0.0.0.0:2375"});
  EXPECT_EQ(tcp.exit_code, 125);
  EXPECT_TRUE(contains(tcp.err, "only unix:// sockets are served")) << tcp.err;

  // Socket activation: systemd-socket-activate listens and passes fd 3.
  const char* activate = "/usr/bin/systemd-socket-activate";
  if (::access(activate, X_OK) != 0) return;
  std::string activated = scratch_dir() + "/activated.sock";
  sys::SpawnOptions o;
  o.argv = {activate,     "-l",     activated, paths().vessel, "--root",
            state_root(), "system", "service", "--time",       "0"};
  auto p = sys::Process::spawn(o);
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  std::string saved = socket_;
  socket_ = activated;
  bool answered = wait_until(
      [&] {
        return contains(docker({"version", "--format", "{{.Server.APIVersion}}"}).out, "1.41");
      },
      10s);
  socket_ = saved;
  EXPECT_TRUE(answered) << "no answer on the socket systemd-socket-activate passed";
  (void)p->kill(SIGTERM);
  (void)p->wait(5s);
}

TEST_F(DockerApiTest, PullFromALoopbackRegistryWithProgressThenRun) {
  if (::access(kDockerRegistryBin, X_OK) != 0)
    GTEST_SKIP() << "no " << kDockerRegistryBin << " (install docker-registry)";
  auto registry = LocalRegistry::start(scratch_dir() + "/registry");
  ASSERT_TRUE(registry.ok()) << registry.error().to_string();
  // The embedded image, pushed there by Vessel, then forgotten locally.
  std::string name = registry->host() + "/test/busybox:1";
  ASSERT_EQ(vessel({"image", "pull", kImage}).exit_code, 0);
  ASSERT_EQ(vessel({"image", "tag", kImage, name}).exit_code, 0);
  CliResult push = vessel({"image", "push", name});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  ASSERT_EQ(vessel({"image", "rm", name}).exit_code, 0);

  CliResult pull = docker({"pull", name});
  EXPECT_EQ(pull.exit_code, 0) << pull.err;
  EXPECT_TRUE(contains(pull.out, "1: Pulling from test/busybox")) << pull.out;
  EXPECT_TRUE(contains(pull.out, "Digest: sha256:")) << pull.out;
  EXPECT_TRUE(contains(pull.out, "Status: Downloaded newer image for " + name)) << pull.out;
  EXPECT_GE(registry->count_requests("GET /v2/test/busybox/manifests/"), 1u);
  CliResult again = docker({"pull", name});
  EXPECT_TRUE(contains(again.out, "Status: Image is up to date for " + name)) << again.out;
  CliResult run = docker({"run", "--rm", name, "echo", "pulled"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "pulled\n");
  CliResult missing = docker({"pull", registry->host() + "/test/nothing:1"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_FALSE(missing.err.empty());

  // Created and history come from the image's config.
  CliResult created = docker({"image", "inspect", "-f", "{{.Created}}", name});
  EXPECT_EQ(created.exit_code, 0) << created.err;
  EXPECT_FALSE(contains(created.out, "0001-01-01")) << created.out;
  CliResult history = docker({"history", "--no-trunc", name});
  EXPECT_EQ(history.exit_code, 0) << history.err;
  EXPECT_GE(lines(history.out).size(), 2u) << history.out;
  // save, rmi, load: the same image back.
  std::string tar = scratch_dir() + "/saved.tar";
  CliResult save = docker({"save", "-o", tar, name});
  EXPECT_EQ(save.exit_code, 0) << save.err;
  ASSERT_EQ(docker({"rmi", name}).exit_code, 0);
  CliResult load = docker({"load", "-i", tar});
  EXPECT_EQ(load.exit_code, 0) << load.err;
  EXPECT_TRUE(contains(load.out, "Loaded image: " + name)) << load.out;
  EXPECT_TRUE(contains(docker({"images", "--format", "{{.Repository}}:{{.Tag}}"}).out,
                       registry->host() + "/test/busybox:1\n"));
  // push under a new name, with Docker's progress.
  std::string pushed = registry->host() + "/test/again:2";
  ASSERT_EQ(docker({"tag", name, pushed}).exit_code, 0);
  CliResult dpush = docker({"push", pushed});
  EXPECT_EQ(dpush.exit_code, 0) << dpush.err;
  EXPECT_TRUE(contains(dpush.out, "The push refers to repository")) << dpush.out;
  EXPECT_TRUE(contains(dpush.out, "2: digest: sha256:")) << dpush.out;
  EXPECT_GE(registry->count_requests("PUT /v2/test/again/manifests/2"), 1u);
  CliResult nothing = docker({"push", registry->host() + "/test/absent:1"});
  EXPECT_NE(nothing.exit_code, 0);
  EXPECT_TRUE(contains(nothing.err, "does not exist locally")) << nothing.err;
  CliResult prune = docker({"image", "prune", "-f"});
  EXPECT_EQ(prune.exit_code, 0) << prune.err;
}

TEST_F(DockerApiTest, ComposeUpPsExecDownWithAVolumeAPortAndNames) {
  const char* compose = "/usr/bin/docker-compose";
  if (::access(compose, X_OK) != 0) GTEST_SKIP() << "docker-compose is not installed";
  std::string dir = scratch_dir() + "/project";
  ASSERT_TRUE(sys::make_dirs(dir, 0700).ok());
  // A web server and a client that reaches it by service name on the
  // project's network; a named volume; a published port.
  ASSERT_TRUE(sys::write_file_atomic(dir + "/docker-compose.yml", R"(version: "3"
services:
  web:
    image: vessel/busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && httpd -f -p 80 -h /www"]
    ports: ["8080:80"]
    volumes: ["data:/data"]
  client:
    image: vessel/busybox
    command: ["sh", "-c", "while ! wget -q -O /tmp/got http://web/; do sleep 1; done; cat /tmp/got; sleep 1000"]
volumes:
  data: {}
)")
                  .ok());
  auto run_compose = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{
        compose, "--project-directory", dir, "-f", dir + "/docker-compose.yml", "-p", "demo"};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions o;
    o.env = {"DOCKER_HOST=unix://" + socket_, "DOCKER_CONFIG=" + scratch_dir() + "/docker-config"};
    o.timeout = 180s;
    return run_process(argv, o);
  };
  CliResult up = run_compose({"up", "-d"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  CliResult ps = run_compose({"ps"});
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_EQ(lines(ps.out).size(), 4u) << ps.out;  // a header, a rule, two containers
  EXPECT_TRUE(contains(ps.out, "0.0.0.0:8080->80/tcp")) << ps.out;
  EXPECT_TRUE(wait_until(
      [&] {
        return contains(docker({"logs", "demo_client_1"}).out, "hello-from-web");
      },
      60s))
      << "the client did not reach web by name";
  // compose logs shows only containers whose HostConfig names a log driver.
  CliResult logs = run_compose({"logs", "--no-color", "client"});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_TRUE(contains(logs.out, "hello-from-web")) << logs.out;
  EXPECT_TRUE(contains(logs.out, "client_1")) << logs.out;
  CliResult exec = run_compose({"exec", "-T", "web", "cat", "/www/index.html"});
  EXPECT_EQ(exec.exit_code, 0) << exec.err;
  EXPECT_EQ(exec.out, "hello-from-web\n");
  auto got = http_get_eventually("127.0.0.1", 8080, 30s);
  EXPECT_EQ(got.value_or(""), "hello-from-web\n");
  EXPECT_EQ(docker({"volume", "ls", "-q"}).out, "demo_data\n");
  CliResult down = run_compose({"down", "-v"});
  EXPECT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(docker({"ps", "-a", "-q"}).out, "");
  EXPECT_EQ(docker({"volume", "ls", "-q"}).out, "");
  EXPECT_FALSE(contains(docker({"network", "ls"}).out, "demo_default"));
}

// One running container for the verbs that work on a running one: cp both
// ways (files, directories, "dir/."), export, top, pause/unpause, rename,
// update; then the same container stopped, where cp and export boot its VM
// for the copy and the resources can be updated.
TEST_F(DockerApiTest, CpExportTopPauseRenameUpdateOnOneContainer) {
  CliResult run = docker({"run", "-d", "--name", "box", kImage, "sh", "-c",
                          "mkdir -p /srv/tree/sub && echo deep > /srv/tree/sub/f && "
                          "echo ready && while true; do sleep 1; done"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_TRUE(wait_until([&] { return contains(docker({"logs", "box"}).out, "ready"); }, 60s));

  // Host -> container: a file into a directory, a directory under a new name.
  std::string host = scratch_dir() + "/host";
  ASSERT_TRUE(sys::make_dirs(host + "/dir/inner", 0755).ok());
  ASSERT_TRUE(sys::write_file_atomic(host + "/note.txt", "a note\n").ok());
  ASSERT_TRUE(sys::write_file_atomic(host + "/dir/inner/x", "x-content\n").ok());
  CliResult in_file = docker({"cp", host + "/note.txt", "box:/tmp/"});
  EXPECT_EQ(in_file.exit_code, 0) << in_file.err;
  CliResult in_dir = docker({"cp", host + "/dir", "box:/tmp/copied"});
  EXPECT_EQ(in_dir.exit_code, 0) << in_dir.err;
  EXPECT_EQ(docker({"exec", "box", "cat", "/tmp/note.txt", "/tmp/copied/inner/x"}).out,
            "a note\nx-content\n");
  // docker cp asks not to replace a directory with a file, nor the other
  // way round (noOverwriteDirNonDir): both are refused, nothing changes.
  ASSERT_TRUE(sys::make_dirs(host + "/flat", 0755).ok());
  ASSERT_TRUE(sys::write_file_atomic(host + "/flat/copied", "flat\n").ok());
  CliResult dir_by_file = docker({"cp", host + "/flat/copied", "box:/tmp/"});
  EXPECT_NE(dir_by_file.exit_code, 0);
  EXPECT_TRUE(contains(dir_by_file.err, "cannot overwrite directory 'copied' with a non-directory"))
      << dir_by_file.err;
  ASSERT_TRUE(sys::make_dirs(host + "/deep/note.txt", 0755).ok());
  CliResult file_by_dir = docker({"cp", host + "/deep/note.txt", "box:/tmp/"});
  EXPECT_NE(file_by_dir.exit_code, 0);
  EXPECT_TRUE(
      contains(file_by_dir.err, "cannot overwrite non-directory 'note.txt' with a directory"))
      << file_by_dir.err;
  EXPECT_EQ(docker({"exec", "box", "sh", "-c", "test -d /tmp/copied && cat /tmp/note.txt"}).out,
            "a note\n");
  // HEAD: the stat header has the file's real size ("a note\n": 7 bytes).
  std::string head =
      raw("HEAD /v1.41/containers/box/archive?path=/tmp/note.txt HTTP/1.1\r\nHost: "
          "x\r\nConnection: close\r\n\r\n");
  const std::string stat_name = "X-Docker-Container-Path-Stat: ";
  auto at = head.find(stat_name);
  ASSERT_NE(at, std::string::npos) << head;
  at += stat_name.size();
  RunOptions b64;
  b64.stdin_data = head.substr(at, head.find("\r\n", at) - at);
  json stat = json::parse(run_process({"/usr/bin/base64", "-d"}, b64).out, nullptr, false);
  EXPECT_EQ(stat.value("name", ""), "note.txt") << stat;
  EXPECT_EQ(stat.value("size", -1), 7) << stat;
  // Container -> host: a file, a directory's contents ("dir/.").
  CliResult out_file = docker({"cp", "box:/tmp/note.txt", host + "/back.txt"});
  EXPECT_EQ(out_file.exit_code, 0) << out_file.err;
  auto back = sys::read_file(host + "/back.txt");
  EXPECT_EQ(back.ok() ? *back : "", "a note\n");
  ASSERT_TRUE(sys::make_dirs(host + "/out", 0755).ok());
  CliResult out_dir = docker({"cp", "box:/srv/tree/.", host + "/out"});
  EXPECT_EQ(out_dir.exit_code, 0) << out_dir.err;
  auto deep = sys::read_file(host + "/out/sub/f");
  EXPECT_EQ(deep.ok() ? *deep : "", "deep\n");
  CliResult missing = docker({"cp", "box:/no/such", host + "/x"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(
      contains(missing.err, "No such container:path: box:/no/such"))  // the CLI's text for the 404
      << missing.err;
  EXPECT_TRUE(contains(raw("GET /v1.41/containers/box/archive?path=/no/such HTTP/1.1\r\nHost: "
                           "x\r\nConnection: close\r\n\r\n"),
                       "Could not find the file /no/such in container box"));
  // Raw: no path is 400; a file as the extraction point is 400.
  EXPECT_TRUE(contains(raw("HEAD /v1.41/containers/box/archive HTTP/1.1\r\nHost: x\r\n"
                           "Connection: close\r\n\r\n"),
                       "400 Bad Request"));
  std::string put =
      raw("PUT /v1.41/containers/box/archive?path=/tmp/note.txt HTTP/1.1\r\nHost: x\r\n"
          "Connection: close\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(contains(put, "extraction point is not a directory")) << put;

  // export: the whole root as a tar.
  CliResult exported = docker({"export", "-o", host + "/root.tar", "box"});
  EXPECT_EQ(exported.exit_code, 0) << exported.err;
  CliResult listing = run_process({"/usr/bin/tar", "tf", host + "/root.tar"}, {});
  EXPECT_TRUE(contains(listing.out, "tmp/copied/inner/x\n")) << listing.err;
  EXPECT_TRUE(contains(listing.out, "bin/busybox\n")) << listing.err;

  // top: the container's processes, without the ps that listed them.
  CliResult top = docker({"top", "box"});
  EXPECT_EQ(top.exit_code, 0) << top.err;
  EXPECT_TRUE(contains(top.out, "PID")) << top.out;
  EXPECT_TRUE(contains(top.out, "while true")) << top.out;
  EXPECT_FALSE(contains(top.out, "ps -ef")) << top.out;

  // pause/unpause: the VM freezes; ps and inspect say so.
  CliResult paused = docker({"pause", "box"});
  EXPECT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_TRUE(contains(docker({"ps", "--format", "{{.Status}}"}).out, "(Paused)"));
  EXPECT_EQ(docker({"inspect", "-f", "{{.State.Paused}} {{.State.Status}}", "box"}).out,
            "true paused\n");
  CliResult frozen = docker({"exec", "box", "true"});
  EXPECT_TRUE(contains(frozen.err, "is paused, unpause the container before exec")) << frozen.err;
  CliResult again = docker({"pause", "box"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_TRUE(contains(again.err, "is already paused")) << again.err;
  CliResult unpaused = docker({"unpause", "box"});
  EXPECT_EQ(unpaused.exit_code, 0) << unpaused.err;
  EXPECT_EQ(docker({"exec", "box", "echo", "thawed"}).out, "thawed\n");
  CliResult not_paused = docker({"unpause", "box"});
  EXPECT_TRUE(contains(not_paused.err, "is not paused")) << not_paused.err;

  // rename: the new name finds it; a taken name is a conflict.
  EXPECT_EQ(docker({"rename", "box", "crate"}).exit_code, 0);
  EXPECT_EQ(docker({"inspect", "-f", "{{.Name}}", "crate"}).out, "/crate\n");
  ASSERT_EQ(
      docker({"create", "--name", "other", kImage, "sh", "-c", "ip -o -4 addr show"}).exit_code, 0);
  CliResult taken = docker({"rename", "crate", "other"});
  EXPECT_NE(taken.exit_code, 0);
  EXPECT_TRUE(contains(taken.err, "is already in use")) << taken.err;

  // network connect/disconnect: refused while the VM runs; a created
  // container gets its NICs at the start.
  ASSERT_EQ(docker({"network", "create", "--subnet", "10.99.0.0/24", "side"}).exit_code, 0);
  CliResult hot = docker({"network", "connect", "side", "crate"});
  EXPECT_NE(hot.exit_code, 0);
  EXPECT_TRUE(contains(hot.err, "a VM's network interfaces are fixed when it boots")) << hot.err;
  CliResult cold = docker({"network", "connect", "--alias", "sidekick", "side", "other"});
  EXPECT_EQ(cold.exit_code, 0) << cold.err;
  CliResult twice = docker({"network", "connect", "side", "other"});
  EXPECT_TRUE(contains(twice.err, "is already connected to network side")) << twice.err;
  CliResult off = docker({"network", "disconnect", "bridge", "other"});
  EXPECT_EQ(off.exit_code, 0) << off.err;
  CliResult nets = docker({"inspect", "-f", "{{json .NetworkSettings.Networks}}", "other"});
  EXPECT_TRUE(contains(nets.out, "\"side\"")) << nets.out;
  EXPECT_TRUE(contains(nets.out, "sidekick")) << nets.out;
  CliResult wired = docker({"start", "-a", "other"});
  EXPECT_EQ(wired.exit_code, 0) << wired.err;
  EXPECT_TRUE(contains(wired.out, "eth0    inet 10.99.0.")) << wired.out;
  EXPECT_FALSE(contains(wired.out, "eth1")) << wired.out;

  // update: the restart policy while it runs; the limits too, within what
  // its VM was given at boot (512 MiB, 2 vCPUs): the guest's cgroup has
  // them at once and again after a restart.
  CliResult restart = docker({"update", "--restart", "on-failure:3", "crate"});
  EXPECT_EQ(restart.exit_code, 0) << restart.err;
  EXPECT_EQ(docker({"inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "crate"}).out,
            "on-failure\n");
  CliResult limits =
      docker({"update", "-m", "256m", "--cpus", "0.5", "--pids-limit", "64", "crate"});
  EXPECT_EQ(limits.exit_code, 0) << limits.err;
  const std::vector<std::string> cgroup = {"exec",
                                           "crate",
                                           "cat",
                                           "/sys/fs/cgroup/memory.max",
                                           "/sys/fs/cgroup/cpu.max",
                                           "/sys/fs/cgroup/pids.max"};
  EXPECT_EQ(docker(cgroup).out, "268435456\n50000 100000\n64\n");
  CliResult big = docker({"update", "-m", "1g", "crate"});
  EXPECT_NE(big.exit_code, 0);
  EXPECT_TRUE(contains(big.err,
                       "cannot update Memory of running container crate: 1024 MiB is "
                       "more than the 512 MiB its VM was given at boot"))
      << big.err;
  CliResult cpus = docker({"update", "--cpus", "3", "crate"});
  EXPECT_TRUE(contains(cpus.err, "cannot update NanoCpus of running container crate: 3 CPUs"))
      << cpus.err;
  EXPECT_EQ(docker({"restart", "-t", "1", "crate"}).exit_code, 0);
  EXPECT_EQ(docker(cgroup).out, "268435456\n50000 100000\n64\n");
  EXPECT_EQ(
      docker({"inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}", "crate"}).out,
      "268435456 500000000\n");
  // --cpu-quota/--cpu-period: the CPU share they make (75 ms per 50 ms).
  CliResult quota = docker({"update", "--cpu-quota", "75000", "--cpu-period", "50000", "crate"});
  EXPECT_EQ(quota.exit_code, 0) << quota.err;
  EXPECT_EQ(docker({"exec", "crate", "cat", "/sys/fs/cgroup/cpu.max"}).out, "150000 100000\n");
  // Paused, then stopped: the stop thaws it first; a paused guest takes
  // no update.
  EXPECT_EQ(docker({"pause", "crate"}).exit_code, 0);
  CliResult frozen_update = docker({"update", "--pids-limit", "32", "crate"});
  EXPECT_TRUE(contains(frozen_update.err, "is paused")) << frozen_update.err;
  CliResult stop = docker({"stop", "-t", "1", "crate"});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  CliResult mem_stopped = docker({"update", "-m", "300m", "crate"});  // the next VM's size
  EXPECT_EQ(mem_stopped.exit_code, 0) << mem_stopped.err;
  EXPECT_EQ(docker({"inspect", "-f", "{{.HostConfig.Memory}}", "crate"}).out, "314572800\n");
  // cp and export of the stopped container: its VM boots for the copy.
  CliResult stopped_cp = docker({"cp", "crate:/tmp/note.txt", host + "/again.txt"});
  EXPECT_EQ(stopped_cp.exit_code, 0) << stopped_cp.err;
  EXPECT_TRUE(sys::read_file(host + "/again.txt", 4096).ok());
  CliResult stopped_in = docker({"cp", host + "/again.txt", "crate:/again.txt"});
  EXPECT_EQ(stopped_in.exit_code, 0) << stopped_in.err;
  CliResult stopped_export = docker({"export", "-o", host + "/crate.tar", "crate"});
  EXPECT_EQ(stopped_export.exit_code, 0) << stopped_export.err;
  CliResult stopped_tar = run_process({"/bin/tar", "-tf", host + "/crate.tar"}, {});
  EXPECT_TRUE(contains(stopped_tar.out, "again.txt\n")) << stopped_tar.out;
  EXPECT_EQ(docker({"inspect", "-f", "{{.State.Status}}", "crate"}).out, "exited\n");
  // Events history: what happened to it, replayed with --since.
  std::string id = run.out.substr(0, run.out.find('\n'));
  CliResult history =
      docker({"events", "--since", "0", "--until", std::to_string(::time(nullptr) + 1), "--filter",
              "container=" + id, "--format", "{{.Action}}"});
  EXPECT_EQ(history.exit_code, 0) << history.err;
  EXPECT_TRUE(contains(history.out, "create\nstart\n")) << history.out;
  EXPECT_TRUE(contains(history.out, "die\n")) << history.out;
  EXPECT_TRUE(contains(history.out, "pause\nunpause\n")) << history.out;
  EXPECT_TRUE(contains(history.out, "rename\n")) << history.out;
  EXPECT_EQ(docker({"rm", "crate", "other"}).exit_code, 0);
}

TEST_F(DockerApiTest, DockerPyCreatesStartsWaitsExecsAndRemoves) {
  if (run_process({"/usr/bin/python3", "-c", "import docker"}, {}).exit_code != 0)
    GTEST_SKIP() << "python3-docker is not installed";
  std::string script = R"PY(
import io, sys, tarfile, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
ct = c.containers.create("vessel/busybox", ["sh", "-c", "echo hello; read x; echo got $x; exit 7"],
                         stdin_open=True, labels={"from": "docker-py"})
ct.start()
code, out = ct.exec_run(["sh", "-c", "echo exec-out; exit 2"])
print("exec", code, out.decode().strip())
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    info = tarfile.TarInfo("from-py")
    info.size = 3
    t.addfile(info, io.BytesIO(b"py\n"))
print("put", ct.put_archive("/tmp", buf.getvalue()))
bits, stat = ct.get_archive("/tmp/from-py")
got = tarfile.open(fileobj=io.BytesIO(b"".join(bits))).extractfile("from-py").read()
print("get", stat["name"], oct(stat["mode"] & 0o777), got.decode().strip())
sock = ct.attach_socket(params={"stdin": 1, "stream": 1})
sock._sock.sendall(b"line\n")
sock._sock.close()
res = ct.wait(timeout=120)
print("wait", res["StatusCode"])
print("logs", ct.logs().decode().replace("\n", "|"))
ct.remove()
print("left", len(c.containers.list(all=True)))
)PY";
  ASSERT_TRUE(sys::write_file_atomic(scratch_dir() + "/client.py", script).ok());
  CliResult py = run_process(
      {"/usr/bin/python3", scratch_dir() + "/client.py", "unix://" + socket_}, {.timeout = 300s});
  EXPECT_EQ(py.exit_code, 0) << py.err;
  EXPECT_TRUE(contains(py.out, "exec 2 exec-out\n")) << py.out << py.err;
  EXPECT_TRUE(contains(py.out, "put True\nget from-py 0o644 py\n")) << py.out << py.err;
  EXPECT_TRUE(contains(py.out, "wait 7\n")) << py.out << py.err;
  EXPECT_TRUE(contains(py.out, "logs hello|got line|\n")) << py.out << py.err;
  EXPECT_TRUE(contains(py.out, "left 0\n")) << py.out << py.err;
}

}  // namespace
}  // namespace vessel::test
