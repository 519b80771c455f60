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
  /// "container", or "machine" (a persistent machine: same lifecycle
  /// machinery, but container commands never list or touch it).
  std::string kind = "container";
};

struct VolumeRecord {
  std::string name;
  int64_t created = 0;
  std::string labels = "{}";  // JSON object
  bool anonymous = false;
};

/// A network (the model; the host objects are the net layer's business).
struct NetworkRecord {
  std::string name;     // unique
  std::string id;       // 64 lowercase hex
  std::string subnet;   // "10.220.0.0/16"
  std::string gateway;  // "10.220.0.1"
  std::string bridge;   // unique
  bool internal = false;
  std::string labels = "{}";  // JSON object
  int64_t created = 0;
};

/// A container's place on a network, made at create (or by network connect
/// while it is not running) and kept until the container is removed (or
/// disconnected): its NIC's position, MAC and aliases, and the address it
/// asked for (--ip) or last held.
struct EndpointRecord {
  std::string container;
  std::string network;
  int position = 0;            // NIC index: eth<position>
  uint32_t fixed_ip = 0;       // --ip (host byte order); 0: any
  uint32_t last_ip = 0;        // the address it held last; preferred at the next start
  std::string mac;             // "02:..."
  std::string aliases = "[]";  // JSON array of names
};

/// An address in use: leased by a container's monitor when it starts the
/// container and released when the container stops for good (or its monitor
/// is found dead). UNIQUE(network, ip): never two holders.
struct LeaseRecord {
  std::string network;
  uint32_t ip = 0;
  std::string container;
};

/// What the allocator may hand out on one network.
struct AddressPool {
  uint32_t first = 0, last = 0;    // inclusive range of usable host addresses
  std::vector<uint32_t> reserved;  // never handed out (the gateway)
};

class Store {
 public:
  /// Opens (creating) the database at `path`.
  static Result<std::unique_ptr<Store>> open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// kAlreadyExists when the id or the name is taken. With `endpoints`, the
  /// container's network endpoints are recorded in the same transaction:
  /// kNotFound for a network that does not exist, kAlreadyExists for a
  /// fixed address another container asked for or holds.
  Status add_container(const ContainerRecord& record,
                       const std::vector<EndpointRecord>& endpoints = {});
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
  /// Gives container `id` the name `name`: kAlreadyExists when another
  /// container has it, kNotFound when there is no such container.
  Status rename_container(const std::string& id, const std::string& name);
  /// kNotFound if there is no such container.
  Status remove_container(const std::string& id);

  // ---- networks -----------------------------------------------------------

  /// kAlreadyExists when the name (or the bridge) is taken.
  Status add_network(const NetworkRecord& record);
  /// kNotFound ("network X not found").
  Result<NetworkRecord> network(const std::string& name);
  /// All networks, by name.
  Result<std::vector<NetworkRecord>> networks();
  /// kFailedPrecondition while a container (running or not) has an endpoint
  /// on it; kNotFound.
  Status remove_network(const std::string& name);

  /// Replaces `container`'s endpoints with `endpoints` (docker network
  /// connect/disconnect of a container that is not running), with
  /// add_container's checks, in one transaction.
  Status set_endpoints(const std::string& container, const std::vector<EndpointRecord>& endpoints);
  /// A container's endpoints, by position.
  Result<std::vector<EndpointRecord>> endpoints_of(const std::string& container);
  /// The endpoints on a network, by container.
  Result<std::vector<EndpointRecord>> endpoints_on(const std::string& network);

  /// Leases an address on each of `container`'s networks, in one
  /// transaction: its fixed address, else the one it held last when free,
  /// else the lowest free address of `pools[network]`. A lease held by a
  /// container for which `alive` says false is stale and given up first.
  /// Returns the leases (one per endpoint, in endpoint order). kAlreadyExists
  /// when a fixed address is held by a live container, kUnavailable when a
  /// network has no free address left.
  Result<std::vector<LeaseRecord>> lease_addresses(
      const std::string& container, const std::function<AddressPool(const std::string&)>& pools,
      const std::function<bool(const std::string&)>& alive);
  /// Releases every lease of `container`.
  Status release_addresses(const std::string& container);
  /// Current leases, on `network` ("" = every network).
  Result<std::vector<LeaseRecord>> leases(const std::string& network = "");

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
  /// Inserts endpoints of `container` (inside a caller's transaction).
  Status insert_endpoints(const std::string& container,
                          const std::vector<EndpointRecord>& endpoints);
  sqlite3* db_;
};

/// The current time in Unix nanoseconds.
int64_t now_ns();

}  // namespace vessel::state
