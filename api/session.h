// A hijacked attach or exec session: the process's stream on a monitor
// connection on one side, the client's raw connection on the other.
#pragma once

#include "api/context.h"
#include "monitor/api.h"
#include "protocol/protocol.h"

namespace vessel::api {

struct SessionOptions {
  bool tty = false;            // raw output; else Docker's 8-byte stream headers
  bool forward_stdin = false;  // the client's bytes go to the process's stdin
  bool stdout = true, stderr = true;
  int resize_fd = -1;  // readable: 4 bytes (rows, cols, big-endian u16) to forward
};

/// Pumps until the process on `stream` exits (its Exit), the client goes
/// away (kUnavailable; the process goes on, its stdin gets EOF), or the
/// monitor does. Client bytes after EOF on its side end stdin (Docker's
/// half-close).
Result<protocol::Exit> pump_session(monitor::Channel& ch, uint32_t stream, Exchange& ex,
                                    const SessionOptions& o);

}  // namespace vessel::api
