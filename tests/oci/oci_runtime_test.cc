// vessel-runtime under its real callers (issue 11): containerd 1.6's `ctr`
// with the io.containerd.runc.v2 shim told to run vessel-runtime instead of
// runc, and vessel-runtime's own command line as the shim calls it.
//
// One containerd serves the whole binary: it runs in a network and mount
// namespace of the test process's own (unshared in SetUpTestSuite), with
// its root, state, socket and the runc root in a temporary directory, the
// CRI plugin disabled. The image is the embedded vessel/busybox, written
// by `vessel image save` and imported with `ctr image import`.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/cli_runner.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr const char* kImage = "docker.io/vessel/busybox:latest";
constexpr const char* kNamespace = "test";

std::string dir_of(const std::string& path) {
  return path.substr(0, path.rfind('/'));
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string describe(const CliResult& r) {
  return "exit " + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") +
         "\nstdout: " + r.out + "\nstderr: " + r.err;
}

// Everything this binary shares: the temp directory, the namespaces, the
// containerd daemon.
struct Shared {
  std::string skip;  // why the tests cannot run, or ""
  std::string base, runtime, runc_root, address;
  pid_t containerd = 0;
};
Shared* g_shared = nullptr;

class OciRuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_shared = new Shared;
    Shared& s = *g_shared;
    if (::geteuid() != 0) {
      s.skip = "needs root (containerd, virtio-fs)";
      return;
    }
    if (auto reason = vm_unavailable_reason()) {
      s.skip = *reason;
      return;
    }
    s.runtime = dir_of(paths().vessel) + "/vessel-runtime";
    if (!exists(s.runtime)) {
      s.skip = "vessel-runtime is not built (" + s.runtime + ")";
      return;
    }
    // Our own network and mount namespaces: containerd's mounts and the
    // containers' lo stay out of the host's, and vanish with this process.
    if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
      s.skip = std::string("unshare: ") + std::strerror(errno);
      return;
    }
    // A /run of our own: containerd's fifo and shim socket directories,
    // Podman's network namespaces and vessel-runtime's default root (which
    // Podman uses) are made there and vanish with the namespace.
    if (::mount("tmpfs", "/run", "tmpfs", 0, "mode=755") != 0) {
      s.skip = std::string("mount a tmpfs on /run: ") + std::strerror(errno);
      return;
    }
    // The same for what Podman and CNI keep under /var/lib (the blob info
    // cache, host-local IPAM leases and libcni's results): the directories
    // are made if missing (left empty on the host), and covered here.
    for (const char* dir : {"/var/lib/containers", "/var/lib/cni"}) {
      ::mkdir(dir, 0700);
      if (::mount("tmpfs", dir, "tmpfs", 0, "mode=700") != 0) {
        s.skip = std::string("mount a tmpfs on ") + dir + ": " + std::strerror(errno);
        return;
      }
    }
    (void)run_process({"/usr/sbin/ip", "link", "set", "lo", "up"}, {});
    // Reap the relays (the pid-file processes) when vessel-runtime exits,
    // as containerd's shim and conmon do.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    char tmpl[] = "/tmp/vessel-oci-test-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      s.skip = "mkdtemp failed";
      return;
    }
    s.base = tmpl;
    s.runc_root = s.base + "/runc";
    s.address = s.base + "/containerd.sock";
  }

  static void TearDownTestSuite() {
    if (!g_shared) return;
    if (g_shared->containerd > 0) {
      ::kill(g_shared->containerd, SIGTERM);
      for (int i = 0; i < 100 && ::waitpid(g_shared->containerd, nullptr, WNOHANG) == 0; ++i)
        std::this_thread::sleep_for(100ms);
      ::kill(g_shared->containerd, SIGKILL);
      ::waitpid(g_shared->containerd, nullptr, 0);
    }
    // Whatever is left (a failed test): the shims and their children.
    for (int pid : find_process_ids({"containerd-shim-runc-v2", "vessel-runtime", "vessel-monitor",
                                     "qemu-system-x86_64", "virtiofsd"},
                                    g_shared->base))
      ::kill(pid, SIGKILL);
    if (!g_shared->base.empty())
      (void)run_process({"/bin/rm", "-rf", "--one-file-system", g_shared->base}, {});
    delete g_shared;
    g_shared = nullptr;
  }

  void SetUp() override {
    if (!g_shared->skip.empty()) GTEST_SKIP() << g_shared->skip;
  }

  // Starts containerd and imports the image, once, for the tests that need it.
  void need_containerd() {
    Shared& s = *g_shared;
    if (s.containerd > 0) return;
    if (!exists("/usr/bin/containerd") || !exists("/usr/bin/ctr") ||
        !exists("/usr/bin/containerd-shim-runc-v2"))
      GTEST_SKIP() << "containerd, ctr or containerd-shim-runc-v2 is not installed";
    write_text(s.base + "/containerd.toml",
               "version = 2\n"
               "root = \"" +
                   s.base +
                   "/root\"\n"
                   "state = \"" +
                   s.base +
                   "/state\"\n"
                   "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
                   "[grpc]\n  address = \"" +
                   s.address +
                   "\"\n"
                   "[ttrpc]\n  address = \"" +
                   s.base +
                   "/containerd.ttrpc.sock\"\n"
                   "[debug]\n  address = \"\"\n"
                   "[metrics]\n  address = \"\"\n");
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int log = ::open((s.base + "/containerd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::setenv("VESSEL_ACCEL", "tcg", 1);
      ::execl("/usr/bin/containerd", "containerd", "--config",
              (s.base + "/containerd.toml").c_str(), nullptr);
      ::_exit(127);
    }
    s.containerd = pid;
    for (int i = 0; i < 100 && !exists(s.address); ++i)
      std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(exists(s.address)) << "containerd did not start:\n"
                                   << read_text(s.base + "/containerd.log");
    std::string archive = need_archive();
    ASSERT_FALSE(archive.empty());
    auto imported = ctr({"image", "import", archive});
    ASSERT_EQ(imported.exit_code, 0) << describe(imported);
    auto listed = ctr({"image", "ls", "-q"});
    ASSERT_NE(listed.out.find(kImage), std::string::npos) << describe(listed);
  }

  // The embedded image as `vessel image save` writes it (made once).
  std::string need_archive() {
    std::string archive = g_shared->base + "/busybox.tar";
    if (exists(archive)) return archive;
    auto saved = run_process({paths().vessel, "--root", g_shared->base + "/vessel", "image", "save",
                              "-o", archive, "vessel/busybox"},
                             {.env = {"VESSEL_SHARE_DIR=" + paths().share}});
    EXPECT_EQ(saved.exit_code, 0) << describe(saved);
    return saved.exit_code == 0 ? archive : "";
  }

  // Podman with its storage, run root and configuration in the test's
  // directory (containers.conf: cgroupfs, file events, and no default
  // ulimits: the hard nofile limit here is below Podman's default), and
  // vessel-runtime as its runtime. Loads the image once.
  void need_podman() {
    if (!exists("/usr/bin/podman") || !exists("/usr/bin/conmon"))
      GTEST_SKIP() << "podman or conmon is not installed";
    std::string conf = g_shared->base + "/containers.conf";
    if (exists(conf)) return;
    write_text(conf,
               "[containers]\ndefault_ulimits = []\n"
               "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n");
    std::string archive = need_archive();
    ASSERT_FALSE(archive.empty());
    auto loaded = podman({"load", "-i", archive});
    ASSERT_EQ(loaded.exit_code, 0) << describe(loaded);
  }

  CliResult podman(const std::vector<std::string>& args, RunOptions o = {}) {
    const std::string& b = g_shared->base;
    std::vector<std::string> argv = {"/usr/bin/podman", "--root",          b + "/podman/storage",
                                     "--runroot",       b + "/podman/run", "--tmpdir",
                                     b + "/podman/tmp", "--runtime",       g_shared->runtime};
    argv.insert(argv.end(), args.begin(), args.end());
    o.env.push_back("CONTAINERS_CONF=" + b + "/containers.conf");
    o.env.push_back("VESSEL_ACCEL=tcg");
    if (o.timeout == 120s) o.timeout = 180s;
    return run_process(argv, o);
  }

  /// Waits up to 10 s for `ctr task ls` to show a STOPPED task.
  void expect_a_task_stopped() {
    bool stopped = false;
    for (int i = 0; i < 100 && !stopped; ++i) {
      stopped = ctr({"task", "ls"}).out.find("STOPPED") != std::string::npos;
      if (!stopped) std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(stopped) << describe(ctr({"task", "ls"}));
  }

  CliResult ctr(const std::vector<std::string>& args, RunOptions o = {}) {
    std::vector<std::string> argv = {"/usr/bin/ctr", "--address", g_shared->address, "-n",
                                     kNamespace};
    argv.insert(argv.end(), args.begin(), args.end());
    if (o.timeout == 120s) o.timeout = 180s;
    return run_process(argv, o);
  }

  // `ctr run` with vessel-runtime in runc's place.
  CliResult ctr_run(const std::vector<std::string>& flags, const std::string& id,
                    const std::vector<std::string>& command, RunOptions o = {}) {
    std::vector<std::string> args = {"run", "--runc-binary", g_shared->runtime, "--runc-root",
                                     g_shared->runc_root};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back(kImage);
    args.push_back(id);
    args.insert(args.end(), command.begin(), command.end());
    return ctr(args, o);
  }

  // vessel-runtime with the test's runtime root.
  CliResult runtime(const std::vector<std::string>& args, const std::string& root,
                    RunOptions o = {}) {
    std::vector<std::string> argv = {g_shared->runtime, "--root", root};
    argv.insert(argv.end(), args.begin(), args.end());
    o.env.push_back("VESSEL_ACCEL=tcg");
    return run_process(argv, o);
  }

  // No VM process of this test's directory is left, and no state but the
  // (empty) store.
  // QEMUs of this test's vessel-runtime root. Other tests' have the same
  // path in a /run of their own, so a jailed QEMU counts only when the
  // runtime directory its environment names exists here.
  static size_t own_qemus(const std::string& root) {
    size_t n = 0;
    for (int pid : find_process_ids({"qemu-system-x86_64"}, root)) {
      std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
      if (!in) continue;
      std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      bool here = true;
      for (size_t at = 0; at < env.size();) {
        size_t end = env.find('\0', at);
        if (end == std::string::npos) end = env.size();
        std::string entry = env.substr(at, end - at);
        if (entry.rfind("VESSEL_RUNTIME_DIR=", 0) == 0)
          here = ::access(entry.substr(19).c_str(), F_OK) == 0;
        at = end + 1;
      }
      if (here) ++n;
    }
    return n;
  }

  void expect_nothing_left(const std::string& root) {
    std::vector<std::string> left;
    for (int i = 0; i < 50; ++i) {
      left = find_processes({"vessel-monitor", "qemu-system-x86_64", "virtiofsd"}, root);
      if (left.empty()) break;
      std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(left.empty()) << "left running: " << left.front();
    auto entries = run_process(
        {"/usr/bin/find", root, "-mindepth", "1", "-not", "-path", root + "/.vessel*"}, {});
    EXPECT_EQ(entries.out, "") << "runtime state left in " << root;
    auto containers =
        run_process({"/usr/bin/find", root + "/.vessel/containers", "-mindepth", "1"}, {});
    EXPECT_EQ(containers.out, "") << "container files left";
    auto run_dir = run_process({"/usr/bin/find", root + "/.vessel/run", "-mindepth", "1"}, {});
    EXPECT_EQ(run_dir.out, "") << "runtime directories left";
  }
};

// ---- containerd: what `ctr run` users see ----

TEST_F(OciRuntimeTest, CtrRunPrintsOutputAndExitCode) {
  need_containerd();
  auto hi = ctr_run({"--rm"}, "hi", {"echo", "hi"});
  EXPECT_EQ(hi.exit_code, 0) << describe(hi);
  EXPECT_EQ(hi.out, "hi\n") << describe(hi);
  auto three = ctr_run({"--rm"}, "three", {"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(three.exit_code, 3) << describe(three);
  EXPECT_EQ(three.out, "out\n");
  EXPECT_EQ(three.err, "err\n");
  // Killed by a signal: 128 + N, as with runc.
  auto killed = ctr_run({"--rm"}, "killed", {"sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(killed.exit_code, 137) << describe(killed);
  expect_nothing_left(g_shared->runc_root + "/" + kNamespace);
}

TEST_F(OciRuntimeTest, CtrRunWithTty) {
  need_containerd();
  // ctr's terminal is ours: the pty master goes to the shim over the
  // console socket, the window size reaches the guest's pty. ctr sends the
  // size only after `task start` returns (as with runc, whose pty is 0x0
  // until then), so a process that asks at once may see no size yet: busybox
  // stty then fails with a stale errno ("No child processes"). The process
  // waits for the size, up to 10 s.
  RunOptions o;
  o.pty = true;
  o.window = {33, 77};
  auto r = ctr_run({"--rm", "-t"}, "tty",
                   {"sh", "-c",
                    "tty; i=0; until s=$(stty size 2>/dev/null) && [ \"$s\" != '0 0' ]; do "
                    "i=$((i+1)); [ $i -gt 100 ] && break; sleep 0.1; done; echo \"$s\"; exit 4"},
                   o);
  EXPECT_EQ(r.exit_code, 4) << describe(r);
  EXPECT_NE(r.out.find("/dev/pts/0"), std::string::npos) << describe(r);
  EXPECT_NE(r.out.find("33 77"), std::string::npos) << describe(r);
  expect_nothing_left(g_shared->runc_root + "/" + kNamespace);
}

TEST_F(OciRuntimeTest, CtrTaskExecKillAndRemove) {
  need_containerd();
  // A counter the test can watch (a bind mount): it stops while paused.
  std::string dir = g_shared->base + "/counter";
  ::mkdir(dir.c_str(), 0755);
  auto started =
      ctr_run({"-d", "--mount", "type=bind,src=" + dir + ",dst=/tmp,options=rbind:rw"}, "sleeper",
              {"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done"});
  ASSERT_EQ(started.exit_code, 0) << describe(started);
  auto tasks = ctr({"task", "ls"});
  EXPECT_NE(tasks.out.find("RUNNING"), std::string::npos) << describe(tasks);

  auto count = [&] { return std::atoi(read_text(dir + "/n").c_str()); };
  for (int i = 0; i < 50 && count() == 0; ++i)
    std::this_thread::sleep_for(100ms);
  auto paused = ctr({"task", "pause", "sleeper"});
  EXPECT_EQ(paused.exit_code, 0) << describe(paused);
  EXPECT_NE(ctr({"task", "ls"}).out.find("PAUSED"), std::string::npos);
  int frozen = count();
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(count(), frozen) << "the counter moved while the VM was paused";
  auto resumed = ctr({"task", "resume", "sleeper"});
  EXPECT_EQ(resumed.exit_code, 0) << describe(resumed);
  EXPECT_NE(ctr({"task", "ls"}).out.find("RUNNING"), std::string::npos);
  // `echo $i > /tmp/n` truncates the file before it writes: a read in
  // between sees it empty (0), which is not a count; wait for a larger one.
  for (int i = 0; i < 50 && count() <= frozen; ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_GT(count(), frozen) << "the counter did not move after resume";

  auto exec = ctr({"task", "exec", "--exec-id", "e1", "sleeper", "sh", "-c",
                   "echo from-exec; cat /proc/1/comm >&2; exit 5"});
  EXPECT_EQ(exec.exit_code, 5) << describe(exec);
  EXPECT_EQ(exec.out, "from-exec\n");
  // PID 1 is vessel-init (/init in the initramfs): the process runs in the
  // container's VM, not beside containerd.
  EXPECT_EQ(exec.err, "init\n") << describe(exec);

  // An exec'd process whose pid (its relay) gets SIGKILL from the shim
  // ends in the VM too.
  auto detached = ctr({"task", "exec", "--detach", "--exec-id", "e2", "sleeper", "sleep", "1000"});
  EXPECT_EQ(detached.exit_code, 0) << describe(detached);
  auto killed = ctr({"task", "kill", "--exec-id", "e2", "-s", "SIGKILL", "sleeper"});
  EXPECT_EQ(killed.exit_code, 0) << describe(killed);
  CliResult ps;
  for (int i = 0; i < 30; ++i) {
    ps = ctr({"task", "exec", "--exec-id", "ps" + std::to_string(i), "sleeper", "ps"});
    if (ps.out.find("sleep 1000") == std::string::npos) break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(ps.out.find("sleep 1000"), std::string::npos) << describe(ps);
  EXPECT_NE(ps.out.find("sh -c"), std::string::npos) << describe(ps);

  auto kill = ctr({"task", "kill", "sleeper"});  // SIGTERM
  EXPECT_EQ(kill.exit_code, 0) << describe(kill);
  expect_a_task_stopped();
  auto rm_task = ctr({"task", "rm", "sleeper"});
  EXPECT_EQ(rm_task.exit_code, 0) << describe(rm_task);
  auto rm_container = ctr({"container", "rm", "sleeper"});
  EXPECT_EQ(rm_container.exit_code, 0) << describe(rm_container);
  expect_nothing_left(g_shared->runc_root + "/" + kNamespace);
}

// ---- Podman: `podman --runtime vessel-runtime` ----

TEST_F(OciRuntimeTest, PodmanRunWithFlags) {
  need_podman();
  std::string data = g_shared->base + "/podman-data";
  ::mkdir(data.c_str(), 0755);
  write_text(data + "/f", "from-host\n");
  // --network none: Podman's namespace then has only lo, which the VM has.
  auto r = podman({"run", "--rm", "--network", "none", "-e", "FOO=bar", "-w", "/etc", "-u",
                   "1000:1000", "-v", data + ":/data", "--memory", "64m", kImage, "sh", "-c",
                   "echo $FOO; pwd; id -u; cat /data/f; cat /sys/fs/cgroup/memory.max; exit 3"});
  EXPECT_EQ(r.exit_code, 3) << describe(r);
  EXPECT_EQ(r.out, "bar\n/etc\n1000\nfrom-host\n67108864\n") << describe(r);
}

TEST_F(OciRuntimeTest, PodmanExecStopLogs) {
  need_podman();
  auto started = podman({"run", "-d", "--name", "p1", "--network", "none", kImage, "sh", "-c",
                         "trap 'echo got-term; exit 0' TERM; echo started; "
                         "while true; do sleep 0.2; done"});
  ASSERT_EQ(started.exit_code, 0) << describe(started);
  auto exec = podman({"exec", "p1", "sh", "-c", "echo in-exec; exit 6"});
  EXPECT_EQ(exec.exit_code, 6) << describe(exec);
  EXPECT_EQ(exec.out, "in-exec\n");
  auto stop = podman({"stop", "-t", "20", "p1"});
  EXPECT_EQ(stop.exit_code, 0) << describe(stop);
  auto code = podman({"inspect", "p1", "--format", "{{.State.ExitCode}}"});
  EXPECT_EQ(code.out, "0\n") << "the trap handler did not run: " << describe(code);
  auto logs = podman({"logs", "p1"});
  EXPECT_EQ(logs.out, "started\ngot-term\n") << describe(logs);
  auto rm = podman({"rm", "p1"});
  EXPECT_EQ(rm.exit_code, 0) << describe(rm);
  // Podman gives no --root: vessel-runtime's default, in our /run.
  expect_nothing_left("/run/vessel-runtime");
}

// /proc/<pid>/status's capability lines and NoNewPrivs, keyed by name.
std::map<std::string, std::string> status_lines(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    size_t v = line.find_first_not_of(" \t", colon + 1);
    out[line.substr(0, colon)] = v == std::string::npos ? "" : line.substr(v);
  }
  return out;
}

// A config.json capability list as /proc/<pid>/status prints the set.
std::string status_mask(const Json& names) {
  static const std::map<std::string, int> kNumbers = {
      {"CAP_CHOWN", 0},      {"CAP_DAC_OVERRIDE", 1}, {"CAP_FOWNER", 3},
      {"CAP_FSETID", 4},     {"CAP_KILL", 5},         {"CAP_SETGID", 6},
      {"CAP_SETUID", 7},     {"CAP_SETPCAP", 8},      {"CAP_NET_BIND_SERVICE", 10},
      {"CAP_NET_ADMIN", 12}, {"CAP_NET_RAW", 13},     {"CAP_SYS_CHROOT", 18},
      {"CAP_MKNOD", 27},     {"CAP_AUDIT_WRITE", 29}, {"CAP_SETFCAP", 31}};
  uint64_t mask = 0;
  for (const auto& n : names) {
    auto it = kNumbers.find(n.get<std::string>());
    if (it == kNumbers.end())
      ADD_FAILURE() << "the test does not know " << n;
    else
      mask |= 1ull << it->second;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(mask));
  return buf;
}

TEST_F(OciRuntimeTest, PodmanCapabilitiesAndNoNewPrivileges) {
  need_podman();
  // Podman's own default set, less CHOWN, plus NET_ADMIN; the process in the
  // VM must have exactly what config.json says, in the main process and in
  // an exec'd one.
  const std::string show = "grep -E '^(Cap|NoNewPrivs)' /proc/self/status";
  auto started = podman({"run", "-d", "--name", "caps", "--network", "none", "--cap-drop", "CHOWN",
                         "--cap-add", "NET_ADMIN", "--security-opt", "no-new-privileges", kImage,
                         "sh", "-c", show + "; sleep 1000"});
  ASSERT_EQ(started.exit_code, 0) << describe(started);
  auto config_path = podman({"inspect", "caps", "--format", "{{.OCIConfigPath}}"});
  ASSERT_EQ(config_path.exit_code, 0) << describe(config_path);
  Json config =
      Json::parse(read_text(config_path.out.substr(0, config_path.out.find('\n'))), nullptr, false);
  ASSERT_TRUE(config.is_object()) << config_path.out;
  const Json& caps = config["process"]["capabilities"];
  ASSERT_TRUE(caps.is_object()) << config.dump();
  EXPECT_EQ(config["process"].value("noNewPrivileges", false), true);

  std::map<std::string, std::string> main;
  for (int i = 0; i < 100 && main.count("NoNewPrivs") == 0; ++i) {
    main = status_lines(podman({"logs", "caps"}).out);
    if (main.count("NoNewPrivs") == 0) std::this_thread::sleep_for(100ms);
  }
  auto exec = podman({"exec", "caps", "sh", "-c", show});
  EXPECT_EQ(exec.exit_code, 0) << describe(exec);
  for (auto [what, lines] :
       {std::pair<std::string, std::map<std::string, std::string>>{"main", main},
        {"exec", status_lines(exec.out)}}) {
    SCOPED_TRACE(what);
    // Root's sets after execve(2) are the bounding set (capabilities(7));
    // Podman gives effective = permitted = bounding, no inheritable.
    EXPECT_EQ(lines["CapBnd"], status_mask(caps["bounding"]));
    EXPECT_EQ(lines["CapEff"], status_mask(caps["effective"]));
    EXPECT_EQ(lines["CapPrm"], status_mask(caps["permitted"]));
    EXPECT_EQ(lines["CapInh"], status_mask(caps.value("inheritable", Json::array())));
    EXPECT_EQ(lines["CapAmb"], status_mask(caps.value("ambient", Json::array())));
    EXPECT_EQ(lines["NoNewPrivs"], "1");
    uint64_t eff = std::strtoull(lines["CapEff"].c_str(), nullptr, 16);
    EXPECT_TRUE(eff & (1ull << 12)) << "no CAP_NET_ADMIN";
    EXPECT_FALSE(eff & (1ull << 0)) << "CAP_CHOWN kept";
  }
  // What the sets mean: without CAP_CHOWN root cannot give a file away.
  auto chown = podman({"exec", "caps", "sh", "-c", "touch /tmp/f && chown 1000 /tmp/f"});
  EXPECT_NE(chown.exit_code, 0) << describe(chown);
  auto rm = podman({"rm", "-f", "caps"});
  EXPECT_EQ(rm.exit_code, 0) << describe(rm);
}

TEST_F(OciRuntimeTest, PodmanUpdateChangesLimitsInTheVm) {
  need_podman();
  auto started = podman({"run", "-d", "--name", "upd", "--network", "none", "--memory", "256m",
                         kImage, "sleep", "1000"});
  ASSERT_EQ(started.exit_code, 0) << describe(started);
  const std::string show =
      "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max";
  auto before = podman({"exec", "upd", "sh", "-c", show});
  // Podman's default pids limit is 2048.
  EXPECT_EQ(before.out, "268435456\nmax 100000\n2048\n") << describe(before);

  // Podman 4.3 writes linux.resources to a file for `update --resources`.
  auto updated = podman(
      {"update", "--memory", "100m", "--cpu-quota", "50000", "--cpu-period", "100000", "upd"});
  EXPECT_EQ(updated.exit_code, 0) << describe(updated);
  // Podman has no --pids-limit for update: vessel-runtime's own flag, in
  // the root Podman uses (the default).
  auto id = podman({"inspect", "upd", "--format", "{{.Id}}"});
  std::string full_id = id.out.substr(0, id.out.find('\n'));
  // containerd's shim way first (linux.resources on stdin), then the flag.
  RunOptions json;
  json.stdin_data = R"({"pids": {"limit": 40}, "cpu": {"shares": 512}})";
  auto piped = runtime({"update", "-r", "-", full_id}, "/run/vessel-runtime", json);
  EXPECT_EQ(piped.exit_code, 0) << describe(piped);
  auto forty = podman({"exec", "upd", "cat", "/sys/fs/cgroup/pids.max"});
  EXPECT_EQ(forty.out, "40\n") << describe(forty);
  auto pids = runtime({"update", "--pids-limit", "50", full_id}, "/run/vessel-runtime");
  EXPECT_EQ(pids.exit_code, 0) << describe(pids);
  auto after = podman({"exec", "upd", "sh", "-c", show});
  EXPECT_EQ(after.out, "104857600\n50000 100000\n50\n") << describe(after);

  // Beyond the VM: a clear error, and nothing changes.
  auto too_much = podman({"update", "--memory", "1g", "upd"});
  EXPECT_NE(too_much.exit_code, 0) << describe(too_much);
  EXPECT_NE(too_much.err.find("memory limit 1024 MiB is above the VM's 256 MiB"), std::string::npos)
      << describe(too_much);
  auto cpus = runtime({"update", "--cpu-quota", "900000", full_id}, "/run/vessel-runtime");
  EXPECT_NE(cpus.exit_code, 0);
  EXPECT_NE(cpus.err.find("more than the VM's"), std::string::npos) << describe(cpus);
  auto unchanged = podman({"exec", "upd", "sh", "-c", show});
  EXPECT_EQ(unchanged.out, after.out) << describe(unchanged);
  auto rm = podman({"rm", "-f", "upd"});
  EXPECT_EQ(rm.exit_code, 0) << describe(rm);
}

// Podman 4.3's pods: its infra container carries no CRI annotation and runs
// its command (here busybox's top, as no catatonit is installed), and the
// pod's containers name it in io.kubernetes.cri-o.SandboxID (and its
// /proc/<pid>/ns/{net,ipc,uts}): they join the infra container's VM.
TEST_F(OciRuntimeTest, PodmanPodContainersShareOneVm) {
  need_podman();
  auto created = podman({"pod", "create", "--name", "pod2", "--network", "none", "--infra-image",
                         kImage, "--infra-command", "top"});
  ASSERT_EQ(created.exit_code, 0) << describe(created);
  auto web = podman({"run", "-d", "--pod", "pod2", "--name", "web2", kImage, "sh", "-c",
                     "echo from-web > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"});
  ASSERT_EQ(web.exit_code, 0) << describe(web);
  auto side = podman({"run", "--rm", "--pod", "pod2", kImage, "sh", "-c",
                      "for i in $(seq 100); do wget -qO- http://127.0.0.1:8080/ && break; "
                      "sleep 0.2; done; exit 5"});
  EXPECT_EQ(side.exit_code, 5) << describe(side);
  EXPECT_EQ(side.out, "from-web\n") << describe(side);
  EXPECT_EQ(own_qemus("/run/vessel-runtime"), 1u);
  auto exec = podman({"exec", "web2", "cat", "/tmp/index.html"});
  EXPECT_EQ(exec.out, "from-web\n") << describe(exec);
  auto rm = podman({"pod", "rm", "-f", "pod2"});
  EXPECT_EQ(rm.exit_code, 0) << describe(rm);
  expect_nothing_left("/run/vessel-runtime");
}

TEST_F(OciRuntimeTest, PodmanNetworkAndPublishedPort) {
  need_podman();
  if (!exists("/usr/bin/curl") || !exists("/usr/sbin/tc"))
    GTEST_SKIP() << "curl or tc is not installed";
  // Podman's default network (CNI's bridge plugin, config in our directory,
  // the bridge and its rules in our namespace): the VM joins the
  // container's namespace and has its address; -p reaches it too.
  std::string www = g_shared->base + "/podman-www";
  ::mkdir(www.c_str(), 0755);
  write_text(www + "/index.html", "via podman's network\n");
  std::string cni = "--cni-config-dir=" + g_shared->base + "/cni";
  auto started = podman({cni, "run", "-d", "--name", "web", "-p", "8080:80", "-v", www + ":/www",
                         kImage, "httpd", "-f", "-p", "80", "-h", "/www"});
  ASSERT_EQ(started.exit_code, 0) << describe(started);
  auto ip = podman({cni, "inspect", "web", "--format", "{{.NetworkSettings.IPAddress}}"});
  std::string address = ip.out.substr(0, ip.out.find('\n'));
  ASSERT_FALSE(address.empty()) << describe(ip);
  for (const std::string& url :
       {"http://" + address + "/index.html", std::string("http://127.0.0.1:8080/index.html")}) {
    CliResult got;
    for (int i = 0; i < 30; ++i) {
      got = run_process({"/usr/bin/curl", "-sS", "-m", "3", url}, {});
      if (got.exit_code == 0) break;
      std::this_thread::sleep_for(300ms);
    }
    EXPECT_EQ(got.out, "via podman's network\n") << url << ": " << describe(got);
  }
  auto rm = podman({cni, "rm", "-f", "web"});
  EXPECT_EQ(rm.exit_code, 0) << describe(rm);
  expect_nothing_left("/run/vessel-runtime");
}

// ---- vessel-runtime's own command line, as the shim drives it ----

// Runs `argv` with stdin from /dev/null and stdout and stderr to files, and
// waits for it alone: the relay that `create` leaves behind keeps them open
// (run_process would wait for it too). Returns the exit status.
int run_to_files(const std::vector<std::string>& argv, const std::string& out,
                 const std::string& err) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int in = ::open("/dev/null", O_RDONLY);
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(in, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::setenv("VESSEL_ACCEL", "tcg", 1);
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A bundle whose root is the busybox fixture (read-only) and that writes
// to a bind-mounted scratch directory.
std::string make_bundle(const std::string& dir, const std::string& script) {
  ::mkdir(dir.c_str(), 0700);
  std::string out = dir + "/out";
  ::mkdir(out.c_str(), 0777);
  Json spec = {
      {"ociVersion", "1.0.2"},
      {"root", {{"path", paths().rootfs}, {"readonly", true}}},
      {"process",
       {{"args", {"sh", "-c", script}},
        {"cwd", "/"},
        {"env", {"PATH=/bin:/sbin:/usr/bin"}},
        {"user", {{"uid", 0}, {"gid", 0}}}}},
      {"hostname", "oci-test"},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/tmp"}, {"type", "bind"}, {"source", out}, {"options", {"rbind"}}}}},
      {"linux", {{"namespaces", {{{"type", "pid"}}, {{"type", "network"}}, {{"type", "mount"}}}}}},
  };
  write_text(dir + "/config.json", spec.dump());
  return out;
}

TEST_F(OciRuntimeTest, CreateHoldsUntilStart) {
  std::string root = g_shared->base + "/direct";
  std::string bundle = g_shared->base + "/bundle-hold";
  std::string out = make_bundle(bundle, "hostname > /tmp/ran; echo to-stdout; exit 7");
  std::string pid_file = bundle + "/pid";
  std::string out_file = bundle + "/stdout", err_file = bundle + "/stderr";
  int created = run_to_files(
      {g_shared->runtime, "--root", root, "--log", bundle + "/log.json", "--log-format", "json",
       "create", "--bundle", bundle, "--pid-file", pid_file, "c1"},
      out_file, err_file);
  ASSERT_EQ(created, 0) << read_text(err_file) << read_text(bundle + "/log.json");
  int pid = std::atoi(read_text(pid_file).c_str());
  ASSERT_GT(pid, 0);
  EXPECT_EQ(::kill(pid, 0), 0) << "the pid-file process is not alive";

  auto state = runtime({"state", "c1"}, root);
  ASSERT_EQ(state.exit_code, 0) << describe(state);
  Json j = Json::parse(state.out);
  EXPECT_EQ(j["status"], "created");
  EXPECT_EQ(j["pid"], pid);
  EXPECT_EQ(j["bundle"], bundle);
  EXPECT_EQ(j["id"], "c1");
  EXPECT_EQ(j["rootfs"], paths().rootfs);
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(exists(out + "/ran")) << "the process ran before start";

  auto refused = runtime({"delete", "c1"}, root);
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("not stopped"), std::string::npos) << describe(refused);

  auto started = runtime({"start", "c1"}, root);
  ASSERT_EQ(started.exit_code, 0) << describe(started);
  // The pid-file process ends with the container, with its exit status
  // (we are its subreaper, as the shim is).
  int status = 0;
  pid_t reaped = 0;
  for (int i = 0; i < 600 && reaped == 0; ++i) {
    reaped = ::waitpid(pid, &status, WNOHANG);
    if (reaped == 0) std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(reaped, pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 7);
  EXPECT_EQ(read_text(out + "/ran"), "oci-test\n");
  // Its stdout was ours (the runtime's stdout, as given to create).
  EXPECT_EQ(read_text(out_file), "to-stdout\n");

  Json after = Json::parse(runtime({"state", "c1"}, root).out);
  EXPECT_EQ(after["status"], "stopped");
  auto deleted = runtime({"delete", "c1"}, root);
  EXPECT_EQ(deleted.exit_code, 0) << describe(deleted);
  auto gone = runtime({"state", "c1"}, root);
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.err.find("container 'c1' does not exist"), std::string::npos) << describe(gone);
  expect_nothing_left(root);
}

// ---- pods: one VM per pod ----

// containerd 1.6's ctr does no CRI pods: the CRI's annotations are given
// with --annotation, as containerd's CRI plugin gives them. A sandbox, a
// server with its document root in a bind mount, and a sidecar that reaches
// it over 127.0.0.1: one VM, three roots.
TEST_F(OciRuntimeTest, CtrPodContainersShareOneVm) {
  need_containerd();
  const std::string root = g_shared->runc_root + "/" + kNamespace;
  auto in_pod = [](const std::string& type, std::vector<std::string> flags) {
    for (const std::string& a : {"io.kubernetes.cri.container-type=" + type,
                                 std::string("io.kubernetes.cri.sandbox-id=pod1")})
      flags.insert(flags.end(), {"--annotation", a});
    return flags;
  };
  // The sandbox runs no process: its command is never looked up.
  auto sandbox = ctr_run(in_pod("sandbox", {"-d"}), "pod1", {"/no/such/pause"});
  ASSERT_EQ(sandbox.exit_code, 0) << describe(sandbox);
  std::string www = g_shared->base + "/pod-www";
  ::mkdir(www.c_str(), 0755);
  write_text(www + "/index.html", "served in the pod\n");
  // Bound after the sandbox's VM booted: it reaches the VM's share anyway.
  auto web = ctr_run(
      in_pod("container", {"-d", "--mount", "type=bind,src=" + www + ",dst=/www,options=rbind:ro"}),
      "web", {"sh", "-c", "touch /tmp/only-web; exec httpd -f -p 8080 -h /www"});
  ASSERT_EQ(web.exit_code, 0) << describe(web);
  auto state = runtime({"state", "web"}, root);
  EXPECT_NE(state.out.find("\"running\""), std::string::npos) << describe(state);
  // Each container of the pod has its own cgroup and limits in the VM.
  auto update = runtime({"update", "--pids-limit", "42", "web"}, root);
  EXPECT_EQ(update.exit_code, 0) << describe(update);
  auto limit = ctr({"task", "exec", "--exec-id", "l1", "web", "cat", "/sys/fs/cgroup/pids.max"});
  EXPECT_EQ(limit.out, "42\n") << describe(limit);
  // More memory than the pod's VM has (1 GiB without the CRI's figure).
  auto too_big = ctr_run(
      in_pod("container", {"--rm", "--memory-limit", std::to_string(2ull << 30)}), "big", {"true"});
  EXPECT_NE(too_big.exit_code, 0);
  EXPECT_NE(too_big.err.find("2048 MiB is above the pod VM's 1024 MiB"), std::string::npos)
      << describe(too_big);
  auto sidecar = ctr_run(
      in_pod("container", {"--rm"}), "side",
      {"sh", "-c",
       "for i in $(seq 100); do wget -qO- http://127.0.0.1:8080/ && break; sleep 0.2; done; "
       "test -e /tmp/only-web && echo shared-root || echo own-root; "
       "touch /www/x 2>/dev/null || echo no-www; cat /sys/fs/cgroup/pids.max; exit 7"});
  EXPECT_EQ(sidecar.exit_code, 7) << describe(sidecar);
  EXPECT_EQ(sidecar.out, "served in the pod\nown-root\nno-www\nmax\n") << describe(sidecar);
  // One VM for the pod, whatever its containers.
  EXPECT_EQ(find_processes({"qemu-system-x86_64"}, root).size(), 1u);
  EXPECT_EQ(find_processes({"vessel-monitor"}, root).size(), 1u);
  // exec runs in the container's own root; the bind mount is read-only.
  auto exec = ctr(
      {"task", "exec", "--exec-id", "e1", "web", "sh", "-c", "ls /tmp/only-web && touch /www/x"});
  EXPECT_EQ(exec.out, "/tmp/only-web\n") << describe(exec);
  EXPECT_NE(exec.exit_code, 0) << describe(exec);
  auto del_running = runtime({"delete", "web"}, root);
  EXPECT_NE(del_running.exit_code, 0) << describe(del_running);
  // A container of the pod stops alone; the pod's VM stays.
  auto kill = ctr({"task", "kill", "web"});  // SIGTERM
  EXPECT_EQ(kill.exit_code, 0) << describe(kill);
  expect_a_task_stopped();
  EXPECT_EQ(ctr({"task", "rm", "web"}).exit_code, 0);
  EXPECT_EQ(ctr({"container", "rm", "web"}).exit_code, 0);
  EXPECT_EQ(find_processes({"qemu-system-x86_64"}, root).size(), 1u);
  // A container of the pod killed before it starts ends unstarted (137, as
  // its relay tells its caller); one whose command is missing fails its
  // start and exits 127; both leave the pod's VM running.
  auto reap = [](pid_t pid) {
    int status = -1;
    for (int i = 0; i < 300; ++i) {
      if (::waitpid(pid, &status, WNOHANG) == pid)
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      std::this_thread::sleep_for(100ms);
    }
    return -2;
  };
  for (const auto& [id, args] :
       {std::pair<std::string, Json>{"held", {"sh", "-c", "echo ran > /tmp/ran"}},
        {"missing", {"/no/such/command"}}}) {
    SCOPED_TRACE(id);
    std::string bundle = g_shared->base + "/bundle-pod-" + id;
    std::string out = make_bundle(bundle, "true");
    Json j = Json::parse(read_text(bundle + "/config.json"));
    j["process"]["args"] = args;
    j["annotations"] = {{"io.kubernetes.cri.container-type", "container"},
                        {"io.kubernetes.cri.sandbox-id", "pod1"}};
    write_text(bundle + "/config.json", j.dump());
    ASSERT_EQ(run_to_files({g_shared->runtime, "--root", root, "create", "--bundle", bundle,
                            "--pid-file", bundle + "/pid", id},
                           bundle + "/stdout", bundle + "/stderr"),
              0)
        << read_text(bundle + "/stderr");
    EXPECT_EQ(Json::parse(runtime({"state", id}, root).out)["status"], "created");
    pid_t relay = std::atoi(read_text(bundle + "/pid").c_str());
    if (id == "held") {
      EXPECT_EQ(runtime({"kill", id, "KILL"}, root).exit_code, 0);
      EXPECT_EQ(reap(relay), 137);
      EXPECT_FALSE(exists(out + "/ran")) << "the process ran though it was never started";
    } else {
      auto start = runtime({"start", id}, root);
      EXPECT_NE(start.exit_code, 0) << describe(start);
      EXPECT_EQ(reap(relay), 127);
    }
    EXPECT_EQ(Json::parse(runtime({"state", id}, root).out)["status"], "stopped");
    EXPECT_EQ(runtime({"delete", id}, root).exit_code, 0);
  }
  // Killing the sandbox powers the VM off, and its containers end with it.
  auto last = ctr_run(in_pod("container", {"-d"}), "last", {"sleep", "1000"});
  ASSERT_EQ(last.exit_code, 0) << describe(last);
  // The sandbox's pid (its relay) killed as a shim would kill it: its
  // guardian tells the monitor, which ends the pod.
  pid_t sandbox_pid = Json::parse(runtime({"state", "pod1"}, root).out).value("pid", 0);
  ASSERT_GT(sandbox_pid, 0);
  EXPECT_EQ(::kill(sandbox_pid, SIGKILL), 0);
  auto stopped_tasks = [&] {
    std::string out = ctr({"task", "ls"}).out;
    size_t n = 0;
    for (size_t at = out.find("STOPPED"); at != std::string::npos; at = out.find("STOPPED", at + 1))
      ++n;
    return n;
  };
  for (int i = 0; i < 100 && stopped_tasks() < 2; ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(stopped_tasks(), 2u) << describe(ctr({"task", "ls"}));
  auto last_state = runtime({"state", "last"}, root);
  EXPECT_NE(last_state.out.find("\"stopped\""), std::string::npos) << describe(last_state);
  for (const char* id : {"last", "pod1"}) {
    EXPECT_EQ(ctr({"task", "rm", id}).exit_code, 0) << id;
    EXPECT_EQ(ctr({"container", "rm", id}).exit_code, 0) << id;
  }
  expect_nothing_left(root);
}

TEST_F(OciRuntimeTest, NetworkNamespaceBecomesTheVms) {
  if (!exists("/usr/bin/curl") || !exists("/usr/sbin/tc"))
    GTEST_SKIP() << "curl or tc is not installed";
  // As CNI would: a namespace with one end of a veth pair and an address,
  // the other end here (our namespace stands for the host).
  auto sh = [](const std::string& script) {
    auto r = run_process({"/bin/sh", "-c", script}, {});
    EXPECT_EQ(r.exit_code, 0) << script << "\n" << describe(r);
    return r.exit_code == 0;
  };
  // Dual stack, and an extra route, as CNI plugins add them (nodad: the
  // addresses are usable at once, as CNI's are by the time a runtime runs).
  ASSERT_TRUE(
      sh("ip netns add pod1 && "
         "ip link add vpod1 type veth peer name eth0 netns pod1 && "
         "ip addr add 198.51.100.1/24 dev vpod1 && ip link set vpod1 up && "
         "ip addr add fd00:51::1/64 dev vpod1 nodad && "
         "ip -n pod1 addr add 198.51.100.2/24 dev eth0 && "
         "ip -n pod1 addr add fd00:51::2/64 dev eth0 nodad && ip -n pod1 link set eth0 up && "
         "ip -n pod1 link set lo up && ip -n pod1 route add default via 198.51.100.1 && "
         "ip -n pod1 route add 203.0.113.0/24 via 198.51.100.1 && "
         "ip -n pod1 -6 route add default via fd00:51::1"));
  std::string root = g_shared->base + "/netns";
  // A CRI pod's sandbox comes first: its VM takes the pod's interface, and
  // the pod's container joins that VM.
  std::string pause = g_shared->base + "/bundle-pause";
  make_bundle(pause, "sleep 1000");
  Json pause_spec = Json::parse(read_text(pause + "/config.json"));
  pause_spec["linux"]["namespaces"][1]["path"] = "/run/netns/pod1";
  pause_spec["annotations"]["io.kubernetes.cri.container-type"] = "sandbox";
  write_text(pause + "/config.json", pause_spec.dump());
  ASSERT_EQ(run_to_files({g_shared->runtime, "--root", root, "create", "--bundle", pause,
                          "--pid-file", pause + "/pid", "pause1"},
                         pause + "/stdout", pause + "/stderr"),
            0)
      << read_text(pause + "/stderr");
  auto pause_started = runtime({"start", "pause1"}, root);
  ASSERT_EQ(pause_started.exit_code, 0) << describe(pause_started);
  std::string bundle = g_shared->base + "/bundle-netns";
  std::string www = make_bundle(bundle, "httpd -f -p 80 -h /tmp");
  write_text(www + "/index.html", "served from the VM\n");
  Json spec = Json::parse(read_text(bundle + "/config.json"));
  spec["linux"]["namespaces"][1]["path"] = "/run/netns/pod1";
  Json plain = spec;
  spec["annotations"]["io.kubernetes.cri.container-type"] = "container";
  spec["annotations"]["io.kubernetes.cri.sandbox-id"] = "pause1";
  write_text(bundle + "/config.json", spec.dump());
  int created = run_to_files({g_shared->runtime, "--root", root, "create", "--bundle", bundle,
                              "--pid-file", bundle + "/pid", "n1"},
                             bundle + "/stdout", bundle + "/stderr");
  ASSERT_EQ(created, 0) << read_text(bundle + "/stderr");
  auto held = runtime({"state", "n1"}, root);
  EXPECT_NE(held.out.find("\"created\""), std::string::npos) << describe(held);
  auto started = runtime({"start", "n1"}, root);
  ASSERT_EQ(started.exit_code, 0) << describe(started);
  // The pod's address is the VM's: the server in the guest answers on it.
  CliResult got;
  for (int i = 0; i < 30; ++i) {
    got = run_process({"/usr/bin/curl", "-sS", "-m", "3", "http://198.51.100.2/index.html"}, {});
    if (got.exit_code == 0) break;
    std::this_thread::sleep_for(300ms);
  }
  EXPECT_EQ(got.out, "served from the VM\n") << describe(got);
  // Its IPv6 address too, and the namespace's extra routes are the guest's.
  CliResult got6 =
      run_process({"/usr/bin/curl", "-sS", "-m", "5", "-g", "http://[fd00:51::2]/index.html"}, {});
  EXPECT_EQ(got6.out, "served from the VM\n") << describe(got6);
  auto routes = runtime({"exec", "n1", "sh", "-c", "ip route; ip -6 route; ip -6 addr"}, root);
  EXPECT_EQ(routes.exit_code, 0) << describe(routes);
  EXPECT_NE(routes.out.find("203.0.113.0/24 via 198.51.100.1"), std::string::npos)
      << describe(routes);
  EXPECT_NE(routes.out.find("default via fd00:51::1"), std::string::npos) << describe(routes);
  EXPECT_NE(routes.out.find("inet6 fd00:51::2/64 scope global"), std::string::npos)
      << describe(routes);
  // A container of no pod cannot take the same interface.
  std::string bundle2 = g_shared->base + "/bundle-netns2";
  make_bundle(bundle2, "true");
  write_text(bundle2 + "/config.json", plain.dump());
  auto second = runtime({"create", "--bundle", bundle2, "n2"}, root);
  EXPECT_NE(second.exit_code, 0);
  EXPECT_NE(second.err.find("another container's VM may have joined it"), std::string::npos)
      << describe(second);
  // `kill` of the sandbox (any signal: it has no process) ends the pod.
  EXPECT_EQ(runtime({"kill", "pause1", "TERM"}, root).exit_code, 0);
  std::string pause_status;
  for (int i = 0; i < 100 && pause_status != "stopped"; ++i) {
    pause_status = Json::parse(runtime({"state", "pause1"}, root).out).value("status", "");
    if (pause_status != "stopped") std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(pause_status, "stopped");
  EXPECT_EQ(Json::parse(runtime({"state", "n1"}, root).out).value("status", ""), "stopped");
  EXPECT_EQ(runtime({"delete", "pause1"}, root).exit_code, 0);
  auto deleted = runtime({"delete", "--force", "n1"}, root);
  EXPECT_EQ(deleted.exit_code, 0) << describe(deleted);
  expect_nothing_left(root);
  // The tap lived as long as the VM.
  auto links = run_process({"/usr/sbin/ip", "-n", "pod1", "-o", "link"}, {});
  EXPECT_EQ(links.out.find("vt"), std::string::npos) << links.out;
  sh("ip netns del pod1");
}

TEST_F(OciRuntimeTest, KillBeforeStartEndsItUnstarted) {
  std::string root = g_shared->base + "/kill-created";
  std::string bundle = g_shared->base + "/bundle-kill";
  std::string out = make_bundle(bundle, "echo ran > /tmp/ran");
  std::string pid_file = bundle + "/pid";
  int created = run_to_files({g_shared->runtime, "--root", root, "create", "--bundle", bundle,
                              "--pid-file", pid_file, "c2"},
                             bundle + "/stdout", bundle + "/stderr");
  ASSERT_EQ(created, 0) << read_text(bundle + "/stderr");
  int pid = std::atoi(read_text(pid_file).c_str());
  ASSERT_GT(pid, 0);
  auto killed = runtime({"kill", "c2", "KILL"}, root);
  EXPECT_EQ(killed.exit_code, 0) << describe(killed);
  int status = 0;
  pid_t reaped = 0;
  for (int i = 0; i < 300 && reaped == 0; ++i) {
    reaped = ::waitpid(pid, &status, WNOHANG);
    if (reaped == 0) std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(reaped, pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 137) << "status " << status;
  EXPECT_FALSE(exists(out + "/ran")) << "the process ran though it was never started";
  EXPECT_EQ(Json::parse(runtime({"state", "c2"}, root).out)["status"], "stopped");
  // A second kill finds it gone, in the words containerd's shim looks for.
  auto again = runtime({"kill", "c2", "KILL"}, root);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("container not running"), std::string::npos) << describe(again);
  auto started = runtime({"start", "c2"}, root);
  EXPECT_NE(started.exit_code, 0) << describe(started);
  EXPECT_EQ(runtime({"delete", "c2"}, root).exit_code, 0);
  expect_nothing_left(root);
}

TEST_F(OciRuntimeTest, BadBundlesFailClearlyAndLeaveNothing) {
  std::string root = g_shared->base + "/errors";
  std::string bundle = g_shared->base + "/bundle-bad";
  make_bundle(bundle, "true");
  std::string good = read_text(bundle + "/config.json");
  auto create = [&](const std::string& config) {
    write_text(bundle + "/config.json", config);
    return runtime({"--log", bundle + "/log.json", "--log-format", "json", "create", "--bundle",
                    bundle, "--pid-file", bundle + "/pid", "bad"},
                   root);
  };
  auto last_log_error = [&] {
    std::string msg;
    std::istringstream lines(read_text(bundle + "/log.json"));
    for (std::string line; std::getline(lines, line);) {
      Json j = Json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << "not a JSON log line: " << line;
      if (!j.is_discarded() && j["level"] == "error") msg = j["msg"];
    }
    return msg;
  };

  auto malformed = create("{\"ociVersion\": ");
  EXPECT_NE(malformed.exit_code, 0);
  EXPECT_EQ(last_log_error(), "create 'bad': config.json: not valid JSON");

  Json j = Json::parse(good);
  j["root"]["path"] = bundle + "/no-such-root";
  auto missing = create(j.dump());
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_EQ(last_log_error(),
            "create 'bad': root.path: '" + bundle + "/no-such-root' does not exist");

  j = Json::parse(good);
  j["linux"]["namespaces"].push_back({{"type", "user"}});
  auto userns = create(j.dump());
  EXPECT_NE(userns.exit_code, 0);
  EXPECT_EQ(last_log_error(),
            "create 'bad': linux.namespaces[3]: user namespaces are not supported");
  EXPECT_NE(userns.err.find("user namespaces are not supported"), std::string::npos)
      << describe(userns);

  // A pod's container whose sandbox is not there.
  j = Json::parse(good);
  j["annotations"]["io.kubernetes.cri.container-type"] = "container";
  j["annotations"]["io.kubernetes.cri.sandbox-id"] = "no-such-pod";
  auto orphan = create(j.dump());
  EXPECT_NE(orphan.exit_code, 0);
  EXPECT_EQ(last_log_error(),
            "create 'bad': annotations: the pod's sandbox 'no-such-pod' is not a container of "
            "this runtime root that can take a pod's (create it first)");
  EXPECT_FALSE(exists(bundle + "/pid"));
  expect_nothing_left(root);
}

}  // namespace
}  // namespace vessel::test
