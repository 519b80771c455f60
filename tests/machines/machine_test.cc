// Machines (`vessel machine ...`) through the CLI, as a user drives them:
// a Debian image whose systemd boots as PID 1, with its user and the home
// shared at the same path, a unit that counts boots on the machine's own
// disk across restart, stop + start and a kill -9 of its monitor, pending
// settings, containers next to it, and removal that leaves nothing. Bad
// input (no init, too little memory, an unknown setting, a missing home)
// fails clearly and makes nothing.
//
// Design: the lifecycle is ONE test that walks the issue's steps in order
// (SCOPED_TRACE per step) on ONE machine. The steps are a sequence anyway
// (the boot counter needs the restarts before it), and each systemd boot
// under TCG costs seconds to tens of seconds. gtest_discover_tests runs
// every TEST in a process of its own, so a fixture shared through
// SetUpTestSuite would boot a machine per TEST, and sharing one across
// processes would need state on disk that outlives a failed or killed test
// and an order between tests that ctest does not keep. One test keeps one
// state root (VmTest's, removed with everything in it) and one cleanup
// path; a failed step ends it (ASSERT) where later steps depend on it.
// The bad-input checks are separate tests that boot nothing but the no-init
// image (which must fail at create, that is at its first boot).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/strings.h"
#include "containers/container_fixture.h"
#include "sys/fs.h"
#include "sys/process.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kSystemdImage = "vessel-test/debian-systemd";
constexpr const char* kNoInitImage = "vessel-test/no-init";
constexpr const char* kName = "dev";
constexpr uint64_t kMachineMemoryKib = 1u << 20;  // --memory 1g

// A systemd boot under TCG, the image load and a clean shutdown each fit in
// these with room to spare.
constexpr auto kBootTimeout = 180s;
constexpr auto kCommandTimeout = 60s;
// `machine stop -t`: a clean power-off takes a few seconds; the timeout
// only matters if the VM does not end by itself (then the monitor forces it).
constexpr const char* kStopSeconds = "15";

std::string machine_kernel() {
  const char* k = ::getenv("VESSEL_MACHINE_KERNEL");
  return k && *k ? std::string(k) : paths().share + "/kernel-machine";
}

std::string trimmed(const std::string& s) {
  return std::string(trim(s));
}

class MachineTest : public ContainerTest {
 protected:
  void SetUp() override {
    ContainerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (::geteuid() != 0) GTEST_SKIP() << "machines need root (virtio-fs, networking)";
    if (::access(machine_kernel().c_str(), R_OK) != 0)
      GTEST_SKIP() << "no machine kernel at '" << machine_kernel()
                   << "' (build the kernel-machine target or set VESSEL_MACHINE_KERNEL)";
  }

  // Machines are not containers: `rm -f --all` (ContainerTest's cleanup)
  // leaves them, so they are removed first.
  void TearDown() override {
    if (!state_root().empty() && ::access(state_root().c_str(), F_OK) == 0) {
      CliResult ls = machine({"ls", "-q"});
      for (const auto& name : lines(ls.out))
        machine({"rm", "-f", name}, 120s);
    }
    ContainerTest::TearDown();
  }

  /// `vessel --root <state root> machine ARGS...`, recorded for the report.
  CliResult machine(const std::vector<std::string>& args,
                    std::chrono::seconds timeout = kCommandTimeout) {
    std::vector<std::string> all{"machine"};
    all.insert(all.end(), args.begin(), args.end());
    return vessel(all, {.timeout = timeout});
  }
  /// `machine exec [OPTIONS] NAME COMMAND...`: as the machine's user unless
  /// OPTIONS has `--root`.
  CliResult mexec(const std::vector<std::string>& options, const std::vector<std::string>& command,
                  std::chrono::seconds timeout = kCommandTimeout) {
    std::vector<std::string> all{"exec"};
    all.insert(all.end(), options.begin(), options.end());
    all.push_back(kName);
    all.insert(all.end(), command.begin(), command.end());
    return machine(all, timeout);
  }
  CliResult mexec(const std::vector<std::string>& command) { return mexec({}, command); }
  CliResult root_sh(const std::string& script, std::chrono::seconds timeout = kCommandTimeout) {
    return mexec({"--root"}, {"sh", "-c", script}, timeout);
  }

  /// Waits until the boot has finished: systemd says running or degraded
  /// (then prints what failed). Fatal otherwise.
  void expect_booted() {
    CliResult state = mexec({"--root"}, {"systemctl", "is-system-running", "--wait"}, kBootTimeout);
    std::string s = trimmed(state.out);
    std::fprintf(stderr, "[state] systemctl is-system-running: %s\n", s.c_str());
    if (s == "degraded") {
      CliResult failed = mexec({"--root"}, {"systemctl", "--failed", "--no-pager"});
      std::fprintf(stderr, "machine is degraded; systemctl --failed:\n%s\n", failed.out.c_str());
    }
    ASSERT_TRUE(s == "running" || s == "degraded")
        << "systemctl is-system-running --wait: '" << state.out << "' (exit " << state.exit_code
        << ")\n"
        << state.err;
  }

  /// `machine inspect NAME`'s one object (null json and a failure if none).
  json machine_inspect(const std::string& name) {
    CliResult r = machine({"inspect", name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    if (!j.is_array() || j.size() != 1 || !j[0].is_object()) {
      ADD_FAILURE() << "machine inspect " << name << " printed no single object:\n" << r.out;
      return json();
    }
    return j[0];
  }
  /// `machine ls --format json`, parsed (an empty array and a failure if not).
  json machine_list() {
    CliResult r = machine({"ls", "--format", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    if (!j.is_array()) {
      ADD_FAILURE() << "machine ls --format json printed no array:\n" << r.out;
      return json::array();
    }
    return j;
  }
  std::string machine_state(const std::string& name) {
    for (const auto& m : machine_list())
      if (m.value("Name", "") == name) return m.value("State", "");
    return "";
  }

  /// A host program by name, run to completion.
  CliResult host(const std::vector<std::string>& argv, std::chrono::seconds timeout = 60s) {
    auto program = sys::find_program(argv.at(0));
    if (!program) {
      ADD_FAILURE() << argv[0] << " is not in PATH";
      return {};
    }
    std::vector<std::string> full = argv;
    full[0] = *program;
    return run_process(full, {.timeout = timeout});
  }

  /// Loads an OCI layout into the state root as `name`.
  void load_image(const std::string& layout, const std::string& name) {
    CliResult r = vessel({"image", "load", "-i", layout, "--name", name}, {.timeout = 300s});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  /// The names of the host's links (in this test's network namespace).
  std::vector<std::string> links() {
    std::vector<std::string> names;
    CliResult r = host({"ip", "-o", "link", "show"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (const auto& line : lines(r.out)) {
      // "7: vt0123456789ab0@if2: <...>" or "7: vt0123456789ab0: <...>"
      auto parts = split(line, ':');
      if (parts.size() < 2) continue;
      std::string name = trimmed(parts[1]);
      names.push_back(name.substr(0, name.find('@')));
    }
    return names;
  }

  /// The entries of <state root>/containers (none when it does not exist).
  std::vector<std::string> container_dirs() {
    std::vector<std::string> out;
    auto names = sys::list_dir(state_root() + "/containers");
    if (names.ok()) out = *names;
    return out;
  }

  /// Expects that a failed create made nothing: no machine, no container
  /// directory, no VM process.
  void expect_nothing_made() {
    CliResult ls = machine({"ls", "-q"});
    EXPECT_EQ(ls.exit_code, 0) << ls.err;
    EXPECT_EQ(ls.out, "") << "machine ls -q lists a machine";
    EXPECT_EQ(container_dirs(), std::vector<std::string>{}) << "left under <root>/containers";
    expect_no_leaks();
  }

  /// Prints how long a step took (for the report; never asserted).
  static void timing(const char* step, Clock::time_point since) {
    auto s = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
    std::fprintf(stderr, "[timing] %s: %.1f s\n", step, static_cast<double>(s) / 1000);
  }
};

TEST_F(MachineTest, LifecycleOfOneMachineFromCreateToRm) {
  auto t0 = Clock::now();
  const std::string home = scratch_dir() + "/home/tester";
  std::string id;

  {
    SCOPED_TRACE("the image: scripts/make-machine-image.sh, then image load");
    auto t = Clock::now();
    std::string script = std::string(VESSEL_TEST_SOURCE_DIR) + "/scripts/make-machine-image.sh";
    for (const char* tool : {"debootstrap", "umoci"})
      if (!sys::find_program(tool)) GTEST_SKIP() << tool << " is not installed (scripts/setup.sh)";
    // Instant when cached; under a minute with debootstrap on a cold cache
    // (a fast mirror), which this test's ctest TIMEOUT leaves room for.
    CliResult img = run_process({script, scratch_dir() + "/systemd-layout"}, {.timeout = 240s});
    ASSERT_EQ(img.exit_code, 0) << img.err;
    auto out = lines(img.out);
    ASSERT_FALSE(out.empty()) << img.err;
    ASSERT_NO_FATAL_FAILURE(load_image(out.back(), kSystemdImage));
    timing("image", t);
  }

  {
    SCOPED_TRACE("create --cpus 2 --memory 1g --user tester:4242:4242 --home DIR");
    auto t = Clock::now();
    ASSERT_TRUE(sys::make_dirs(home, 0755).ok());
    ASSERT_EQ(::chown(home.c_str(), 4242, 4242), 0);
    CliResult c = machine({"create", "--name", kName, "--cpus", "2", "--memory", "1g", "--user",
                           "tester:4242:4242", "--home", home, "--pull", "never", kSystemdImage},
                          kBootTimeout);
    ASSERT_EQ(c.exit_code, 0) << c.err;
    EXPECT_EQ(c.out, std::string(kName) + "\n");
    timing("create (until systemd answers)", t);
    t = Clock::now();
    ASSERT_NO_FATAL_FAILURE(expect_booted());
    timing("until is-system-running", t);

    json j = machine_inspect(kName);
    ASSERT_TRUE(j.is_object());
    id = j.value("Id", "");
    ASSERT_TRUE(is_full_id(id)) << j.dump(2);
    EXPECT_EQ(j["State"]["Status"], "running") << j.dump(2);
    EXPECT_EQ(j["Settings"]["cpus"], 2) << j.dump(2);
    EXPECT_EQ(j["User"]["Name"], "tester") << j.dump(2);
    EXPECT_EQ(j["User"]["Uid"], 4242) << j.dump(2);
    EXPECT_EQ(j["User"]["Home"], home) << j.dump(2);

    CliResult nproc = mexec({"nproc"});
    EXPECT_EQ(nproc.out, "2\n") << nproc.err;

    CliResult mem = mexec({"sh", "-c", "awk '/^MemTotal:/ {print $2}' /proc/meminfo"});
    auto kib = parse_u64(trimmed(mem.out));
    ASSERT_TRUE(kib.has_value()) << "MemTotal: '" << mem.out << "' " << mem.err;
    // MemTotal is the RAM less what the kernel keeps (its image, page
    // tables, crash reserve): a few percent of 1 GiB, never more than it.
    EXPECT_LE(*kib, kMachineMemoryKib) << "MemTotal above --memory 1g";
    EXPECT_GE(*kib, kMachineMemoryKib * 85 / 100) << "MemTotal far below --memory 1g";

    CliResult who = mexec({"id"});
    EXPECT_EQ(who.exit_code, 0) << who.err;
    EXPECT_TRUE(contains(who.out, "uid=4242(tester) gid=4242")) << who.out;
    CliResult as_root = mexec({"--root"}, {"id", "-u"});
    EXPECT_EQ(as_root.out, "0\n") << as_root.err;

    json list = machine_list();
    ASSERT_EQ(list.size(), 1u) << list.dump(2);
    EXPECT_EQ(list[0]["Name"], kName);
    EXPECT_EQ(list[0]["Id"], id);
    EXPECT_EQ(list[0]["State"], "running");
    EXPECT_EQ(list[0]["Settings"]["cpus"], 2) << list.dump(2);
    EXPECT_EQ(list[0]["Settings"]["memory"], "1GiB") << list.dump(2);
    CliResult table = machine({"ls"});
    EXPECT_TRUE(contains(table.out, kName)) << table.out;
  }

  {
    SCOPED_TRACE("the home, both ways, at the same path");
    ASSERT_TRUE(sys::write_file_atomic(home + "/from-host.txt", "written on the host\n").ok());
    CliResult read = mexec({"cat", home + "/from-host.txt"});
    EXPECT_EQ(read.out, "written on the host\n") << read.err;

    CliResult write = mexec({"-e", "GREETING=from the machine", "-w", home},
                            {"sh", "-c", "echo \"$GREETING\" > from-machine.txt && pwd"});
    EXPECT_EQ(write.exit_code, 0) << write.err;
    EXPECT_EQ(write.out, home + "\n") << "-w DIR";
    auto text = sys::read_file(home + "/from-machine.txt", 4096);
    ASSERT_TRUE(text.ok()) << "not on the host: " << text.error().to_string();
    EXPECT_EQ(*text, "from the machine\n");
    struct stat st;
    ASSERT_EQ(::stat((home + "/from-machine.txt").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 4242u);
    EXPECT_EQ(st.st_gid, 4242u);
  }

  // The host side's cgroup code where systemd manages the cgroups (as on
  // most hosts; these build machines have no systemd): run inside this
  // machine, it asks systemd for a delegated scope instead of making
  // cgroups itself (issue 13, systemd's delegation rules).
  {
    SCOPED_TRACE("host cgroup on a systemd host: a delegated scope in vessel.slice");
    std::string probe = home + "/host_cgroup_probe";
    auto binary = sys::read_file(VESSEL_HOST_CGROUP_PROBE);
    ASSERT_TRUE(binary.ok()) << binary.error().to_string();
    ASSERT_TRUE(sys::write_file_atomic(probe, *binary, 0755).ok());
    CliResult r = mexec({"--root"}, {probe, "probe1"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    std::map<std::string, std::string> kv;
    for (const auto& line : lines(r.out)) {
      auto eq = line.find('=');
      if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
    }
    EXPECT_EQ(kv["unit"], "vessel-probe1.scope") << r.out << r.err;
    EXPECT_EQ(kv["dir"], "/sys/fs/cgroup/vessel.slice/vessel-probe1.scope") << r.out;
    EXPECT_EQ(kv["memory.max"], std::to_string(300u << 20)) << r.out;
    EXPECT_EQ(kv["pids.max"], "100") << r.out;
    EXPECT_EQ(kv["cpu.weight"], "50") << r.out;
    EXPECT_EQ(kv["child"], "1") << "no cgroup could be made below the scope: not delegated";
    EXPECT_EQ(kv["show.Slice"], "vessel.slice") << r.out;
    EXPECT_EQ(kv["show.Delegate"], "yes") << r.out;
    EXPECT_EQ(kv["show.ActiveState"], "active") << r.out;
    EXPECT_EQ(kv["leave"], "ok") << r.out;
    ::unlink(probe.c_str());
    // Empty once the probe exited: systemd collects the scope.
    CliResult gone = root_sh(
        "for i in $(seq 50); do [ -e /sys/fs/cgroup/vessel.slice/vessel-probe1.scope ] || break;"
        " sleep 0.1; done; systemctl show -p LoadState vessel-probe1.scope;"
        " [ -e /sys/fs/cgroup/vessel.slice/vessel-probe1.scope ] && echo left || echo gone");
    EXPECT_EQ(gone.out, "LoadState=not-found\ngone\n") << gone.err;
  }

  // Counts boots since it was enabled: `enable --now` runs it once (1),
  // then every boot adds one. Written atomically and synced, so a crash
  // (the kill -9 below) cannot lose a count.
  {
    SCOPED_TRACE("a unit counting boots on the root disk");
    CliResult setup = root_sh(R"(set -e
cat > /usr/local/sbin/count-boot <<'EOF'
#!/bin/sh
n=$(cat /var/lib/boot-count 2>/dev/null || echo 0)
echo $((n + 1)) > /var/lib/boot-count.tmp
sync /var/lib/boot-count.tmp
mv /var/lib/boot-count.tmp /var/lib/boot-count
sync /var/lib
EOF
chmod 755 /usr/local/sbin/count-boot
cat > /etc/systemd/system/count-boot.service <<'EOF'
[Unit]
Description=Count the boots
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/count-boot
[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
systemctl enable --now count-boot.service 2>&1
)",
                              kBootTimeout);
    ASSERT_EQ(setup.exit_code, 0) << setup.out << setup.err;
    CliResult count = mexec({"--root"}, {"cat", "/var/lib/boot-count"});
    EXPECT_EQ(count.out, "1\n") << count.err;
  }

  {
    SCOPED_TRACE("set cpus=1: pending until a restart");
    CliResult set = machine({"set", kName, "cpus=1"});
    EXPECT_EQ(set.exit_code, 0) << set.err;
    EXPECT_TRUE(contains(set.out + set.err, "restart")) << "no word of a restart:\n"
                                                        << set.out << set.err;
    json j = machine_inspect(kName);
    EXPECT_EQ(j["Pending"], json({{"cpus", "1"}})) << j.dump(2);
    EXPECT_EQ(j["Settings"]["cpus"], 2) << j.dump(2);
    CliResult nproc = mexec({"nproc"});
    EXPECT_EQ(nproc.out, "2\n") << "applied before the restart; " << nproc.err;
  }

  {
    SCOPED_TRACE("restart: the count is 2, nproc 1, nothing pending");
    auto t = Clock::now();
    CliResult r = machine({"restart", "-t", kStopSeconds, kName}, kBootTimeout);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    timing("restart", t);
    ASSERT_NO_FATAL_FAILURE(expect_booted());
    CliResult count = mexec({"--root"}, {"cat", "/var/lib/boot-count"});
    EXPECT_EQ(count.out, "2\n") << count.err;
    CliResult nproc = mexec({"nproc"});
    EXPECT_EQ(nproc.out, "1\n") << nproc.err;
    json j = machine_inspect(kName);
    EXPECT_TRUE(j["Pending"].empty()) << j.dump(2);
    EXPECT_EQ(j["Settings"]["cpus"], 1) << j.dump(2);
  }

  {
    SCOPED_TRACE("stop + start: the count is 3");
    auto t = Clock::now();
    CliResult stop = machine({"stop", "-t", kStopSeconds, kName}, kBootTimeout);
    ASSERT_EQ(stop.exit_code, 0) << stop.err;
    timing("stop", t);
    EXPECT_EQ(machine_state(kName), "stopped");
    // The monitor may take a moment to exit after it has let go of the
    // machine (its lock), which is what `stop` waits for.
    std::vector<std::string> left;
    wait_until(
        [&] {
          left = find_processes(vm_process_names(), id.substr(0, 12));
          return left.empty();
        },
        5s);
    EXPECT_EQ(left, std::vector<std::string>{}) << "a stopped machine's processes";
    CliResult exec = mexec({"true"});
    EXPECT_NE(exec.exit_code, 0) << "exec into a stopped machine";
    EXPECT_TRUE(contains(exec.err, "not running")) << exec.err;
    t = Clock::now();
    CliResult start = machine({"start", kName}, kBootTimeout);
    ASSERT_EQ(start.exit_code, 0) << start.err;
    timing("start", t);
    ASSERT_NO_FATAL_FAILURE(expect_booted());
    CliResult count = mexec({"--root"}, {"cat", "/var/lib/boot-count"});
    EXPECT_EQ(count.out, "3\n") << count.err;
  }

  {
    SCOPED_TRACE("kill -9 of the monitor: stopped, then boots with its data");
    CliResult keep = root_sh("echo precious > /var/lib/precious && sync /var/lib/precious");
    ASSERT_EQ(keep.exit_code, 0) << keep.err;
    std::vector<int> monitors = find_process_ids({"vessel-monitor"}, id);
    ASSERT_EQ(monitors.size(), 1u)
        << "the machine's vessel-monitor --id " << id << ": "
        << testing::PrintToString(find_processes({"vessel-monitor"}, id));
    ASSERT_EQ(::kill(monitors[0], SIGKILL), 0);
    bool vm_gone = wait_until(
        [&] { return find_processes(vm_process_names(), id.substr(0, 12)).empty(); }, 15s);
    EXPECT_TRUE(vm_gone) << "outlived the monitor: "
                         << testing::PrintToString(find_processes(vm_process_names(), id));
    EXPECT_EQ(machine_state(kName), "stopped");
    auto t = Clock::now();
    CliResult start = machine({"start", kName}, kBootTimeout);
    ASSERT_EQ(start.exit_code, 0) << start.err;
    timing("start after kill -9", t);
    ASSERT_NO_FATAL_FAILURE(expect_booted());
    CliResult precious = mexec({"--root"}, {"cat", "/var/lib/precious"});
    // A damaged filesystem can return anything (another file's blocks): at
    // most a line of it in the message.
    EXPECT_TRUE(precious.out == "precious\n")
        << "/var/lib/precious after the crash: "
        << testing::PrintToString(precious.out.substr(0, 80))
        << (precious.out.size() > 80 ? "..." : "") << "; " << precious.err;
    CliResult count = mexec({"--root"}, {"cat", "/var/lib/boot-count"});
    EXPECT_TRUE(count.out == "4\n") << "the crashed boot's count survives and this one adds one: '"
                                    << count.out.substr(0, 80) << "'; " << count.err;
    EXPECT_EQ(machine_state(kName), "running");
  }

  {
    SCOPED_TRACE("a container next to the machine; rm -f --all leaves the machine");
    std::string cid = run_detached({kImage, "sleep", "1000"});
    ASSERT_FALSE(cid.empty());
    std::vector<std::string> ids = all_ids();
    EXPECT_EQ(ids, std::vector<std::string>{cid}) << "vessel ls -a lists the machine";
    CliResult ls = vessel({"ls", "-a"});
    EXPECT_FALSE(contains(ls.out, kName)) << ls.out;
    EXPECT_FALSE(contains(ls.out, id.substr(0, 12))) << ls.out;
    CliResult rm_all = vessel({"rm", "-f", "--all"}, {.timeout = 120s});
    EXPECT_EQ(rm_all.exit_code, 0) << rm_all.err;
    expect_gone(cid);
    EXPECT_EQ(all_ids(), std::vector<std::string>{});
    CliResult mls = machine({"ls", "-q"});
    EXPECT_EQ(mls.out, std::string(kName) + "\n") << "rm -f --all took the machine";
    EXPECT_EQ(machine_state(kName), "running");
    CliResult alive = mexec({"true"});
    EXPECT_EQ(alive.exit_code, 0) << alive.err;
  }

  {
    SCOPED_TRACE("machine rm: disk, state, taps and processes go");
    std::string id12 = id.substr(0, 12);
    bool had_tap = false;
    for (const auto& l : links())
      had_tap = had_tap || l.starts_with("vt" + id12);
    EXPECT_TRUE(had_tap) << "no tap vt" << id12
                         << "* while running: " << testing::PrintToString(links());
    std::string disk = state_root() + "/containers/" + id + "/disk.img";
    EXPECT_EQ(::access(disk.c_str(), F_OK), 0) << "no disk at " << disk;

    CliResult refused = machine({"rm", kName});
    EXPECT_NE(refused.exit_code, 0) << "rm of a running machine without -f";
    EXPECT_TRUE(contains(refused.err, "running")) << refused.err;
    EXPECT_EQ(machine_state(kName), "running");

    auto t = Clock::now();
    CliResult rm = machine({"rm", "-f", kName}, 120s);
    EXPECT_EQ(rm.exit_code, 0) << rm.err;
    timing("rm -f", t);
    std::vector<std::string> left;
    wait_until(
        [&] {
          left = find_processes(vm_process_names(), id12);
          return left.empty();
        },
        10s);
    EXPECT_EQ(left, std::vector<std::string>{}) << "processes of the machine left";
    EXPECT_EQ(find_processes(vm_process_names(), id), std::vector<std::string>{});
    struct stat st;
    EXPECT_NE(::lstat((state_root() + "/containers/" + id).c_str(), &st), 0)
        << "containers/<id> left";
    EXPECT_NE(::lstat((state_root() + "/run/" + id12).c_str(), &st), 0) << "run/<id12> left";
    for (const auto& l : links())
      EXPECT_FALSE(l.starts_with("vt" + id12)) << "tap left: " << l;
    CliResult mls = machine({"ls", "-q"});
    EXPECT_EQ(mls.exit_code, 0) << mls.err;
    EXPECT_EQ(mls.out, "");
    CliResult gone = machine({"inspect", kName});
    EXPECT_NE(gone.exit_code, 0);
    // The home is the user's: rm leaves it.
    EXPECT_EQ(::access((home + "/from-machine.txt").c_str(), F_OK), 0);
    expect_no_leaks();
  }
  timing("whole lifecycle", t0);
}

// Bad input: each fails with a clear message and makes nothing. Only the
// no-init image boots (the guest finds no init); the others are refused
// before anything is recorded.
using MachineInputTest = MachineTest;

TEST_F(MachineInputTest, AnImageWithoutSbinInitFailsAtCreateAndLeavesNothing) {
  // The busybox rootfs has /sbin/init (a link to busybox): a copy without it.
  std::string rootfs = scratch_dir() + "/no-init";
  ASSERT_TRUE(sys::make_dirs(rootfs, 0755).ok());
  CliResult cp = host({"cp", "-a", paths().rootfs + "/.", rootfs + "/"});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  ASSERT_EQ(::unlink((rootfs + "/sbin/init").c_str()), 0) << "the fixture has no /sbin/init?";
  if (!sys::find_program("umoci")) GTEST_SKIP() << "umoci is not installed (scripts/setup.sh)";
  std::string layout = scratch_dir() + "/no-init-layout";
  CliResult pack = run_process(
      {std::string(VESSEL_TEST_SOURCE_DIR) + "/scripts/make-oci-image.sh", rootfs, layout},
      {.timeout = 120s});
  ASSERT_EQ(pack.exit_code, 0) << pack.err;
  ASSERT_NO_FATAL_FAILURE(load_image(layout, kNoInitImage));

  CliResult c =
      machine({"create", "--name", "noinit", "--memory", "256m", "--pull", "never", kNoInitImage},
              kBootTimeout);
  EXPECT_NE(c.exit_code, 0);
  EXPECT_EQ(c.out, "");
  // "the image has no init at '/sbin/init': ..."
  EXPECT_TRUE(contains(c.err, "no init")) << c.err;
  EXPECT_TRUE(contains(c.err, "/sbin/init")) << c.err;
  expect_nothing_made();
}

TEST_F(MachineInputTest, MemoryBelowTheMinimumIsRefusedAndLeavesNothing) {
  CliResult c = machine({"create", "--name", "tiny", "--memory", "1k", kImage});
  EXPECT_NE(c.exit_code, 0);
  EXPECT_EQ(c.out, "");
  EXPECT_TRUE(contains(c.err, "--memory")) << c.err;
  EXPECT_TRUE(contains(c.err, "1k")) << c.err;
  EXPECT_TRUE(contains(c.err, "too small")) << c.err;
  expect_nothing_made();
}

TEST_F(MachineInputTest, AHomeThatDoesNotExistIsRefusedAndLeavesNothing) {
  std::string missing = scratch_dir() + "/no-such-home";
  CliResult c = machine(
      {"create", "--name", "homeless", "--user", "tester:4242:4242", "--home", missing, kImage});
  EXPECT_NE(c.exit_code, 0);
  EXPECT_EQ(c.out, "");
  EXPECT_TRUE(contains(c.err, missing)) << c.err;
  EXPECT_TRUE(contains(c.err, "home")) << c.err;
  expect_nothing_made();
}

TEST_F(MachineInputTest, AnUnknownSettingIsRefusedAndChangesNothing) {
  // A machine that is only recorded (--no-start): set needs one, not a boot.
  CliResult c = machine({"create", "--no-start", "--name", "idle", "--memory", "256m", kImage});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  json before = machine_inspect("idle");
  ASSERT_TRUE(before.is_object());

  CliResult set = machine({"set", "idle", "cpus=1", "colour=blue"});
  EXPECT_NE(set.exit_code, 0);
  EXPECT_TRUE(contains(set.err, "unknown setting")) << set.err;
  EXPECT_TRUE(contains(set.err, "colour")) << set.err;
  CliResult bad_value = machine({"set", "idle", "cpus=many"});
  EXPECT_NE(bad_value.exit_code, 0);
  EXPECT_TRUE(contains(bad_value.err, "many")) << bad_value.err;

  // Not even the valid cpus=1 given with it was stored.
  json after = machine_inspect("idle");
  EXPECT_EQ(after["Pending"], before["Pending"]) << after.dump(2);
  EXPECT_TRUE(after["Pending"].empty()) << after.dump(2);
  EXPECT_EQ(after["Settings"], before["Settings"]) << after.dump(2);
  EXPECT_EQ(after["State"]["Status"], "stopped");
  CliResult ls = machine({"ls", "-q"});
  EXPECT_EQ(ls.out, "idle\n");
  expect_no_leaks();
}

}  // namespace
}  // namespace vessel::test
