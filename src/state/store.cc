#include "state/store.h"

#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

namespace vessel::state {
namespace {

// 1: containers, volumes. 2: networks, endpoints, leases (added by the
// same IF NOT EXISTS script, so a version 1 store upgrades in place).
// 3: containers.kind ("container" or "machine"), added by kUpgradeTo3.
constexpr int kSchemaVersion = 3;
constexpr const char* kUpgradeTo3 =
    "ALTER TABLE containers ADD COLUMN kind TEXT NOT NULL DEFAULT 'container'";

// Busy waits: SQLite retries a locked database for this long before giving
// up. Writers hold the lock for milliseconds; a minute means "stuck".
constexpr int kBusyTimeoutMs = 60'000;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS containers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  image TEXT NOT NULL,
  image_id TEXT NOT NULL,
  config TEXT NOT NULL,
  created INTEGER NOT NULL,
  status TEXT NOT NULL,
  monitor_pid INTEGER NOT NULL,
  started INTEGER NOT NULL,
  finished INTEGER NOT NULL,
  exit_code INTEGER NOT NULL,
  error TEXT NOT NULL,
  restart_count INTEGER NOT NULL,
  stopped_by_user INTEGER NOT NULL,
  oom_killed INTEGER NOT NULL,
  kind TEXT NOT NULL DEFAULT 'container'
);
CREATE TABLE IF NOT EXISTS volumes (
  name TEXT PRIMARY KEY,
  created INTEGER NOT NULL,
  labels TEXT NOT NULL,
  anonymous INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS volume_uses (
  container TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
  volume TEXT NOT NULL REFERENCES volumes(name),
  PRIMARY KEY (container, volume)
);
CREATE TABLE IF NOT EXISTS networks (
  name TEXT PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  subnet TEXT NOT NULL,
  gateway TEXT NOT NULL,
  bridge TEXT NOT NULL UNIQUE,
  internal INTEGER NOT NULL,
  labels TEXT NOT NULL,
  created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoints (
  container TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
  network TEXT NOT NULL REFERENCES networks(name),
  position INTEGER NOT NULL,
  fixed_ip INTEGER NOT NULL,
  last_ip INTEGER NOT NULL,
  mac TEXT NOT NULL,
  aliases TEXT NOT NULL,
  PRIMARY KEY (container, network)
);
CREATE TABLE IF NOT EXISTS leases (
  network TEXT NOT NULL REFERENCES networks(name),
  ip INTEGER NOT NULL,
  container TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
  PRIMARY KEY (network, ip)
);
)sql";

std::string ip_text(uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 255) + "." +
         std::to_string((ip >> 8) & 255) + "." + std::to_string(ip & 255);
}

constexpr const char* kContainerColumns =
    "id, name, image, image_id, config, created, status, monitor_pid, started, finished, "
    "exit_code, error, restart_count, stopped_by_user, oom_killed, kind";

Error db_error(sqlite3* db, const std::string& what) {
  int code = sqlite3_extended_errcode(db);
  ErrorCode ec = ErrorCode::kInternal;
  if ((code & 0xff) == SQLITE_CONSTRAINT) ec = ErrorCode::kAlreadyExists;
  if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED) ec = ErrorCode::kTimeout;
  return Error(ec, "state store: " + what + ": " + sqlite3_errmsg(db));
}

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  Stmt& bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  /// SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  std::string text(int col) const {
    auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

Result<ContainerRecord> read_container(Stmt& s) {
  ContainerRecord r;
  r.id = s.text(0);
  r.name = s.text(1);
  r.image = s.text(2);
  r.image_id = s.text(3);
  r.config = s.text(4);
  r.created = s.integer(5);
  auto status = parse_state(s.text(6));
  if (!status.ok()) return status.error();
  r.state.status = *status;
  r.state.monitor_pid = static_cast<int>(s.integer(7));
  r.state.started = s.integer(8);
  r.state.finished = s.integer(9);
  r.state.exit_code = static_cast<int>(s.integer(10));
  r.state.error = s.text(11);
  r.state.restart_count = static_cast<int>(s.integer(12));
  r.state.stopped_by_user = s.integer(13) != 0;
  r.state.oom_killed = s.integer(14) != 0;
  r.kind = s.text(15);
  return r;
}

// Binds the state columns starting at parameter `i`.
void bind_state(Stmt& s, int i, const ContainerState& st) {
  s.bind(i, std::string(state_name(st.status)))
      .bind(i + 1, int64_t{st.monitor_pid})
      .bind(i + 2, st.started)
      .bind(i + 3, st.finished)
      .bind(i + 4, int64_t{st.exit_code})
      .bind(i + 5, st.error)
      .bind(i + 6, int64_t{st.restart_count})
      .bind(i + 7, int64_t{st.stopped_by_user})
      .bind(i + 8, int64_t{st.oom_killed});
}

Result<std::vector<ContainerRecord>> query_containers(sqlite3* db, const std::string& where,
                                                      const std::string& arg) {
  std::string sql = std::string("SELECT ") + kContainerColumns + " FROM containers " + where +
                    " ORDER BY created, id";
  Stmt s(db, sql.c_str());
  if (!s.ok()) return db_error(db, "query containers");
  if (!arg.empty()) s.bind(1, arg);
  std::vector<ContainerRecord> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    VESSEL_ASSIGN_OR_RETURN(ContainerRecord r, read_container(s));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return db_error(db, "query containers");
  return out;
}

}  // namespace

const char* state_name(RunState s) {
  switch (s) {
    case RunState::kCreated:
      return "created";
    case RunState::kRunning:
      return "running";
    case RunState::kRestarting:
      return "restarting";
    case RunState::kExited:
      return "exited";
    case RunState::kRemoving:
      return "removing";
  }
  return "unknown";
}

Result<RunState> parse_state(const std::string& name) {
  for (RunState s : {RunState::kCreated, RunState::kRunning, RunState::kRestarting,
                     RunState::kExited, RunState::kRemoving})
    if (name == state_name(s)) return s;
  return Error(ErrorCode::kInvalidArgument, "unknown container state '" + name + "'");
}

int64_t now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  std::unique_ptr<Store> store(new Store(db));
  if (rc != SQLITE_OK) {
    if (!db) return Error(ErrorCode::kInternal, "state store '" + path + "': out of memory");
    return db_error(db, "open '" + path + "'");
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  // WAL: readers never block the writer. synchronous=FULL: a committed
  // transaction survives a power cut, not just a crash of the process.
  // Switching a new database to WAL needs an exclusive lock, and SQLite
  // does not wait for that one through the busy handler: when several
  // processes open a fresh state root at once, retry.
  for (int attempt = 0;; ++attempt) {
    auto wal = store->exec("PRAGMA journal_mode=WAL");
    if (wal.ok()) break;
    if (wal.error().code() != ErrorCode::kTimeout || attempt >= 200) return wal.error();
    ::usleep(10'000);
  }
  VESSEL_TRY(store->exec("PRAGMA synchronous=FULL"));
  VESSEL_TRY(store->exec("PRAGMA foreign_keys=ON"));
  int64_t version = 0;
  {
    // Finalized before the write transaction below: a statement still open
    // would hold a read lock, and upgrading it fails at once (BUSY) instead
    // of waiting when another process is writing.
    Stmt v(db, "PRAGMA user_version");
    if (!v.ok() || v.step() != SQLITE_ROW) return db_error(db, "read schema version");
    version = v.integer(0);
  }
  if (version > kSchemaVersion)
    return Error(ErrorCode::kFailedPrecondition, "state store '" + path + "' has schema version " +
                                                     std::to_string(version) +
                                                     ", newer than this vessel understands (" +
                                                     std::to_string(kSchemaVersion) + ")");
  if (version < kSchemaVersion) {
    VESSEL_TRY(store->exec("BEGIN IMMEDIATE"));
    Status s = store->exec(kSchema);
    // The new table has the column already; an older one gains it.
    if (s.ok() && version > 0 && version < 3) s = store->exec(kUpgradeTo3);
    if (s.ok()) s = store->exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
    if (!s.ok()) {
      (void)store->exec("ROLLBACK");
      return s.error();
    }
    VESSEL_TRY(store->exec("COMMIT"));
  }
  return store;
}

Store::~Store() {
  sqlite3_close_v2(db_);
}

Status Store::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg ? msg : sqlite3_errmsg(db_);
    sqlite3_free(msg);
    Error e = db_error(db_, sql);
    return Error(e.code(), "state store: " + m);
  }
  return ok_status();
}

Status Store::add_container(const ContainerRecord& r,
                            const std::vector<EndpointRecord>& endpoints) {
  VESSEL_TRY(exec("BEGIN IMMEDIATE"));
  auto rollback = [&](Error e) -> Status {
    (void)exec("ROLLBACK");
    return e;
  };
  std::string sql = std::string("INSERT INTO containers (") + kContainerColumns +
                    ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
  {
    Stmt s(db_, sql.c_str());
    if (!s.ok()) return rollback(db_error(db_, "add container"));
    s.bind(1, r.id).bind(2, r.name).bind(3, r.image).bind(4, r.image_id).bind(5, r.config);
    s.bind(6, r.created);
    bind_state(s, 7, r.state);
    s.bind(16, r.kind);
    if (s.step() != SQLITE_DONE) {
      Error e = db_error(db_, "add container");
      if (e.code() != ErrorCode::kAlreadyExists) return rollback(e);
      if (container(r.id).ok())
        return rollback(
            Error(ErrorCode::kAlreadyExists, "a container with id " + r.id + " exists"));
      return rollback(Error(ErrorCode::kAlreadyExists,
                            "the container name \"" + r.name + "\" is already in use"));
    }
  }
  if (auto st = insert_endpoints(r.id, endpoints); !st.ok()) return rollback(st.error());
  VESSEL_TRY(exec("COMMIT"));
  return ok_status();
}

Status Store::insert_endpoints(const std::string& container,
                               const std::vector<EndpointRecord>& endpoints) {
  for (const auto& e : endpoints) {
    if (!network(e.network).ok())
      return Error(ErrorCode::kNotFound, "network " + e.network + " not found");
    if (e.fixed_ip != 0) {
      // A fixed address must not be held by a running container. Another
      // stopped container may have asked for it too: as in Docker, the
      // address goes to whichever starts first (the lease decides).
      Stmt q(db_,
             "SELECT c.name FROM leases l JOIN containers c ON c.id = l.container "
             "WHERE l.network = ?1 AND l.ip = ?2");
      if (!q.ok()) return db_error(db_, "query addresses");
      q.bind(1, e.network).bind(2, int64_t{e.fixed_ip});
      if (q.step() == SQLITE_ROW)
        return Error(ErrorCode::kAlreadyExists, "address " + ip_text(e.fixed_ip) + " on network " +
                                                    e.network + " is already in use by container " +
                                                    q.text(0));
    }
    Stmt s(db_,
           "INSERT INTO endpoints (container, network, position, fixed_ip, last_ip, mac, aliases) "
           "VALUES (?1,?2,?3,?4,?5,?6,?7)");
    if (!s.ok()) return db_error(db_, "add endpoint");
    s.bind(1, container)
        .bind(2, e.network)
        .bind(3, int64_t{e.position})
        .bind(4, int64_t{e.fixed_ip});
    s.bind(5, int64_t{e.last_ip}).bind(6, e.mac).bind(7, e.aliases);
    if (s.step() != SQLITE_DONE) {
      Error err = db_error(db_, "add endpoint");
      if (err.code() == ErrorCode::kAlreadyExists)
        return Error(ErrorCode::kAlreadyExists,
                     e.fixed_ip ? "address " + ip_text(e.fixed_ip) + " on network " + e.network +
                                      " is already in use"
                                : "container is on network " + e.network + " twice");
      return err;
    }
  }
  return ok_status();
}

Status Store::set_endpoints(const std::string& container,
                            const std::vector<EndpointRecord>& endpoints) {
  VESSEL_TRY(exec("BEGIN IMMEDIATE"));
  auto rollback = [&](Error e) -> Status {
    (void)exec("ROLLBACK");
    return e;
  };
  if (auto c = this->container(container); !c.ok()) return rollback(c.error());
  Stmt d(db_, "DELETE FROM endpoints WHERE container = ?1");
  if (!d.ok() || d.bind(1, container).step() != SQLITE_DONE)
    return rollback(db_error(db_, "remove endpoints"));
  if (auto st = insert_endpoints(container, endpoints); !st.ok()) return rollback(st.error());
  VESSEL_TRY(exec("COMMIT"));
  return ok_status();
}

Result<ContainerRecord> Store::container(const std::string& id) {
  VESSEL_ASSIGN_OR_RETURN(auto all, query_containers(db_, "WHERE id = ?1", id));
  if (all.empty()) return Error(ErrorCode::kNotFound, "No such container: " + id);
  return std::move(all.front());
}

Result<ContainerRecord> Store::find_container(const std::string& ref) {
  if (ref.empty()) return Error(ErrorCode::kInvalidArgument, "empty container name or id");
  VESSEL_ASSIGN_OR_RETURN(auto by_name, query_containers(db_, "WHERE name = ?1", ref));
  if (!by_name.empty()) return std::move(by_name.front());
  // An id prefix: only hex characters can match, and LIKE's wildcards
  // cannot appear in one.
  bool hex = ref.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (!hex) return Error(ErrorCode::kNotFound, "No such container: " + ref);
  VESSEL_ASSIGN_OR_RETURN(auto by_id, query_containers(db_, "WHERE id LIKE ?1", ref + "%"));
  if (by_id.empty()) return Error(ErrorCode::kNotFound, "No such container: " + ref);
  if (by_id.size() > 1)
    return Error(ErrorCode::kInvalidArgument,
                 "multiple containers match '" + ref + "': give more of the id");
  return std::move(by_id.front());
}

Result<std::vector<ContainerRecord>> Store::containers() {
  return query_containers(db_, "", "");
}

Result<ContainerRecord> Store::update_container(
    const std::string& id, const std::function<Status(ContainerRecord&)>& change) {
  // IMMEDIATE takes the write lock up front: no other writer can change
  // the row between our read and our write.
  VESSEL_TRY(exec("BEGIN IMMEDIATE"));
  auto rollback = [&](Error e) -> Result<ContainerRecord> {
    (void)exec("ROLLBACK");
    return e;
  };
  auto current = container(id);
  if (!current.ok()) return rollback(current.error());
  ContainerRecord r = std::move(*current);
  if (auto s = change(r); !s.ok()) return rollback(s.error());
  Stmt s(db_,
         "UPDATE containers SET status=?1, monitor_pid=?2, started=?3, finished=?4, "
         "exit_code=?5, error=?6, restart_count=?7, stopped_by_user=?8, oom_killed=?9, "
         "config=?10 WHERE id=?11");
  if (!s.ok()) return rollback(db_error(db_, "update container"));
  bind_state(s, 1, r.state);
  s.bind(10, r.config).bind(11, id);
  if (s.step() != SQLITE_DONE) return rollback(db_error(db_, "update container"));
  VESSEL_TRY(exec("COMMIT"));
  return r;
}

Status Store::rename_container(const std::string& id, const std::string& name) {
  Stmt s(db_, "UPDATE containers SET name = ?1 WHERE id = ?2");
  if (!s.ok()) return db_error(db_, "rename container");
  if (s.bind(1, name).bind(2, id).step() != SQLITE_DONE) {
    Error e = db_error(db_, "rename container");
    if (e.code() == ErrorCode::kAlreadyExists)
      return Error(ErrorCode::kAlreadyExists, "the name '" + name + "' is in use");
    return e;
  }
  if (sqlite3_changes(db_) == 0) return Error(ErrorCode::kNotFound, "No such container: " + id);
  return ok_status();
}

Status Store::remove_container(const std::string& id) {
  Stmt s(db_, "DELETE FROM containers WHERE id = ?1");
  if (!s.ok() || s.bind(1, id).step() != SQLITE_DONE) return db_error(db_, "remove container");
  if (sqlite3_changes(db_) == 0) return Error(ErrorCode::kNotFound, "No such container: " + id);
  return ok_status();
}

namespace {

constexpr const char* kNetworkColumns =
    "name, id, subnet, gateway, bridge, internal, labels, created";

NetworkRecord read_network(Stmt& s) {
  return NetworkRecord{s.text(0), s.text(1),         s.text(2), s.text(3),
                       s.text(4), s.integer(5) != 0, s.text(6), s.integer(7)};
}

constexpr const char* kEndpointColumns =
    "container, network, position, fixed_ip, last_ip, mac, aliases";

EndpointRecord read_endpoint(Stmt& s) {
  EndpointRecord e;
  e.container = s.text(0);
  e.network = s.text(1);
  e.position = static_cast<int>(s.integer(2));
  e.fixed_ip = static_cast<uint32_t>(s.integer(3));
  e.last_ip = static_cast<uint32_t>(s.integer(4));
  e.mac = s.text(5);
  e.aliases = s.text(6);
  return e;
}

}  // namespace

Status Store::add_network(const NetworkRecord& r) {
  std::string sql =
      std::string("INSERT INTO networks (") + kNetworkColumns + ") VALUES (?,?,?,?,?,?,?,?)";
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return db_error(db_, "add network");
  s.bind(1, r.name).bind(2, r.id).bind(3, r.subnet).bind(4, r.gateway).bind(5, r.bridge);
  s.bind(6, int64_t{r.internal}).bind(7, r.labels).bind(8, r.created);
  if (s.step() != SQLITE_DONE) {
    Error e = db_error(db_, "add network");
    if (e.code() == ErrorCode::kAlreadyExists)
      return Error(ErrorCode::kAlreadyExists, "network with name " + r.name + " already exists");
    return e;
  }
  return ok_status();
}

Result<NetworkRecord> Store::network(const std::string& name) {
  std::string sql = std::string("SELECT ") + kNetworkColumns + " FROM networks WHERE name = ?1";
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return db_error(db_, "query network");
  s.bind(1, name);
  int rc = s.step();
  if (rc == SQLITE_DONE) return Error(ErrorCode::kNotFound, "network " + name + " not found");
  if (rc != SQLITE_ROW) return db_error(db_, "query network");
  return read_network(s);
}

Result<std::vector<NetworkRecord>> Store::networks() {
  std::string sql = std::string("SELECT ") + kNetworkColumns + " FROM networks ORDER BY name";
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return db_error(db_, "query networks");
  std::vector<NetworkRecord> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW)
    out.push_back(read_network(s));
  if (rc != SQLITE_DONE) return db_error(db_, "query networks");
  return out;
}

Status Store::remove_network(const std::string& name) {
  VESSEL_TRY(exec("BEGIN IMMEDIATE"));
  auto rollback = [&](Error e) -> Status {
    (void)exec("ROLLBACK");
    return e;
  };
  {
    Stmt q(db_,
           "SELECT c.name FROM endpoints e JOIN containers c ON c.id = e.container "
           "WHERE e.network = ?1 ORDER BY c.created LIMIT 1");
    if (!q.ok()) return rollback(db_error(db_, "query endpoints"));
    q.bind(1, name);
    if (q.step() == SQLITE_ROW)
      return rollback(Error(
          ErrorCode::kFailedPrecondition,
          "network " + name + " has containers attached (" + q.text(0) + "): remove them first"));
  }
  {
    Stmt d(db_, "DELETE FROM leases WHERE network = ?1");
    if (!d.ok() || d.bind(1, name).step() != SQLITE_DONE)
      return rollback(db_error(db_, "remove leases"));
  }
  Stmt s(db_, "DELETE FROM networks WHERE name = ?1");
  if (!s.ok() || s.bind(1, name).step() != SQLITE_DONE)
    return rollback(db_error(db_, "remove network"));
  if (sqlite3_changes(db_) == 0)
    return rollback(Error(ErrorCode::kNotFound, "network " + name + " not found"));
  VESSEL_TRY(exec("COMMIT"));
  return ok_status();
}

namespace {

Result<std::vector<EndpointRecord>> query_endpoints(sqlite3* db, const char* where,
                                                    const std::string& arg) {
  std::string sql = std::string("SELECT ") + kEndpointColumns + " FROM endpoints " + where;
  Stmt s(db, sql.c_str());
  if (!s.ok()) return db_error(db, "query endpoints");
  s.bind(1, arg);
  std::vector<EndpointRecord> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW)
    out.push_back(read_endpoint(s));
  if (rc != SQLITE_DONE) return db_error(db, "query endpoints");
  return out;
}

}  // namespace

Result<std::vector<EndpointRecord>> Store::endpoints_of(const std::string& container) {
  return query_endpoints(db_, "WHERE container = ?1 ORDER BY position", container);
}

Result<std::vector<EndpointRecord>> Store::endpoints_on(const std::string& network) {
  return query_endpoints(db_, "WHERE network = ?1 ORDER BY container", network);
}

Result<std::vector<LeaseRecord>> Store::leases(const std::string& network) {
  Stmt s(db_, network.empty()
                  ? "SELECT network, ip, container FROM leases ORDER BY network, ip"
                  : "SELECT network, ip, container FROM leases WHERE network = ?1 ORDER BY ip");
  if (!s.ok()) return db_error(db_, "query leases");
  if (!network.empty()) s.bind(1, network);
  std::vector<LeaseRecord> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW)
    out.push_back({s.text(0), static_cast<uint32_t>(s.integer(1)), s.text(2)});
  if (rc != SQLITE_DONE) return db_error(db_, "query leases");
  return out;
}

Status Store::release_addresses(const std::string& container) {
  Stmt s(db_, "DELETE FROM leases WHERE container = ?1");
  if (!s.ok() || s.bind(1, container).step() != SQLITE_DONE)
    return db_error(db_, "release addresses");
  return ok_status();
}

Result<std::vector<LeaseRecord>> Store::lease_addresses(
    const std::string& container, const std::function<AddressPool(const std::string&)>& pools,
    const std::function<bool(const std::string&)>& alive) {
  VESSEL_TRY(exec("BEGIN IMMEDIATE"));
  auto rollback = [&](Error e) -> Result<std::vector<LeaseRecord>> {
    (void)exec("ROLLBACK");
    return e;
  };
  auto eps = endpoints_of(container);
  if (!eps.ok()) return rollback(eps.error());
  std::vector<LeaseRecord> out;
  for (const auto& e : *eps) {
    auto held = leases(e.network);
    if (!held.ok()) return rollback(held.error());
    // Ours already (a restart under the same monitor), or stale: a holder
    // whose monitor is gone gives its addresses up.
    std::map<uint32_t, std::string> used;
    std::optional<uint32_t> mine;
    for (const auto& l : *held) {
      if (l.container == container) {
        mine = l.ip;
        continue;
      }
      if (!alive(l.container)) {
        Stmt d(db_, "DELETE FROM leases WHERE container = ?1");
        if (!d.ok() || d.bind(1, l.container).step() != SQLITE_DONE)
          return rollback(db_error(db_, "release stale lease"));
        continue;
      }
      used[l.ip] = l.container;
    }
    if (mine) {
      out.push_back({e.network, *mine, container});
      continue;
    }
    AddressPool pool = pools(e.network);
    auto usable = [&](uint32_t ip) {
      if (ip < pool.first || ip > pool.last || used.count(ip)) return false;
      return std::find(pool.reserved.begin(), pool.reserved.end(), ip) == pool.reserved.end();
    };
    uint32_t ip = 0;
    if (e.fixed_ip != 0) {
      if (!usable(e.fixed_ip)) {
        std::string holder = used.count(e.fixed_ip) ? used[e.fixed_ip] : "";
        return rollback(Error(ErrorCode::kAlreadyExists,
                              "address " + ip_text(e.fixed_ip) + " on network " + e.network +
                                  " is already in use" +
                                  (holder.empty() ? "" : " by container " + holder.substr(0, 12))));
      }
      ip = e.fixed_ip;
    } else if (e.last_ip != 0 && usable(e.last_ip)) {
      ip = e.last_ip;
    } else {
      for (uint64_t a = pool.first; a <= pool.last && pool.first != 0; ++a) {
        if (usable(static_cast<uint32_t>(a))) {
          ip = static_cast<uint32_t>(a);
          break;
        }
      }
      if (ip == 0)
        return rollback(
            Error(ErrorCode::kUnavailable, "network " + e.network + " has no free address left"));
    }
    Stmt ins(db_, "INSERT INTO leases (network, ip, container) VALUES (?1, ?2, ?3)");
    if (!ins.ok()) return rollback(db_error(db_, "lease address"));
    ins.bind(1, e.network).bind(2, int64_t{ip}).bind(3, container);
    if (ins.step() != SQLITE_DONE) return rollback(db_error(db_, "lease address"));
    Stmt up(db_, "UPDATE endpoints SET last_ip = ?1 WHERE container = ?2 AND network = ?3");
    if (!up.ok()) return rollback(db_error(db_, "record address"));
    up.bind(1, int64_t{ip}).bind(2, container).bind(3, e.network);
    if (up.step() != SQLITE_DONE) return rollback(db_error(db_, "record address"));
    out.push_back({e.network, ip, container});
  }
  VESSEL_TRY(exec("COMMIT"));
  return out;
}

Status Store::add_volume(const VolumeRecord& r) {
  Stmt s(db_, "INSERT INTO volumes (name, created, labels, anonymous) VALUES (?1,?2,?3,?4)");
  if (!s.ok()) return db_error(db_, "add volume");
  s.bind(1, r.name).bind(2, r.created).bind(3, r.labels).bind(4, int64_t{r.anonymous});
  if (s.step() != SQLITE_DONE) {
    Error e = db_error(db_, "add volume");
    if (e.code() == ErrorCode::kAlreadyExists)
      return Error(ErrorCode::kAlreadyExists, "volume \"" + r.name + "\" already exists");
    return e;
  }
  return ok_status();
}

Result<VolumeRecord> Store::volume(const std::string& name) {
  Stmt s(db_, "SELECT name, created, labels, anonymous FROM volumes WHERE name = ?1");
  if (!s.ok()) return db_error(db_, "query volume");
  s.bind(1, name);
  int rc = s.step();
  if (rc == SQLITE_DONE) return Error(ErrorCode::kNotFound, "No such volume: " + name);
  if (rc != SQLITE_ROW) return db_error(db_, "query volume");
  return VolumeRecord{s.text(0), s.integer(1), s.text(2), s.integer(3) != 0};
}

Result<std::vector<VolumeRecord>> Store::volumes() {
  Stmt s(db_, "SELECT name, created, labels, anonymous FROM volumes ORDER BY name");
  if (!s.ok()) return db_error(db_, "query volumes");
  std::vector<VolumeRecord> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW)
    out.push_back({s.text(0), s.integer(1), s.text(2), s.integer(3) != 0});
  if (rc != SQLITE_DONE) return db_error(db_, "query volumes");
  return out;
}

Status Store::remove_volume(const std::string& name) {
  VESSEL_ASSIGN_OR_RETURN(auto users, volume_users(name));
  if (!users.empty())
    return Error(ErrorCode::kFailedPrecondition,
                 "volume \"" + name + "\" is in use by container " + users.front().substr(0, 12));
  Stmt s(db_, "DELETE FROM volumes WHERE name = ?1");
  if (!s.ok() || s.bind(1, name).step() != SQLITE_DONE) return db_error(db_, "remove volume");
  if (sqlite3_changes(db_) == 0) return Error(ErrorCode::kNotFound, "No such volume: " + name);
  return ok_status();
}

Status Store::add_volume_use(const std::string& container, const std::string& volume) {
  Stmt s(db_, "INSERT OR IGNORE INTO volume_uses (container, volume) VALUES (?1, ?2)");
  if (!s.ok() || s.bind(1, container).bind(2, volume).step() != SQLITE_DONE)
    return db_error(db_, "record volume use");
  return ok_status();
}

Result<std::vector<std::string>> Store::volume_users(const std::string& volume) {
  Stmt s(db_, "SELECT container FROM volume_uses WHERE volume = ?1 ORDER BY container");
  if (!s.ok()) return db_error(db_, "query volume users");
  s.bind(1, volume);
  std::vector<std::string> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW)
    out.push_back(s.text(0));
  if (rc != SQLITE_DONE) return db_error(db_, "query volume users");
  return out;
}

}  // namespace vessel::state
