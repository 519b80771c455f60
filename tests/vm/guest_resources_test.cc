// The guest's resource control and statistics, spoken to directly through
// the protocol (QemuVmm + AgentConnection, no CLI): Setup's cgroup limits,
// Spawn's rlimits, Stats, and Exit.oom_killed. Each test boots one VM with
// the busybox fixture as its virtio-fs root.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_connection.h"
#include "agent/stats.h"
#include "protocol/protocol.h"
#include "support/cli_runner.h"
#include "sys/fs.h"
#include "vmm/qemu_vmm.h"

namespace vessel::test {
namespace {

using namespace std::chrono_literals;
using protocol::MsgType;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMiB = 1ull << 20;
/// Generous for TCG: a step that takes longer has hung.
constexpr auto kStepTimeout = 60s;
constexpr uint32_t kRlimitNofile = 7;  // RLIMIT_NOFILE in Linux's generic numbering

/// What a process wrote and how it ended.
struct Finished {
  std::string out, err;
  protocol::Exit exit;
};

class GuestResourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto reason = vm_unavailable_reason()) GTEST_SKIP() << "VM tests cannot run: " << *reason;
    auto dir = sys::make_temp_dir("/tmp", "vessel-resources-test-");
    ASSERT_TRUE(dir.ok()) << dir.error().to_string();
    dir_ = *dir;
  }

  void TearDown() override {
    if (vm_) {
      if (agent_) (void)agent_->send(MsgType::kPoweroff, 0);
      EXPECT_TRUE(vm_->stop(10s).ok());
      if (HasFailure())
        std::fprintf(stderr, "--- boot log:\n%s\n", vm_->boot_log_tail(8192).c_str());
      vm_.reset();
    }
    if (!dir_.empty()) {
      EXPECT_TRUE(sys::remove_tree(dir_).ok());
    }
  }

  /// Boots the VM (512 MiB, 1 CPU, TCG), waits for Hello and sends `setup`
  /// with the busybox fixture as a read-only root; returns SetupResult.
  protocol::Reply boot(protocol::Setup setup) {
    vmm::VmConfig config;
    config.kernel = paths().kernel;
    config.initrd = paths().initrd;
    config.cpus = 1;
    config.memory_bytes = 512 * kMiB;
    config.accel = vmm::Accel::kTcg;
    config.serial_ports = {std::string(protocol::kPortName)};
    config.shared_dirs = {{"rootfs", paths().rootfs}};
    config.runtime_dir = dir_;
    vmm::QemuVmm qemu;
    auto vm = qemu.start(config);
    EXPECT_TRUE(vm.ok()) << vm.error().to_string();
    if (!vm.ok()) return {EIO, "no VM", 0};
    vm_ = std::move(*vm);
    int port = vm_->port_fd(protocol::kPortName);
    ::fcntl(port, F_SETFL, ::fcntl(port, F_GETFL) | O_NONBLOCK);
    agent_ = std::make_unique<agent::AgentConnection>(port);

    auto hello = take(MsgType::kHello, 0, Clock::now() + 120s);
    EXPECT_TRUE(hello.ok()) << "no hello: " << hello.error().to_string();
    if (!hello.ok()) return {EIO, "no hello", 0};
    auto h = agent::decode_as<protocol::Hello>(*hello);
    EXPECT_TRUE(h.ok() && h->version == protocol::kVersion);

    setup.rootfs_tag = "rootfs";
    setup.read_only = 1;
    EXPECT_TRUE(agent_->send_message(MsgType::kSetup, 0, setup).ok());
    return reply(MsgType::kSetupResult, 0);
  }

  /// Sends Spawn on `stream` and returns SpawnResult.
  protocol::Reply spawn(uint32_t stream, std::vector<std::string> argv,
                        std::vector<protocol::Rlimit> rlimits = {}, bool stdin_open = false) {
    protocol::Spawn s;
    s.argv = std::move(argv);
    s.env = {"PATH=/bin:/usr/bin"};
    s.cwd = "/";
    s.stdin_open = stdin_open ? 1 : 0;
    s.rlimits = std::move(rlimits);
    EXPECT_TRUE(agent_->send_message(MsgType::kSpawn, stream, s).ok());
    return reply(MsgType::kSpawnResult, stream);
  }

  /// Collects stream's output until its Exit.
  Finished wait_exit(uint32_t stream) {
    Finished f;
    auto deadline = Clock::now() + kStepTimeout;
    for (;;) {
      auto frame = take_stream(stream, deadline);
      if (!frame.ok()) {
        ADD_FAILURE() << "stream " << stream << ": " << frame.error().to_string()
                      << "; output so far: " << f.out << f.err;
        f.exit.code = -1;
        return f;
      }
      std::string data(frame->payload.begin(), frame->payload.end());
      switch (static_cast<MsgType>(frame->header.type)) {
        case MsgType::kStdout:
          f.out += data;
          break;
        case MsgType::kStderr:
          f.err += data;
          break;
        case MsgType::kExit: {
          auto e = agent::decode_as<protocol::Exit>(*frame);
          EXPECT_TRUE(e.ok());
          if (e.ok()) f.exit = *e;
          return f;
        }
        default:
          break;  // StdinAck
      }
    }
  }

  /// Runs argv to completion on a fresh stream.
  Finished run(std::vector<std::string> argv, std::vector<protocol::Rlimit> rlimits = {}) {
    uint32_t stream = next_stream_++;
    protocol::Reply r = spawn(stream, std::move(argv), std::move(rlimits));
    EXPECT_EQ(r.errnum, 0) << r.message;
    if (r.errnum != 0) return {"", r.message, {-1, 0, 0}};
    return wait_exit(stream);
  }

  /// One Stats round trip.
  protocol::Stats stats() {
    EXPECT_TRUE(agent_->send(MsgType::kStats, 0).ok());
    auto frame = take(MsgType::kStatsResult, 0, Clock::now() + kStepTimeout);
    EXPECT_TRUE(frame.ok()) << frame.error().to_string();
    if (!frame.ok()) return {};
    auto s = agent::decode_as<protocol::Stats>(*frame);
    EXPECT_TRUE(s.ok());
    return s.ok() ? *s : protocol::Stats{};
  }

  /// Samples until `done(stats)` holds or the step timeout passes; returns
  /// the last sample.
  template <typename Pred>
  protocol::Stats stats_until(Pred done) {
    auto deadline = Clock::now() + kStepTimeout;
    protocol::Stats s = stats();
    while (!done(s) && Clock::now() < deadline) {
      ::usleep(200 * 1000);
      s = stats();
    }
    return s;
  }

  uint32_t next_stream_ = 1;
  std::unique_ptr<agent::AgentConnection> agent_;

 private:
  protocol::Reply reply(MsgType type, uint32_t stream) {
    auto frame = take(type, stream, Clock::now() + kStepTimeout);
    EXPECT_TRUE(frame.ok()) << protocol::type_name(static_cast<uint16_t>(type)) << ": "
                            << frame.error().to_string();
    if (!frame.ok()) return {EIO, frame.error().to_string(), 0};
    auto r = agent::decode_as<protocol::Reply>(*frame);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : protocol::Reply{EIO, "malformed reply", 0};
  }

  /// The next frame of `type` on `stream`; other frames wait in `held_`.
  Result<agent::Frame> take(MsgType type, uint32_t stream, Clock::time_point deadline) {
    return take_if(
        [&](const agent::Frame& f) {
          return f.header.type == static_cast<uint16_t>(type) && f.header.stream == stream;
        },
        deadline);
  }
  Result<agent::Frame> take_stream(uint32_t stream, Clock::time_point deadline) {
    return take_if([&](const agent::Frame& f) { return f.header.stream == stream; }, deadline);
  }
  template <typename Match>
  Result<agent::Frame> take_if(Match match, Clock::time_point deadline) {
    for (auto it = held_.begin(); it != held_.end(); ++it) {
      if (match(*it)) {
        agent::Frame f = std::move(*it);
        held_.erase(it);
        return f;
      }
    }
    for (;;) {
      auto f = agent_->wait_frame(deadline, vm_->exit_fd());
      if (!f.ok()) return f.error();
      if (match(*f)) return f;
      held_.push_back(std::move(*f));
    }
  }

  std::string dir_;
  std::unique_ptr<vmm::VmInstance> vm_;
  std::deque<agent::Frame> held_;
};

TEST_F(GuestResourcesTest, MemoryLimitStatsAndOomKill) {
  protocol::Setup setup;
  setup.memory_limit_bytes = 192 * kMiB;
  protocol::Reply r = boot(setup);
  ASSERT_EQ(r.errnum, 0) << r.message;

  // The container sees its own cgroup, limit included, at /sys/fs/cgroup.
  Finished view = run({"sh", "-c", "cat /sys/fs/cgroup/memory.max /proc/self/cgroup"});
  EXPECT_EQ(view.exit.code, 0) << view.err;
  EXPECT_EQ(view.out, std::to_string(192 * kMiB) + "\n0::/\n");

  protocol::Stats idle = stats();
  EXPECT_EQ(idle.memory_limit, 192 * kMiB);
  EXPECT_EQ(idle.pids_limit, 0u);  // no pids limit asked for
  EXPECT_EQ(idle.pids_current, 0u);
  EXPECT_GT(idle.guest_mem_total, 256 * kMiB);
  EXPECT_GT(idle.guest_mem_available, 0u);
  EXPECT_LT(idle.guest_mem_available, idle.guest_mem_total);
  EXPECT_EQ(idle.cpus, 1u);
  EXPECT_GT(idle.timestamp_ns, 0u);
  EXPECT_GT(idle.cpu_usage_usec, 0u);  // the `cat` above ran in the cgroup

  // dd's 100 MiB buffer stays resident while dd blocks writing it into a
  // pipe that nobody reads: the shell on its other end waits in the `read`
  // builtin (which keeps the pipe open) for a line on the process's stdin,
  // and leaves at EOF, which ends dd with SIGPIPE.
  uint32_t holder = next_stream_++;
  r = spawn(holder, {"sh", "-c", "exec 3<&0; dd if=/dev/zero bs=100M count=1 | { read -r x <&3; }"},
            {},
            /*stdin_open=*/true);
  ASSERT_EQ(r.errnum, 0) << r.message;
  protocol::Stats busy = stats_until([&](const protocol::Stats& s) {
    return s.memory_current >= idle.memory_current + 80 * kMiB;
  });
  EXPECT_GE(busy.memory_current, idle.memory_current + 80 * kMiB)
      << "idle " << idle.memory_current << ", busy " << busy.memory_current;
  EXPECT_GE(busy.memory_anon, 80 * kMiB);
  EXPECT_GE(busy.pids_current, 3u);  // sh, dd and the reader
  EXPECT_GT(busy.timestamp_ns, idle.timestamp_ns);
  EXPECT_GE(busy.cpu_usage_usec, idle.cpu_usage_usec);
  EXPECT_EQ(busy.oom_kills, 0u);

  ASSERT_TRUE(agent_->send(MsgType::kStdin, holder).ok());  // EOF
  Finished held = wait_exit(holder);
  EXPECT_EQ(held.exit.signal, 0);
  EXPECT_EQ(held.exit.oom_killed, 0);

  // 300 MiB does not fit under memory.max: the OOM killer takes dd, inside
  // the container's cgroup, and init (the agent) carries on.
  Finished hog = run({"dd", "if=/dev/zero", "of=/dev/null", "bs=300M", "count=1"});
  EXPECT_EQ(hog.exit.signal, SIGKILL) << "code " << hog.exit.code << ": " << hog.err;
  EXPECT_EQ(hog.exit.oom_killed, 1);

  protocol::Stats after = stats();
  EXPECT_GE(after.oom_kills, 1u);
  EXPECT_LT(after.memory_current, busy.memory_current);
  Finished alive = run({"echo", "still here"});
  EXPECT_EQ(alive.out, "still here\n");
  EXPECT_EQ(alive.exit.code, 0);
  EXPECT_EQ(alive.exit.oom_killed, 0);  // the earlier kill is not this one's
}

TEST_F(GuestResourcesTest, RlimitsPidsAndCpuLimits) {
  protocol::Setup setup;
  setup.pids_limit = 12;
  setup.cpu_quota_usec = 20000;  // a fifth of a CPU (--cpus 0.2), default period
  protocol::Reply r = boot(setup);
  ASSERT_EQ(r.errnum, 0) << r.message;

  protocol::Stats first = stats();
  EXPECT_EQ(first.pids_limit, 12u);
  EXPECT_EQ(first.memory_limit, first.guest_mem_total);  // no memory limit: "max"

  // --ulimit nofile=1024:2048
  Finished limits = run({"sh", "-c", "ulimit -n; ulimit -Hn"}, {{kRlimitNofile, 1024, 2048}});
  EXPECT_EQ(limits.exit.code, 0) << limits.err;
  EXPECT_EQ(limits.out, "1024\n2048\n");
  Finished unlimited = run({"sh", "-c", "ulimit -c; ulimit -Hc"},
                           {{4, protocol::kRlimInfinity, protocol::kRlimInfinity}});
  EXPECT_EQ(unlimited.out, "unlimited\nunlimited\n");

  // Invalid ones fail the Spawn with a message naming the limit.
  r = spawn(next_stream_++, {"true"}, {{kRlimitNofile, 4096, 2048}});
  EXPECT_EQ(r.errnum, EINVAL);
  EXPECT_NE(r.message.find("nofile=4096:2048"), std::string::npos) << r.message;
  r = spawn(next_stream_++, {"true"}, {{kRlimitNofile, 1024, 1ull << 40}});
  EXPECT_EQ(r.errnum, EPERM);
  EXPECT_NE(r.message.find("nofile=1024:1099511627776"), std::string::npos) << r.message;
  r = spawn(next_stream_++, {"true"}, {{99, 1, 1}});
  EXPECT_EQ(r.errnum, EINVAL);
  EXPECT_NE(r.message.find("99"), std::string::npos) << r.message;

  // pids.max: the shell forks background sleeps until fork fails; the
  // processes that did start are all the cgroup holds.
  Finished forks = run({"sh", "-c",
                        "cat /sys/fs/cgroup/pids.max; i=0; while [ $i -lt 40 ]; do "
                        "sleep 1000 & i=$((i+1)); done; echo all forked"});
  EXPECT_EQ(forks.out, "12\n") << forks.err;
  EXPECT_NE(forks.exit.code, 0);
  EXPECT_NE(forks.err.find("can't fork"), std::string::npos) << forks.err;
  protocol::Stats full = stats();
  EXPECT_GT(full.pids_current, 0u);
  EXPECT_LE(full.pids_current, 12u);

  // The agent is outside the limit, and moving a process into a full
  // cgroup is allowed (only forks inside it are refused): spawns still work.
  Finished exec = run({"cat", "/sys/fs/cgroup/cpu.max"});
  EXPECT_EQ(exec.exit.code, 0) << exec.err;
  EXPECT_EQ(exec.out, "20000 100000\n");

  // cpu.max: a busy loop gets about a fifth of the CPU. The bound is loose
  // (TCG and a busy host only ever lower the share); without the quota the
  // loop takes the whole vCPU (~100 %).
  uint32_t spinner = next_stream_++;
  r = spawn(spinner, {"sh", "-c", "while :; do :; done"});
  ASSERT_EQ(r.errnum, 0) << r.message;
  protocol::Stats start = stats();
  protocol::Stats end = stats_until([&](const protocol::Stats& s) {
    return s.timestamp_ns >= start.timestamp_ns + 2'000'000'000ull;
  });
  auto percent = agent::cpu_percent(start, end);
  ASSERT_TRUE(percent.has_value())
      << "usage " << start.cpu_usage_usec << " -> " << end.cpu_usage_usec << " us, clock "
      << start.timestamp_ns << " -> " << end.timestamp_ns << " ns";
  EXPECT_GT(*percent, 1.0);
  EXPECT_LT(*percent, 35.0);
  ASSERT_TRUE(agent_->send_message(MsgType::kSignal, spinner, protocol::Signal{SIGKILL}).ok());
  EXPECT_EQ(wait_exit(spinner).exit.signal, SIGKILL);
}

}  // namespace
}  // namespace vessel::test
