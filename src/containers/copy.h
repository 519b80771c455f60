// Files in and out of a running container as tar streams, made and
// extracted by vessel-init inside the guest (CopyOut and CopyIn,
// docs/protocol.md): what `vessel cp`, `vessel export` and the Docker API's
// archive and export endpoints share.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "monitor/client.h"
#include "protocol/protocol.h"

namespace vessel::containers {

/// One CopyOut, CopyIn or Spawn (a short process whose output is wanted,
/// as docker top's ps) on a monitor channel (stream `stream`, unused by
/// other requests on that channel): the SpawnResult, then data and Exit,
/// with the stdin window kept as for a process's stdin.
class GuestCopy {
 public:
  GuestCopy(monitor::Channel& ch, uint32_t stream) : ch_(ch), stream_(stream) {}

  /// Sends the request and waits for its SpawnResult; a refusal becomes an
  /// error carrying the guest's message (ENOENT: kNotFound, else
  /// kInvalidArgument).
  Status start(const protocol::CopyOut& request);
  Status start(const protocol::CopyIn& request);
  Status start(const protocol::Spawn& request);
  /// The guest pid of a started Spawn.
  uint32_t pid() const { return pid_; }

  /// The next chunk of the archive (Stdout) into `out`; false once the
  /// stream ended (see finish()).
  Result<bool> next(std::vector<uint8_t>& out);

  /// Sends `data` as Stdin, waiting for acknowledgements to stay within
  /// the window. Fails if the guest ended the stream first.
  Status send(const uint8_t* data, size_t size);

  /// Sends end-of-input (once, with `send_eof`) and waits for Exit;
  /// non-zero becomes kInvalidArgument with what the guest wrote on stderr.
  Status finish(bool send_eof);

  /// The guest ended the stream (Exit came).
  bool ended() const { return exit_.has_value(); }

 private:
  Status start_frame(protocol::MsgType type, const std::vector<uint8_t>& payload);
  std::string failure_text() const;
  /// Waits up to `timeout_ms` (-1: for ever) for frames and handles them.
  Status pump(int timeout_ms);
  void handle(protocol::FrameReader::Frame& f);

  monitor::Channel& ch_;
  uint32_t stream_;
  std::deque<std::vector<uint8_t>> chunks_;
  std::string stderr_;
  uint32_t in_flight_ = 0;
  uint32_t pid_ = 0;
  std::optional<protocol::Exit> exit_;
};

/// What a path in the container is (lstat, or stat with `follow`), from
/// a CopyOut with kTopOnly: its archive entry's type, mode, size (a
/// regular file's, a symlink's target length as lstat says it, 0 for the
/// rest), time and link target.
struct PathStat {
  bool exists = false;
  std::string name;   // the last component of the path
  uint32_t mode = 0;  // st_mode: type and permission bits
  int64_t size = 0;
  int64_t mtime = 0;  // Unix seconds
  std::string link_target;
  bool is_dir() const { return (mode & 0170000) == 0040000; }
};

/// Stats `path` over `ch` on stream `stream`; exists=false when there is no
/// such path (kNotFound is not an error here).
Result<PathStat> stat_path(monitor::Channel& ch, uint32_t stream, const std::string& path,
                           bool follow);

}  // namespace vessel::containers
