// What the handlers of one `vessel system service` share: the state root,
// attach sessions waiting for their container to start, and exec instances.
// Lifecycle state lives in the state store (containers layer), never here:
// this is only what Docker's API keeps between two requests.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "containers/containers.h"
#include "protocol/protocol.h"

namespace vessel::api {

/// An attach to a container that is not running yet: Docker's clients
/// attach, then start. The start handler starts the container's monitor
/// in "wait for attach" mode and releases the waiters, which then attach
/// to it before its main process runs, so no output is lost.
struct AttachWaiter {
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  std::string error;  // the start failed: why
};

/// An exec instance (POST /containers/{id}/exec), until the service exits.
struct ExecEntry {
  std::string id, container;
  protocol::Spawn spawn;
  bool attach_stdin = false, attach_stdout = true, attach_stderr = true;
  std::mutex mu;
  bool running = false, done = false;
  int exit_code = 0;
  uint32_t pid = 0;
  /// Write end of the running session's resize pipe (4 bytes: rows, cols).
  int resize_fd = -1;
};

class Context {
 public:
  explicit Context(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }

  /// Opens the containers layer on the state root (one per request:
  /// SQLite connections are not shared between threads).
  Result<std::unique_ptr<containers::Containers>> containers() const {
    return containers::Containers::open(root_);
  }

  std::shared_ptr<AttachWaiter> wait_for_start(const std::string& id);
  void forget_waiter(const std::string& id, const std::shared_ptr<AttachWaiter>& w);
  /// The waiters of container `id`, removed from the table.
  std::vector<std::shared_ptr<AttachWaiter>> take_waiters(const std::string& id);

  /// The start handler says container `id`'s main process now runs; a
  /// wait handler blocked in await_start() wakes at once (it then listens
  /// to the monitor for the exit, which --rm would otherwise race).
  void notify_started(const std::string& id);
  /// How many times notify_started(id) was called.
  uint64_t start_count(const std::string& id);
  /// Waits up to `timeout` for start_count(id) to exceed `seen`.
  void await_start(const std::string& id, uint64_t seen, std::chrono::milliseconds timeout);

  /// Events for /events: container events the watcher saw (see
  /// watch_container_events) and those this service makes itself (image
  /// pull), in the order published; the last kEventHistory are kept, so
  /// /events?since= can replay them.
  static constexpr size_t kEventHistory = 1024;
  void publish(nlohmann::json event);
  uint64_t event_count();
  /// The events published after the first `seen` (those still kept), and
  /// in `*next` the count to pass next time.
  std::vector<nlohmann::json> events_after(uint64_t seen, uint64_t* next = nullptr);
  /// Waits up to `timeout` for an event after the first `seen`.
  void await_event(uint64_t seen, std::chrono::milliseconds timeout);

  /// The exit code a wait heard from container `id`'s monitor (-1: none),
  /// for the die event of a container --rm removed at once.
  void hear_exit(const std::string& id, int code);
  int heard_exit(const std::string& id);

  std::shared_ptr<ExecEntry> add_exec(std::shared_ptr<ExecEntry> e);
  std::shared_ptr<ExecEntry> exec(const std::string& id);

  /// Connections being served (the idle timer counts from the last one).
  std::atomic<int> active{0};
  std::atomic<int64_t> last_activity_ns{0};

 private:
  std::string root_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::shared_ptr<AttachWaiter>>> waiters_;
  std::map<std::string, std::shared_ptr<ExecEntry>> execs_;
  std::condition_variable started_cv_;
  std::map<std::string, uint64_t> starts_;
  std::deque<nlohmann::json> events_;
  uint64_t event_count_ = 0;
  std::condition_variable events_cv_;
  std::map<std::string, int> exits_;
};

/// The client's connection, for handlers that stream or hijack it.
class Exchange {
 public:
  /// Reads the next piece of a streamed request body into its argument:
  /// false at the end of the body.
  using BodyReader = std::function<Result<bool>(std::string&)>;

  Exchange(int fd, std::string leftover, bool upgrade, BodyReader body = {})
      : fd_(fd), leftover_(std::move(leftover)), upgrade_(upgrade), body_(std::move(body)) {}
  int fd() const { return fd_; }
  /// Bytes the client sent after the request (read along with it).
  std::string take_leftover() { return std::move(leftover_); }
  /// Writes all of `data`; kUnavailable when the client went away.
  Status write(std::string_view data);
  /// Starts a streamed reply: status line and headers, no length, the
  /// connection closes at the end of the body.
  Status begin_stream(int status, const std::string& content_type,
                      const std::map<std::string, std::string>& headers = {});
  /// Takes the connection over for a raw session: 101 Switching Protocols
  /// when the client asked to upgrade (Upgrade: tcp), else 200 (older
  /// clients), with Docker's stream content type.
  Status hijack(bool multiplexed);
  /// True when the client has closed its connection both ways (a client
  /// that only shut down its sending side still reads).
  bool client_gone() const;
  /// The next piece of the request body of a route that streams it
  /// (Router::add's streams_body); false at its end (at once for other
  /// routes: their body is in Request::body). kInvalidArgument for a
  /// malformed body, kUnavailable when the client went away.
  Result<bool> read_body(std::string& chunk) {
    if (!body_) return false;
    return body_(chunk);
  }

 private:
  int fd_;
  std::string leftover_;
  bool upgrade_;
  BodyReader body_;
};

/// Docker's stream header: stream (0 stdin, 1 stdout, 2 stderr), 3 zero
/// bytes, the big-endian length, then the data.
std::string frame_stream(uint8_t stream, std::string_view data);

}  // namespace vessel::api
