#include "sys/systemd_scope.h"

#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <chrono>
#include <memory>

#include "base/library.h"
#include "sys/fs.h"

namespace vessel::sys {

namespace {

// libsystemd is opened when a scope is first asked for, not linked: only
// hosts where systemd manages the cgroups need it, and with its compression
// and crypto libraries it cost every start of the CLI and of each monitor
// ~1 ms (docs/architecture.md, "Libraries opened on demand").
struct SdBus {
  decltype(&sd_bus_new) bus_new;
  decltype(&sd_bus_set_address) set_address;
  decltype(&sd_bus_start) start;
  decltype(&sd_bus_open_system) open_system;
  decltype(&sd_bus_flush_close_unref) flush_close_unref;
  decltype(&sd_bus_message_new_method_call) message_new_method_call;
  decltype(&sd_bus_message_append) message_append;
  decltype(&sd_bus_message_open_container) message_open_container;
  decltype(&sd_bus_message_close_container) message_close_container;
  decltype(&sd_bus_message_unref) message_unref;
  decltype(&sd_bus_call) call;
  decltype(&sd_bus_error_free) error_free;
};

Result<const SdBus*> load_sd_bus() {
  static SdBus api;
  Library lib("libsystemd.so.0", "libsystemd0");
  lib.bind(api.bus_new, "sd_bus_new");
  lib.bind(api.set_address, "sd_bus_set_address");
  lib.bind(api.start, "sd_bus_start");
  lib.bind(api.open_system, "sd_bus_open_system");
  lib.bind(api.flush_close_unref, "sd_bus_flush_close_unref");
  lib.bind(api.message_new_method_call, "sd_bus_message_new_method_call");
  lib.bind(api.message_append, "sd_bus_message_append");
  lib.bind(api.message_open_container, "sd_bus_message_open_container");
  lib.bind(api.message_close_container, "sd_bus_message_close_container");
  lib.bind(api.message_unref, "sd_bus_message_unref");
  lib.bind(api.call, "sd_bus_call");
  lib.bind(api.error_free, "sd_bus_error_free");
  if (Status s = lib.status(); !s.ok()) return s.error().wrap("systemd");
  return &api;
}

Result<const SdBus*> sd_bus_api() {
  static const Result<const SdBus*> loaded = load_sd_bus();
  return loaded;
}

struct BusUnref {
  const SdBus* api;
  void operator()(sd_bus* b) const { api->flush_close_unref(b); }
};
struct MessageUnref {
  const SdBus* api;
  void operator()(sd_bus_message* m) const { api->message_unref(m); }
};
using Bus = std::unique_ptr<sd_bus, BusUnref>;
using Message = std::unique_ptr<sd_bus_message, MessageUnref>;

Error bus_error(int r, const std::string& what) {
  return Error::from_errno(-r, "systemd: " + what);
}

// systemd's own socket (root, no D-Bus daemon needed, what systemctl uses
// as root), else the system bus.
Result<Bus> connect(const SdBus& api) {
  sd_bus* raw = nullptr;
  if (::geteuid() == 0 && ::access("/run/systemd/private", F_OK) == 0 && api.bus_new(&raw) >= 0) {
    Bus bus(raw, BusUnref{&api});
    if (api.set_address(raw, "unix:path=/run/systemd/private") >= 0 && api.start(raw) >= 0)
      return bus;
  }
  raw = nullptr;
  int r = api.open_system(&raw);
  if (r < 0) return bus_error(r, "connect to the system bus");
  return Bus(raw, BusUnref{&api});
}

bool in_unit(pid_t pid, const std::string& unit) {
  auto text = read_file("/proc/" + std::to_string(pid) + "/cgroup", 1 << 16);
  return text.ok() && text->find("/" + unit + "\n") != std::string::npos;
}

}  // namespace

bool systemd_manages_cgroups() {
  struct stat st;
  return ::lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

Status start_scope(const ScopeRequest& q, pid_t pid) {
  VESSEL_ASSIGN_OR_RETURN(const SdBus* api, sd_bus_api());
  VESSEL_ASSIGN_OR_RETURN(Bus bus, connect(*api));
  sd_bus_message* raw = nullptr;
  int r = api->message_new_method_call(bus.get(), &raw, "org.freedesktop.systemd1",
                                       "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "StartTransientUnit");
  if (r < 0) return bus_error(r, "make a StartTransientUnit call");
  Message m(raw, MessageUnref{api});
  auto append = [&](int result) {
    if (r >= 0) r = result;
  };
  append(api->message_append(m.get(), "ss", q.unit.c_str(), "fail"));
  append(api->message_open_container(m.get(), 'a', "(sv)"));
  append(api->message_append(m.get(), "(sv)", "Description", "s", q.description.c_str()));
  append(api->message_append(m.get(), "(sv)", "Slice", "s", q.slice.c_str()));
  // Its cgroup is ours to manage below it (and the processes in it).
  append(api->message_append(m.get(), "(sv)", "Delegate", "b", 1));
  append(api->message_append(m.get(), "(sv)", "PIDs", "au", 1, static_cast<uint32_t>(pid)));
  // Gone once empty, also when it failed: a name for the next start.
  append(api->message_append(m.get(), "(sv)", "CollectMode", "s", "inactive-or-failed"));
  if (q.memory_max) {
    append(api->message_append(m.get(), "(sv)", "MemoryMax", "t", q.memory_max));
    append(api->message_append(m.get(), "(sv)", "MemorySwapMax", "t", uint64_t{0}));
  }
  if (q.tasks_max) append(api->message_append(m.get(), "(sv)", "TasksMax", "t", q.tasks_max));
  if (q.cpu_weight) append(api->message_append(m.get(), "(sv)", "CPUWeight", "t", q.cpu_weight));
  append(api->message_close_container(m.get()));
  append(api->message_append(m.get(), "a(sa(sv))", 0));
  if (r < 0) return bus_error(r, "build the StartTransientUnit call");

  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  r = api->call(bus.get(), m.get(), 10'000'000, &error, &reply);
  api->message_unref(reply);
  if (r < 0) {
    std::string why = error.message ? error.message : "";
    api->error_free(&error);
    if (why.empty()) return bus_error(r, "start " + q.unit);
    return Error(ErrorCode::kUnavailable, "systemd: start " + q.unit + ": " + why);
  }
  // The call queued a start job; the move is done when the job is.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!in_unit(pid, q.unit)) {
    if (std::chrono::steady_clock::now() > deadline)
      return Error(ErrorCode::kTimeout,
                   "systemd: " + q.unit + " started, but the process is not in it after 10 s");
    ::usleep(2000);
  }
  return ok_status();
}

}  // namespace vessel::sys
