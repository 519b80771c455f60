// The state store: containers and the volumes they use, in one SQLite
// database under the state root. Every change is one transaction, so a crash
// at any point leaves either the old or the new state, and any number of
// CLI processes and monitors may use it at once (SQLite's locking, WAL).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"

struct sqlite3;

namespace vessel::state {

/// Lifecycle states, as Docker names them.
enum class RunState { kCreated, kRunning, kRestarting, kExited, kRemoving };
const char* state_name(RunState s);
/// kInvalidArgument for a name that is not one of the above.
Result<RunState> parse_state(const std::string& name);

/// What changes while a container lives. Times are Unix nanoseconds (0: never).
struct ContainerState {
  RunState status = RunState::kCreated;
  int monitor_pid = 0;  // the monitor serving it while running, else 0
  int64_t started = 0;
  int64_t finished = 0;
  int exit_code = 0;
  std::string error;             // why it could not run, or why it ended abnormally
  int restart_count = 0;         // restarts by the restart policy since the last start
  bool stopped_by_user = false;  // stop/kill: restart policies leave it stopped
  bool oom_killed = false;
};

struct ContainerRecord {
  std::string id;        // 64 lowercase hex characters
  std::string name;      // unique
  std::string image;     // the reference the user gave ("" for a directory root)
  std::string image_id;  // the image's manifest digest, or ""
  std::string config;    // the container's configuration, JSON (runtime's business)
  int64_t created = 0;
  ContainerState state;
};

struct VolumeRecord {
  std::string name;
  int64_t created = 0;
  std::string labels = "{}";  // JSON object
  bool anonymous = false;
};

class Store {
 public:
  /// Opens (creating) the database at `path`.
  static Result<std::unique_ptr<Store>> open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// kAlreadyExists when the id or the name is taken.
  Status add_container(const ContainerRecord& record);
  /// By exact id; kNotFound.
  Result<ContainerRecord> container(const std::string& id);
  /// By name, full id or unique id prefix, as Docker resolves them: kNotFound
  /// ("No such container: X"), kInvalidArgument when a prefix is ambiguous.
  Result<ContainerRecord> find_container(const std::string& ref);
  /// All containers, oldest first.
  Result<std::vector<ContainerRecord>> containers();
  /// Reads the container, lets `change` modify its state, writes it back,
  /// all in one write transaction: concurrent updates never interleave.
  /// Whatever error `change` returns aborts the update and is returned.
  Result<ContainerRecord> update_container(const std::string& id,
                                           const std::function<Status(ContainerRecord&)>& change);
  /// kNotFound if there is no such container.
  Status remove_container(const std::string& id);

  /// kAlreadyExists when the name is taken.
  Status add_volume(const VolumeRecord& record);
  Result<VolumeRecord> volume(const std::string& name);
  Result<std::vector<VolumeRecord>> volumes();
  Status remove_volume(const std::string& name);
  /// Records that `container` uses `volume` (removed with the container).
  Status add_volume_use(const std::string& container, const std::string& volume);
  /// Ids of the containers using `volume`.
  Result<std::vector<std::string>> volume_users(const std::string& volume);

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status exec(const char* sql);
  sqlite3* db_;
};

/// The current time in Unix nanoseconds.
int64_t now_ns();

}  // namespace vessel::state
