// The guest side of the host<->guest protocol: one single-threaded poll(2)
// loop over the agent port, the SIGCHLD signalfd and the stdio of every
// container process.
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "guest/cgroup.h"
#include "guest/container.h"
#include "guest/process.h"
#include "guest/reclaim.h"
#include "protocol/protocol.h"

namespace vessel::guest {

class Agent {
 public:
  /// Takes the agent port (opened O_NONBLOCK), a nonblocking signalfd for
  /// SIGCHLD (blocked in init) and the container's cgroup (possibly invalid:
  /// then there are no limits and no cgroup statistics).
  Agent(UniqueFd port, UniqueFd sigchld, ContainerCgroup cgroup);

  /// Sends Hello with `guest` as its description and serves the host until
  /// Poweroff or a fatal error, both of which end the VM. Never returns:
  /// init exiting would panic the kernel.
  [[noreturn]] void run(const std::string& guest);

 private:
  /// What a pollfd entry stands for. Process entries name the stream and the
  /// serial, so that an entry whose process went away (or whose stream id was
  /// reused) earlier in the same round is skipped rather than misrouted.
  enum class Source : uint8_t { kPort, kSigchld, kStdout, kStderr, kStdin };
  struct PollTag {
    Source source;
    uint32_t stream = 0;
    uint64_t serial = 0;
  };

  /// Fills poll_fds_ and poll_tags_; returns the poll(2) timeout in ms.
  int build_poll_set();
  void dispatch(const pollfd& entry, const PollTag& tag);

  // The port: outbound frames are buffered and written as the port accepts
  // them (virtio-serial writes are partial, at most 32 KiB); inbound bytes
  // are reassembled into frames and handled at once.
  void queue_frame(protocol::MsgType type, uint32_t stream, std::span<const uint8_t> payload);
  size_t outbound_size() const { return outbound_.size() - outbound_offset_; }
  void flush_port();
  void read_port();
  void port_hung_up();
  bool handle_frame(const protocol::FrameReader::Frame& frame);
  [[noreturn]] void fail(const char* why);

  // Messages from the host.
  void on_setup(uint32_t stream, const protocol::Setup& setup);
  void on_spawn(uint32_t stream, const protocol::Spawn& spawn);
  /// CopyOut and CopyIn: `task` runs as process `stream`.
  void on_task(uint32_t stream, Task& task);
  /// Whether a process may start on `stream`; if not, says why in SpawnResult.
  bool can_start(uint32_t stream);
  /// Tracks a started process and answers SpawnResult.
  void started(uint32_t stream, Process process, uint64_t oom_kills);
  void on_stdin(uint32_t stream, std::span<const uint8_t> data);
  void on_signal(uint32_t stream, const protocol::Signal& signal);
  void on_resize(uint32_t stream, const protocol::Resize& resize);
  void on_stats(const protocol::StatsRequest& request);
  void on_update(const protocol::Update& update);
  /// Setup of a container other than 0 (a pod's): added beside container 0.
  void on_add_container(uint32_t stream, const protocol::Setup& setup);
  void on_remove_container(const protocol::RemoveContainer& remove);
  [[noreturn]] void on_poweroff();
  /// A machine's power-off: asks its init to shut down cleanly.
  [[noreturn]] void machine_power_off();
  void reply(protocol::MsgType type, uint32_t stream, const Status& status, uint32_t pid = 0);

  // Processes.
  Process* find(uint32_t stream, uint64_t serial);
  void pump_stdin(Process& process);
  void finish_stdin(StdinState& in);
  void send_acks(Process& process);
  /// Reads one chunk from `fd` into a Stdout/Stderr frame and returns its
  /// size; 0 when nothing can be read now (EAGAIN) or ever (EOF, after which
  /// `fd` is closed).
  size_t read_output(uint32_t stream, UniqueFd& fd, protocol::MsgType type);
  /// Reads `fd` until EAGAIN or EOF (bounded: a background child may still
  /// be writing to it).
  void drain_output(uint32_t stream, UniqueFd& fd, protocol::MsgType type);
  void reap_children();
  void finish_process(Process& process, int wait_status);

  UniqueFd port_;
  UniqueFd sigchld_;
  protocol::FrameReader reader_;
  std::vector<uint8_t> outbound_;
  size_t outbound_offset_ = 0;
  /// While the host end of the port is closed, poll(2) reports POLLHUP at
  /// once, so the port is left out of the poll set until this time.
  int64_t port_retry_at_ms_ = 0;
  /// The host was connected when last seen: log the next hang-up once.
  bool host_connected_ = false;

  ContainerCgroup cgroup_;
  Container container_;
  /// Containers added to a pod's VM (Setup.container > 0), by number.
  struct Member {
    ContainerCgroup cgroup;
    Container container;
  };
  std::map<uint32_t, Member> members_;
  /// Container `n`'s root and cgroup, or nullptr when it does not exist
  /// (not set up, or removed).
  const Container* container_of(uint32_t n) const;
  const ContainerCgroup* cgroup_of(uint32_t n) const;
  /// This is a machine's agent: no longer PID 1, its init runs the machine.
  bool machine_ = false;
  /// A machine's SetupResult waits until its init takes commands (systemd:
  /// its private socket exists), at most kMachineReadyTimeoutMs.
  void check_machine_ready();
  static constexpr int64_t kMachineReadyPollMs = 20;
  static constexpr int64_t kMachineReadyTimeoutMs = 30000;
  bool setup_reply_pending_ = false;
  uint32_t setup_reply_stream_ = 0;
  int64_t setup_reply_deadline_ms_ = 0;
  std::map<uint32_t, Process> processes_;
  uint64_t next_serial_ = 1;

  /// Idle page cache reclaim (Setup.memory_reclaim): sampled from Setup on,
  /// every 4 to 16 s (IdleReclaim); the only timer of an idle agent.
  void reclaim_tick();
  IdleReclaim reclaim_;
  bool reclaim_on_ = false;
  int64_t reclaim_next_ms_ = 0;

  std::vector<pollfd> poll_fds_;
  std::vector<PollTag> poll_tags_;
  std::vector<uint8_t> read_buffer_;
};

}  // namespace vessel::guest
