// The monitor's API: what the CLI (or any library user) and a container's
// monitor say to each other over the monitor's unix socket. The framing is
// the host<->guest protocol's (protocol.h); the messages are the guest
// protocol's process messages plus the few below, numbered from 64 so the
// two sets never collide. docs/protocol.md, "Monitor API", specifies it.
//
//   client -> monitor                       monitor -> client
//   kAttach   stream 1: Attach              kStarted stream 1: Reply (pid, or why not)
//   kStdin/kSignal/kResize stream 1         kStdout/kStderr/kStdinAck/kExit stream 1
//   kSpawn    stream N>=2: exec a process   kSpawnResult, kStdout/kStderr/kStdinAck/kExit N
//   kStdin/kSignal/kResize stream N
//   kStop     stream 0: Stop                kResult stream 0: Reply, once stopped
//   kKill     stream 0: protocol::Signal    kResult stream 0: Reply
//   kStats    stream 0: empty               kStatsResult stream 0 (the guest's answer)
//   kStart    stream 0: empty               kResult stream 0: Reply (releases a held start)
//   kPause    stream 0: u8 pause            kResult stream 0: Reply (VM frozen or thawed)
//   kUpdate   stream 0: Limits              kResult stream 0: Reply (the guest's answer)
//   kAddContainer stream 0: a member's id   kResult stream 0: Reply, once set up (held)
//
// A pod's sandbox monitor also listens on each added container's socket
// (monitor_socket_of(root, member id)): there the messages above address
// that container in the pod's VM.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "protocol/protocol.h"

namespace vessel::monitor {

enum class ApiType : uint16_t {
  kAttach = 64,
  kStarted = 65,
  kStop = 66,
  kKill = 67,
  kResult = 68,
  /// Releases a main process held by MonitorOptions::hold (vessel-runtime
  /// start); answered with kResult once the release is taken, before the
  /// process has started (attached clients then get kStarted).
  kStart = 69,
  /// u8: 1 freezes the VM's vCPUs, 0 thaws them (vessel-runtime pause and
  /// resume); answered with kResult (ESRCH: not running).
  kPause = 70,
  /// Limits: change the container cgroup's limits in the guest
  /// (vessel-runtime update); answered with kResult once the guest has
  /// written them (EINVAL for more than the VM has, ESRCH: not running).
  kUpdate = 71,
  /// The payload is the Vessel id of a container recorded as a member of
  /// this monitor's pod (ContainerConfig::pod_role): the monitor sets it up
  /// in the pod's VM, holds its process like MonitorOptions::hold and
  /// serves it on its own socket; answered with kResult once it is set up
  /// (EOPNOTSUPP: not a pod's sandbox; ESRCH: the VM is not running).
  kAddContainer = 72,
};

inline uint16_t type_code(ApiType t) {
  return static_cast<uint16_t>(t);
}
inline uint16_t type_code(protocol::MsgType t) {
  return static_cast<uint16_t>(t);
}

/// The main process's stream.
inline constexpr uint32_t kMainStream = 1;

struct Attach {
  uint8_t stdin = 0;   // forward this client's stdin to the main process
  uint8_t output = 1;  // receive its stdout and stderr
};

struct Stop {
  int32_t signal = 0;    // 0: the container's stop signal
  int32_t timeout = -1;  // seconds before SIGKILL; -1: the container's
};

/// A change of the container's limits; -1 keeps a field as it is.
struct Limits {
  int64_t memory_bytes = -1;     // memory.max; 0: all the VM has for the container
  int64_t pids = -1;             // pids.max; 0: no limit
  int64_t cpu_quota_usec = -1;   // cpu.max quota; 0: none
  int64_t cpu_period_usec = -1;  // cpu.max period; 0: the default (100 ms)
};

/// The container's limits after `change`, given the current ones and what
/// the VM has (`vm_memory`: the container's share of its RAM, which is the
/// limit set at create; `cpus`: its vCPUs, fixed at create). Errors are
/// kInvalidArgument naming the limit: a memory limit above `vm_memory` or
/// below 4 MiB, a quota above `cpus` periods, or a quota or period outside
/// cpu.max's bounds.
Result<protocol::Update> merge_limits(const protocol::Update& current, const Limits& change,
                                      uint64_t vm_memory, unsigned cpus);

std::vector<uint8_t> encode(const Attach& m);
std::vector<uint8_t> encode(const Stop& m);
std::vector<uint8_t> encode(const Limits& m);
bool decode(std::span<const uint8_t> p, Attach& out);
bool decode(std::span<const uint8_t> p, Stop& out);
/// False if short or a field is below -1.
bool decode(std::span<const uint8_t> p, Limits& out);

/// One end of a monitor connection: frames in, frames out. Sending blocks
/// (the client side) or queues (the monitor, which never blocks on a client).
class Channel {
 public:
  explicit Channel(UniqueFd fd) : fd_(std::move(fd)) {}
  int fd() const { return fd_.get(); }

  /// Writes the frame now, blocking if need be.
  Status send(uint16_t type, uint32_t stream, std::span<const uint8_t> payload = {});
  template <typename M>
  Status send_message(uint16_t type, uint32_t stream, const M& m) {
    auto p = encode_any(m);
    return send(type, stream, p);
  }

  /// Queues the frame; flush() writes what the socket takes.
  void queue(uint16_t type, uint32_t stream, std::span<const uint8_t> payload = {});
  Status flush();
  size_t queued() const { return out_.size() - out_pos_; }

  /// Reads what is available (non-blocking fd) into frames;
  /// kUnavailable when the peer closed, kProtocol on garbage.
  Status read_available();
  bool next(protocol::FrameReader::Frame& out);

 private:
  template <typename M>
  static std::vector<uint8_t> encode_any(const M& m) {
    using monitor::encode;
    using protocol::encode;
    return encode(m);
  }
  UniqueFd fd_;
  protocol::FrameReader reader_;
  std::vector<protocol::FrameReader::Frame> frames_;
  size_t frames_pos_ = 0;
  std::vector<uint8_t> out_;
  size_t out_pos_ = 0;
};

/// Connects to the monitor socket at `path` (non-blocking fd).
Result<Channel> connect(const std::string& path);

}  // namespace vessel::monitor
