#include "sys/systemd_scope.h"

#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <chrono>
#include <memory>

#include "sys/fs.h"

namespace vessel::sys {

namespace {

struct BusUnref {
  void operator()(sd_bus* b) const { sd_bus_flush_close_unref(b); }
};
struct MessageUnref {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using Bus = std::unique_ptr<sd_bus, BusUnref>;
using Message = std::unique_ptr<sd_bus_message, MessageUnref>;

Error bus_error(int r, const std::string& what) {
  return Error::from_errno(-r, "systemd: " + what);
}

// systemd's own socket (root, no D-Bus daemon needed, what systemctl uses
// as root), else the system bus.
Result<Bus> connect() {
  sd_bus* raw = nullptr;
  if (::geteuid() == 0 && ::access("/run/systemd/private", F_OK) == 0 && sd_bus_new(&raw) >= 0) {
    Bus bus(raw);
    if (sd_bus_set_address(raw, "unix:path=/run/systemd/private") >= 0 && sd_bus_start(raw) >= 0)
      return bus;
  }
  raw = nullptr;
  int r = sd_bus_open_system(&raw);
  if (r < 0) return bus_error(r, "connect to the system bus");
  return Bus(raw);
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
  VESSEL_ASSIGN_OR_RETURN(Bus bus, connect());
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_call(bus.get(), &raw, "org.freedesktop.systemd1",
                                         "/org/freedesktop/systemd1",
                                         "org.freedesktop.systemd1.Manager", "StartTransientUnit");
  if (r < 0) return bus_error(r, "make a StartTransientUnit call");
  Message m(raw);
  auto append = [&](int result) {
    if (r >= 0) r = result;
  };
  append(sd_bus_message_append(m.get(), "ss", q.unit.c_str(), "fail"));
  append(sd_bus_message_open_container(m.get(), 'a', "(sv)"));
  append(sd_bus_message_append(m.get(), "(sv)", "Description", "s", q.description.c_str()));
  append(sd_bus_message_append(m.get(), "(sv)", "Slice", "s", q.slice.c_str()));
  // Its cgroup is ours to manage below it (and the processes in it).
  append(sd_bus_message_append(m.get(), "(sv)", "Delegate", "b", 1));
  append(sd_bus_message_append(m.get(), "(sv)", "PIDs", "au", 1, static_cast<uint32_t>(pid)));
  // Gone once empty, also when it failed: a name for the next start.
  append(sd_bus_message_append(m.get(), "(sv)", "CollectMode", "s", "inactive-or-failed"));
  if (q.memory_max) {
    append(sd_bus_message_append(m.get(), "(sv)", "MemoryMax", "t", q.memory_max));
    append(sd_bus_message_append(m.get(), "(sv)", "MemorySwapMax", "t", uint64_t{0}));
  }
  if (q.tasks_max) append(sd_bus_message_append(m.get(), "(sv)", "TasksMax", "t", q.tasks_max));
  if (q.cpu_weight) append(sd_bus_message_append(m.get(), "(sv)", "CPUWeight", "t", q.cpu_weight));
  append(sd_bus_message_close_container(m.get()));
  append(sd_bus_message_append(m.get(), "a(sa(sv))", 0));
  if (r < 0) return bus_error(r, "build the StartTransientUnit call");

  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  r = sd_bus_call(bus.get(), m.get(), 10'000'000, &error, &reply);
  sd_bus_message_unref(reply);
  if (r < 0) {
    std::string why = error.message ? error.message : "";
    sd_bus_error_free(&error);
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
