// The client side of a monitor: starting one, and the sessions a CLI runs
// over its socket (attach, exec, stop, kill, stats).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "monitor/api.h"
#include "protocol/protocol.h"
#include "sys/signals.h"

namespace vessel::monitor {

/// A monitor being started: its pid and the pipe it reports progress on.
struct Launch {
  pid_t pid = 0;
  UniqueFd ready;
};

/// The monitor executable: $VESSEL_MONITOR, else vessel-monitor next to this
/// executable, else <exe dir>/../libexec/vessel/vessel-monitor.
Result<std::string> monitor_program();

/// Starts the monitor of container `id`, detached (own session, reparented
/// to init, stdio away from the caller's terminal; its diagnostics go to
/// <container dir>/monitor.log), and waits until its socket accepts.
Result<Launch> launch(const std::string& root, const std::string& id, bool wait_attach, bool debug);
/// The same, with MonitorOptions::hold: the main process waits for kStart.
/// Read the report with wait_held().
Result<Launch> launch_held(const std::string& root, const std::string& id, bool debug);
/// The same, with MonitorOptions::maintenance: the VM boots for its files
/// only. Read the report with wait_held().
Result<Launch> launch_maintenance(const std::string& root, const std::string& id, bool debug);

/// After launch_held or launch_maintenance: waits (up to `timeout`) until the monitor reports the
/// VM booted and the process held; the error carries the monitor's message
/// (the boot log's tail when the VM did not come up).
Status wait_held(Launch& launch, std::chrono::milliseconds timeout);

/// How the first start of the main process went.
struct StartReport {
  bool ok = false;
  uint32_t pid = 0;     // guest pid of the main process
  int exit_code = 0;    // when !ok: 125 (Vessel failed), 126, 127 (the command)
  std::string message;  // when !ok
};
/// Reads the monitor's start report from `launch.ready`.
Result<StartReport> wait_started(Launch& launch);

/// The StartReport a kStarted reply carries.
StartReport start_report(const protocol::Reply& reply);

/// Waits (up to `timeout`) for the first frame of `type` on `stream`.
Result<protocol::FrameReader::Frame> await_frame(Channel& ch, uint16_t type, uint32_t stream,
                                                 std::chrono::milliseconds timeout);

/// Sends a stream-0 request and waits for its kResult; an error reply
/// becomes an Error with the monitor's message.
Status request(Channel& ch, ApiType type, std::span<const uint8_t> payload,
               std::chrono::milliseconds timeout);

struct SessionOptions {
  bool tty = false;            // the process has a terminal: forward resizes
  bool forward_stdin = false;  // our stdin goes to the process
  bool proxy_signals = true;   // SIGINT, SIGTERM, SIGHUP, SIGQUIT are forwarded
};

/// Takes the frames `ch` has queued for the process on `stream`: its
/// stdout and stderr go to `out` (1 or 2, the bytes), stdin
/// acknowledgements lower `in_flight` (the stdin bytes sent and not yet
/// acknowledged). Returns the process's Exit once it has come, nullopt
/// while it runs; kProtocol for a malformed acknowledgement or Exit, and
/// whatever `out` fails with.
Result<std::optional<protocol::Exit>> take_stream_frames(
    Channel& ch, uint32_t stream, uint32_t& in_flight,
    const std::function<Status(int, const std::vector<uint8_t>&)>& out);

/// Pumps our stdin/stdout/stderr, signals and window size to and from the
/// process on `stream` until it exits; returns its Exit.
Result<protocol::Exit> pump(Channel& ch, uint32_t stream, const SessionOptions& options,
                            sys::SignalGuard& signals);

}  // namespace vessel::monitor
