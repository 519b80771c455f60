#include "state/store.h"

#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include <utility>

namespace vessel::state {
namespace {

constexpr int kSchemaVersion = 1;

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
  oom_killed INTEGER NOT NULL
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
)sql";

constexpr const char* kContainerColumns =
    "id, name, image, image_id, config, created, status, monitor_pid, started, finished, "
    "exit_code, error, restart_count, stopped_by_user, oom_killed";

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

Status Store::add_container(const ContainerRecord& r) {
  std::string sql = std::string("INSERT INTO containers (") + kContainerColumns +
                    ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return db_error(db_, "add container");
  s.bind(1, r.id).bind(2, r.name).bind(3, r.image).bind(4, r.image_id).bind(5, r.config);
  s.bind(6, r.created);
  bind_state(s, 7, r.state);
  if (s.step() != SQLITE_DONE) {
    Error e = db_error(db_, "add container");
    if (e.code() != ErrorCode::kAlreadyExists) return e;
    if (container(r.id).ok())
      return Error(ErrorCode::kAlreadyExists, "a container with id " + r.id + " exists");
    return Error(ErrorCode::kAlreadyExists,
                 "the container name \"" + r.name + "\" is already in use");
  }
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

Status Store::remove_container(const std::string& id) {
  Stmt s(db_, "DELETE FROM containers WHERE id = ?1");
  if (!s.ok() || s.bind(1, id).step() != SQLITE_DONE) return db_error(db_, "remove container");
  if (sqlite3_changes(db_) == 0) return Error(ErrorCode::kNotFound, "No such container: " + id);
  return ok_status();
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
