#include "monitor/monitor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "base/log.h"
#include "monitor/api.h"
#include "net/netns_link.h"
#include "net/port_proxy.h"
#include "networks/networks.h"
#include "runtime/config.h"
#include "runtime/container_vm.h"
#include "runtime/etc_files.h"
#include "runtime/log_file.h"
#include "runtime/paths.h"
#include "runtime/runtime_dir.h"
#include "state/store.h"
#include "sys/fs.h"
#include "sys/host_cgroup.h"
#include "sys/jail.h"
#include "sys/process.h"
#include "sys/unix_socket.h"

namespace vessel::monitor {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Frame = protocol::FrameReader::Frame;
using protocol::MsgType;
using runtime::ContainerConfig;
using runtime::RestartPolicy;

// An attached client whose unsent output exceeds this is dropped rather
// than allowed to stall the container.
constexpr size_t kMaxQueued = 16 << 20;
// A client of an exec'd process or a copy gets backpressure instead: while
// this much waits for it, the guest's channel is not read (the guest then
// blocks its writers), so a slow `cp` or `export` reader costs no memory.
constexpr size_t kPauseQueued = 4 << 20;

struct Client {
  explicit Client(Channel c) : ch(std::move(c)) {}
  Channel ch;
  bool attached = false;  // receives the main process's output and exit
  bool output = false;
  bool gone = false;
  /// Connected on a pod member's socket: addresses that container ("" =
  /// this monitor's own).
  std::string member;
};

// An exec'd process: which client stream its guest stream belongs to.
struct Route {
  int client_fd;  // -1 once the client left (output is dropped)
  uint32_t client_stream;
};

std::vector<uint8_t> reply_payload(int errnum, const std::string& message, uint32_t pid = 0) {
  return protocol::encode(protocol::Reply{errnum, message, pid});
}

class Monitor {
 public:
  Monitor(const MonitorOptions& o, std::unique_ptr<state::Store> store, ContainerConfig config,
          runtime::RuntimeDir rdir, UniqueFd listener, UniqueFd signals,
          std::optional<sys::HostCgroup> cgroup)
      : o_(o),
        store_(std::move(store)),
        config_(std::move(config)),
        rdir_(std::move(rdir)),
        listener_(std::move(listener)),
        signals_(std::move(signals)),
        cdir_(runtime::container_dir(o.root, o.id)),
        cgroup_(std::move(cgroup)) {}

  int run();

 private:
  // A maintenance boot (MonitorOptions::maintenance): the VM up for copies
  // until no client has been connected for a moment.
  int run_maintenance();
  // Once the VM and its daemons are gone: leaves the host cgroup and
  // removes it, then the runtime directory (the lock goes last).
  void leave_host() {
    if (cgroup_) {
      if (auto st = cgroup_->leave(); !st.ok()) log::warn(st.error().to_string());
      cgroup_.reset();
    }
    runtime::RuntimeDir gone = std::move(rdir_);
  }
  runtime::BootOptions boot_options() const;
  // Phase timings for --debug (monitor.log): where a start spends its time.
  void phase(const char* what) {
    if (log::level() > log::Level::kDebug) return;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0_).count();
    log::debug("+" + std::to_string(ms) + " ms: " + what);
  }

  // ---- progress reports to the starter, the store and the clients ----
  void report(const std::string& line) {
    if (o_.ready_fd < 0) return;
    if (!sys::write_all(o_.ready_fd, line.data(), line.size()).ok()) {
      ::close(o_.ready_fd);
      o_.ready_fd = -1;
    }
  }
  void report_done() {
    if (o_.ready_fd >= 0) ::close(o_.ready_fd);
    o_.ready_fd = -1;
  }
  void update(const std::function<void(state::ContainerState&)>& change) {
    if (o_.maintenance) return;  // the container is not running: its record stays
    auto r = store_->update_container(o_.id, [&](state::ContainerRecord& rec) {
      change(rec.state);
      return ok_status();
    });
    if (!r.ok()) log::warn("record state: " + r.error().to_string());
  }

  // ---- one start of the container ----
  // Boots and starts the main process. On failure returns the exit code to
  // record (125 for Vessel's own failures, 126/127 for the command) and sets
  // start_error_.
  std::optional<int> start();
  void handle_main_exit(int code, bool oom);
  bool should_restart(int exit_code) const;
  // Once the VM runs and no other will be started by this monitor (no
  // restart policy, not a machine, no caller's namespace to tidy): the
  // capabilities only a start needs go for good.
  void drop_start_privileges();

  // ---- serving ----
  // One round: waits up to `timeout` for events and handles them.
  void serve(std::chrono::milliseconds timeout);
  void accept_clients();
  void handle_client_frame(int fd, Client& c, Frame& f);
  void handle_guest_frame(Frame& f);
  // An exec'd process's Stdin, Signal or Resize from the client that runs it.
  void forward_to_exec(int fd, Frame& f);
  void drop_client(int fd);
  void broadcast(uint16_t type, uint32_t stream, std::span<const uint8_t> payload);
  void request_stop(int signal, int timeout, int client_fd);
  void send_to_main(MsgType type, std::span<const uint8_t> payload) {
    if (vm_ && main_running_) {
      if (auto s = vm_->agent().send(type, kMainStream, payload); !s.ok())
        log::warn("send to guest: " + s.error().to_string());
    }
  }
  void finish_stop_waiters(int errnum, const std::string& message) {
    for (int fd : stop_waiters_)
      if (auto it = clients_.find(fd); it != clients_.end())
        it->second->ch.queue(type_code(ApiType::kResult), 0, reply_payload(errnum, message));
    stop_waiters_.clear();
  }
  void flush_clients(std::chrono::milliseconds budget);
  bool machine() const { return config_.machine.enabled; }
  // A VM that takes a pod's containers; one that runs no process of its
  // own (a CRI sandbox: vessel-init stands for pause).
  bool sandbox() const { return config_.pod_role == runtime::kPodSandbox; }
  bool idle() const { return sandbox() && config_.no_process; }

  // ---- a pod's containers, in the VM of this monitor (the pod's sandbox) ----
  struct Member {
    std::string id;
    ContainerConfig config;
    uint32_t index = 0;   // its container number in the guest (Setup.container)
    uint32_t stream = 0;  // the guest stream of its Setup, then of its main process
    enum class Phase { kSettingUp, kHeld, kStarting, kRunning, kEnded } phase = Phase::kSettingUp;
    int add_fd = -1;  // the client waiting for it to be set up
    std::optional<runtime::RuntimeDir> rdir;
    UniqueFd listener;
    std::optional<runtime::LogWriter> log;
    uint32_t pid = 0;
    int stdin_client = -1;
    protocol::Update limits;
    protocol::Resize pending_size;
    std::vector<int> stop_waiters;
    std::optional<Clock::time_point> kill_at;
    protocol::Exit exit;  // once ended
  };
  std::map<std::string, std::unique_ptr<Member>> members_;
  uint32_t next_member_index_ = 1;
  void add_member(int fd, const std::string& id);
  // A frame from a client on a member's socket.
  void handle_member_frame(int fd, Client& c, Member& m, Frame& f);
  // A guest frame on a member's stream; false when it is no member's.
  bool handle_member_guest_frame(Frame& f);
  // The member's process ended (or never will): the guest drops the
  // container, the store records the end, its socket goes, clients hear it.
  // One that never started tells its clients so first (Started with
  // `start_errnum` and `error`).
  void end_member(Member& m, const protocol::Exit& exit, const std::string& error,
                  int start_errnum = EIO);
  void update_member(const Member& m, const std::function<void(state::ContainerState&)>& change);
  Member* member_at_stream(uint32_t stream);

  // ---- networking: made once per monitor, kept across restarts ----
  // Leases the container's addresses, makes its taps (they live as long as
  // this process holds them: a dead monitor leaves none) and binds its
  // published ports.
  Status setup_network(runtime::BootOptions& b);
  Status setup_netns(runtime::BootOptions& b);
  void sync_dns();
  void release_network();

  MonitorOptions o_;
  std::unique_ptr<state::Store> store_;
  ContainerConfig config_;
  runtime::RuntimeDir rdir_;
  UniqueFd listener_;
  UniqueFd signals_;
  std::string cdir_;
  std::optional<sys::HostCgroup> cgroup_;  // this process's host cgroup (VESSEL_CONFINE)
  std::optional<runtime::LogWriter> log_;

  std::map<int, std::unique_ptr<Client>> clients_;
  int stdin_client_ = -1;
  std::map<uint32_t, Route> routes_;  // guest stream -> client
  uint32_t next_stream_ = 2;
  std::vector<int> stop_waiters_;
  std::deque<int> stats_waiters_;
  /// Clients waiting for UpdateResult, in the order the guest answers, with
  /// the limits each asked for (fd -1: the client went away).
  struct UpdateWaiter {
    int fd = -1;
    protocol::Update limits;
    std::string member;  // whose limits ("" = this container's)
  };
  std::deque<UpdateWaiter> update_waiters_;
  /// The container cgroup's limits in the guest (Setup's, then Updates').
  protocol::Update limits_;
  void end_update_waiters();

  std::unique_ptr<networks::Networks> networks_;
  std::vector<networks::Nic> nics_;
  std::vector<UniqueFd> taps_;
  std::unique_ptr<net::PortProxy> proxy_;
  bool network_ready_ = false;
  std::unique_ptr<net::NetnsLink> netns_link_;  // config_.netns_path joined

  std::unique_ptr<runtime::ContainerVm> vm_;
  bool main_running_ = false;
  uint32_t main_pid_ = 0;
  std::optional<protocol::Exit> main_exit_;
  bool vm_died_ = false;
  std::string start_error_;

  Clock::time_point t0_ = Clock::now();
  bool stop_requested_ = false;
  std::optional<Clock::time_point> kill_at_, force_at_;
  int restart_count_ = 0;
  bool start_privileges_dropped_ = false;
  protocol::Resize pending_size_;  // the main stream's last window size from a client
};

runtime::BootOptions Monitor::boot_options() const {
  runtime::BootOptions b;
  b.state_root = o_.root;
  b.runtime_dir = rdir_.path();
  b.boot_log = cdir_ + "/boot.log";
  b.upper_disk = cdir_ + "/upper.img";
  b.root_overlay = cdir_ + "/" + runtime::kRootOverlayName;
  b.debug = o_.debug;
  b.abort_fd = signals_.get();
  return b;
}

int Monitor::run_maintenance() {
  report("listening " + std::to_string(::getpid()) + "\n");
  if (machine()) {
    report("fail 125\na machine's files are reached while it runs (vessel machine exec)");
    report_done();
    return 0;
  }
  // A remove that marked the record before we took the runtime directory
  // is deleting the disks.
  if (auto r = store_->container(o_.id); !r.ok() || r->state.status == state::RunState::kRemoving) {
    report("fail 125\nthe container is being removed");
    report_done();
    return 0;
  }
  phase("maintenance boot (no network, no process)");
  auto vm = runtime::ContainerVm::boot(config_, boot_options());
  if (!vm.ok()) {
    report("fail 125\n" + vm.error().to_string());
    report_done();
    log::warn("maintenance boot: " + vm.error().to_string());
    return 0;
  }
  vm_ = std::move(*vm);
  phase("guest ready for copies");
  report("held\n");
  report_done();
  drop_start_privileges();
  // Served until no client has been connected for a moment (the first one
  // gets longer to come), or a stop, or the VM's end.
  auto idle_since = Clock::now();
  auto grace = 30s;
  while (!stop_requested_ && !vm_died_) {
    serve(200ms);
    if (!clients_.empty()) {
      idle_since = Clock::now();
      grace = 1s;
      continue;
    }
    if (Clock::now() - idle_since < grace) continue;
    accept_clients();  // one that came as we decided to go
    if (clients_.empty()) break;
  }
  // No one new from here: a copy that comes now starts its own boot once
  // this one is gone (containers::Containers::open_files).
  ::unlink(runtime::monitor_socket_of(o_.root, o_.id).c_str());
  listener_.reset();
  vm_->poweroff(5s);
  phase("VM stopped");
  vm_.reset();
  leave_host();
  finish_stop_waiters(0, "");
  flush_clients(1s);
  return 0;
}

std::optional<int> Monitor::start() {
  runtime::BootOptions b = boot_options();
  if (auto s = setup_network(b); !s.ok()) {
    start_error_ = s.error().to_string();
    return 125;
  }
  phase("network ready; booting");
  auto vm = runtime::ContainerVm::boot(config_, b);
  phase("guest ready, container set up");
  if (!vm.ok()) {
    start_error_ = vm.error().to_string();
    return 125;
  }
  vm_ = std::move(*vm);
  limits_ = runtime::container_limits(config_);
  if (machine()) {
    // A machine has no main process: its init took PID 1 after Setup, and
    // it runs until the VM powers off.
    main_running_ = true;
    phase("machine booting its init");
    return std::nullopt;
  }

  // A foreground client wants every byte: wait for it to attach.
  if (o_.wait_attach) {
    auto deadline = Clock::now() + 30s;
    auto attached = [&] {
      for (auto& [fd, c] : clients_)
        if (c->attached) return true;
      return false;
    };
    while (!attached() && !stop_requested_ && Clock::now() < deadline)
      serve(100ms);
    o_.wait_attach = false;  // only for the first start
  }
  // An OCI runtime's create: the container exists, booted and set up, and
  // its process waits for kStart (vessel-runtime start), however long.
  if (o_.hold) {
    report("held\n");
    while (o_.hold && !stop_requested_)
      serve(1s);
    o_.hold = false;  // only for the first start
  }
  if (stop_requested_) {
    start_error_ = "stopped before it started";
    return 137;
  }
  if (idle()) {
    // A pod's sandbox holds the VM and runs nothing (vessel-init stands for
    // pause): it "runs" until killed, or until the VM stops.
    main_running_ = true;
    phase("pod sandbox running");
    return std::nullopt;
  }

  // The size an attached client sent before the start (0 0: none yet).
  auto ws_rows = pending_size_.rows, ws_cols = pending_size_.cols;
  if (auto s = vm_->agent().send_message(MsgType::kSpawn, kMainStream,
                                         runtime::main_spawn(config_, ws_rows, ws_cols));
      !s.ok()) {
    start_error_ = vm_->with_boot_log(s.error().wrap("start process")).to_string();
    return 125;
  }
  auto reply = vm_->await(30s);
  if (!reply.ok()) {
    start_error_ = vm_->with_boot_log(reply.error().wrap("start process")).to_string();
    return 125;
  }
  auto result = agent::decode_as<protocol::Reply>(*reply);
  if (!result.ok() || reply->header.type != type_code(MsgType::kSpawnResult) ||
      reply->header.stream != kMainStream) {
    start_error_ = "start process: unexpected reply from the guest";
    return 125;
  }
  if (result->errnum != 0) {
    start_error_ = result->message;
    int code = runtime::exec_failure_code(result->errnum);
    return code ? code : 125;
  }
  main_running_ = true;
  phase("main process started");
  main_pid_ = result->pid;
  return std::nullopt;
}

Status Monitor::setup_network(runtime::BootOptions& b) {
  if (!config_.netns_path.empty()) return setup_netns(b);
  if (!network_ready_) {
    std::string root = o_.root;
    networks_ = std::make_unique<networks::Networks>(
        root, *store_, [root](const std::string& id) { return runtime::owner_alive(root, id); });
    VESSEL_ASSIGN_OR_RETURN(nics_, networks_->acquire(o_.id));
    for (const auto& nic : nics_) {
      auto tap = networks_->plug(nic);
      if (!tap.ok()) return tap.error().wrap("attach to network " + nic.network.name);
      taps_.push_back(std::move(*tap));
    }
    if (!config_.ports.empty()) {
      const networks::Nic* target = nullptr;
      for (const auto& nic : nics_)
        if (!target && !nic.network.internal) target = &nic;
      if (!target)
        return Error(ErrorCode::kInvalidArgument,
                     "published ports need a network with a route out (not none or internal)");
      VESSEL_ASSIGN_OR_RETURN(proxy_, net::PortProxy::start(config_.ports, target->address));
      nlohmann::json ports = nlohmann::json::array();
      for (const auto& m : proxy_->bound())
        ports.push_back({{"host_ip", m.host_ip.empty() ? "0.0.0.0" : m.host_ip},
                         {"host_port", m.host_port},
                         {"container_port", m.container_port},
                         {"proto", net::proto_name(m.proto)}});
      VESSEL_TRY(sys::write_file_atomic(rdir_.path() + "/ports.json", ports.dump()));
    }
    network_ready_ = true;
  }
  b.nics.clear();
  b.interfaces.clear();
  b.gateway = 0;
  std::vector<net::Ipv4> own;
  for (size_t i = 0; i < nics_.size(); ++i) {
    const auto& nic = nics_[i];
    b.nics.push_back({taps_[i].get(), nic.mac.to_string()});
    protocol::Interface itf;
    itf.name = nic.name;
    itf.mac.assign(nic.mac.bytes.begin(), nic.mac.bytes.end());
    itf.address = nic.address.value;
    itf.prefix_len = nic.network.subnet.prefix;
    b.interfaces.push_back(std::move(itf));
    // The default route goes through the first network with a way out.
    if (b.gateway == 0 && !nic.network.internal) b.gateway = nic.network.gateway.value;
    own.push_back(nic.address);
  }
  std::vector<std::string> extra = config_.extra_hosts;
  for (auto& e : extra) {
    auto colon = e.find(':');
    if (colon != std::string::npos && e.substr(colon + 1) == "host-gateway")
      e = e.substr(0, colon + 1) +
          (nics_.empty() ? std::string("127.0.0.1") : nics_.front().network.gateway.to_string());
  }
  b.hosts = runtime::container_hosts(config_.hostname, own, extra);
  b.resolv_conf = runtime::container_resolv_conf(
      nics_.empty() ? std::nullopt : std::optional(nics_.front().network.gateway), config_.dns,
      config_.dns_search, config_.dns_options);
  return ok_status();
}

// A caller's network namespace (vessel-runtime under CNI): one NIC, on a
// tap inside that namespace mirrored to its interface, with the interface's
// MAC, address and gateway. Made once; the tap lives while we hold it.
Status Monitor::setup_netns(runtime::BootOptions& b) {
  if (!netns_link_) {
    auto link = net::join_netns(config_.netns_path, "vt" + o_.id.substr(0, 12) + "0");
    if (!link.ok()) return link.error();
    netns_link_ = std::make_unique<net::NetnsLink>(std::move(*link));
  }
  const auto& l = *netns_link_;
  b.nics.clear();
  b.interfaces.clear();
  b.nics.push_back({l.tap.get(), l.mac.to_string()});
  protocol::Interface itf;
  itf.name = "eth0";
  itf.mac.assign(l.mac.bytes.begin(), l.mac.bytes.end());
  itf.address = l.address.address.value;
  itf.prefix_len = l.address.prefix;
  b.interfaces.push_back(std::move(itf));
  b.addresses6.clear();
  for (const auto& a : l.addresses6)
    b.addresses6.push_back({0, a.address, a.prefix_len});
  b.routes.clear();
  for (const auto& r : l.routes)
    b.routes.push_back({0, r.destination, r.prefix_len, r.gateway});
  b.gateway = 0;
  if (l.gateway && l.address.contains(*l.gateway)) {
    b.gateway = l.gateway->value;
  } else if (l.gateway) {
    // A gateway outside the subnet (Calico's 169.254.1.1): the default
    // route comes after the on-link route to it, which is in l.routes.
    uint32_t be = htonl(l.gateway->value);
    b.routes.push_back(
        {0, std::string(4, '\0'), 0, std::string(reinterpret_cast<const char*>(&be), 4)});
  }
  b.hosts = runtime::container_hosts(config_.hostname, {l.address.address}, config_.extra_hosts);
  b.resolv_conf = runtime::container_resolv_conf(std::nullopt, config_.dns, config_.dns_search,
                                                 config_.dns_options);
  return ok_status();
}

void Monitor::sync_dns() {
  std::set<std::string> done;
  for (const auto& nic : nics_) {
    if (!done.insert(nic.network.name).second) continue;
    if (auto s = networks_->sync_dns(nic.network); !s.ok())
      log::warn("dns of network " + nic.network.name + ": " + s.error().to_string());
  }
}

void Monitor::release_network() {
  proxy_.reset();
  taps_.clear();
  if (networks_) {
    if (auto s = networks_->release(o_.id); !s.ok())
      log::warn("release network addresses: " + s.error().to_string());
  }
  nics_.clear();
  network_ready_ = false;
}

void Monitor::drop_start_privileges() {
  if (::geteuid() != 0 || !runtime::vmm_confinement().enabled || machine() ||
      !config_.netns_path.empty())
    return;
  if (config_.restart.kind != RestartPolicy::Kind::kNo && !o_.maintenance) return;
  // virtiofsd serves from its sandbox's own copy of the share tree: ours
  // goes now, while we may still unmount.
  if (vm_) vm_->detach_private_mounts();
  // Kept: KILL (QEMU runs as another uid), NET_ADMIN and NET_RAW (the
  // network's teardown), NET_BIND_SERVICE and SETPCAP (a dnsmasq started
  // again at teardown), SYS_PTRACE (QEMU's /proc for stats).
  start_privileges_dropped_ = true;
  Status dropped = sys::drop_capabilities(
      {CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID, CAP_MKNOD, CAP_SETFCAP, CAP_SYS_CHROOT,
       CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_CHOWN, CAP_SYS_RESOURCE,
       CAP_SYS_NICE, CAP_IPC_LOCK, CAP_IPC_OWNER, CAP_NET_BROADCAST});
  if (!dropped.ok()) log::warn(dropped.error().to_string());
}

bool Monitor::should_restart(int exit_code) const {
  if (stop_requested_) return false;
  // The policy as recorded now: `docker update --restart` changes it while
  // the container runs. A monitor that started without one has given up
  // what a start needs (drop_start_privileges): a policy given since
  // applies from the next start.
  RestartPolicy policy = config_.restart;
  if (store_ && !start_privileges_dropped_)
    if (auto r = store_->container(o_.id); r.ok())
      if (auto c = runtime::config_from_json(r->config); c.ok()) policy = c->restart;
  switch (policy.kind) {
    case RestartPolicy::Kind::kNo:
      return false;
    case RestartPolicy::Kind::kOnFailure:
      return exit_code != 0 && (policy.max_retries == 0 || restart_count_ < policy.max_retries);
    case RestartPolicy::Kind::kAlways:
    case RestartPolicy::Kind::kUnlessStopped:
      return true;
  }
  return false;
}

int Monitor::run() {
  if (o_.maintenance) return run_maintenance();
  auto log = runtime::LogWriter::open(cdir_ + "/container.log");
  if (log.ok())
    log_.emplace(std::move(*log));
  else
    log::warn("container log: " + log.error().to_string());
  report("listening " + std::to_string(::getpid()) + "\n");
  auto backoff = 100ms;
  int exit_code = 0;
  bool oom = false;
  while (true) {
    start_error_.clear();
    main_exit_.reset();
    oom = false;
    vm_died_ = false;
    auto started_at = Clock::now();
    std::optional<int> failed = start();
    if (failed) {
      exit_code = *failed;
      log::warn("container failed to start: " + start_error_);
      // A foreground client is connecting: let it attach to hear why.
      auto deadline = Clock::now() + 5s;
      auto attached = [&] {
        for (auto& [fd, c] : clients_)
          if (c->attached) return true;
        return false;
      };
      while (o_.wait_attach && !attached() && Clock::now() < deadline)
        serve(50ms);
      // Clients attached before the start learn why it did not happen.
      broadcast(type_code(ApiType::kStarted), kMainStream,
                reply_payload(exit_code == 125 ? EIO : (exit_code == 127 ? ENOENT : EACCES),
                              start_error_));
      report("fail " + std::to_string(exit_code) + "\n" + start_error_);
      report_done();
      for (auto& [id, m] : members_)
        if (m->phase != Member::Phase::kEnded)
          end_member(*m, protocol::Exit{0, SIGKILL}, "the pod's VM stopped");
      if (vm_) vm_->poweroff(5s);
      end_update_waiters();
      vm_.reset();
      update([&](state::ContainerState& s) {
        s.status = state::RunState::kExited;
        s.exit_code = exit_code;
        s.error = start_error_;
        s.finished = state::now_ns();
        s.monitor_pid = 0;
      });
      break;  // a container that cannot start is not restarted
    }
    update([&](state::ContainerState& s) {
      s.status = state::RunState::kRunning;
      s.monitor_pid = ::getpid();
      s.started = state::now_ns();
      s.finished = 0;
      s.exit_code = 0;
      s.error.clear();
      s.oom_killed = false;
      s.restart_count = restart_count_;
      if (restart_count_ == 0) s.stopped_by_user = false;
    });
    if (restart_count_ == 0) {
      sync_dns();
      phase("names served");
    }
    // Privileges go before anyone hears of the start: whoever looks at
    // this monitor once `run -d` has returned sees them gone.
    if (restart_count_ == 0) drop_start_privileges();
    broadcast(type_code(ApiType::kStarted), kMainStream, reply_payload(0, "", main_pid_));
    report("ok " + std::to_string(main_pid_) + "\n");
    report_done();

    while (main_running_ && !vm_died_)
      serve(1s);
    // A pod's containers end with its VM.
    for (auto& [id, m] : members_)
      if (m->phase != Member::Phase::kEnded)
        end_member(*m, protocol::Exit{0, SIGKILL}, "the pod's VM stopped");
    bool rebooted = false;
    if (machine()) {
      // The VM ending is how a machine stops: its init shut it down (asked
      // by a stop, or by itself), or the stop forced it. QEMU exits on a
      // reboot too (-no-reboot: a new VM is simpler than a guest reset
      // under vhost-user devices); the kernel's last words say which one
      // the init asked for, and a reboot boots the machine again.
      exit_code = 0;
      if (!stop_requested_ && vm_died_) {
        std::string last = vm_->vm().boot_log_tail(4096);
        rebooted = last.find("reboot: Restarting system") != std::string::npos &&
                   last.find("reboot: Power down") == std::string::npos;
        log::info(rebooted ? "the machine rebooted" : "the machine powered off");
      }
    } else if (main_exit_) {
      exit_code = main_exit_->signal ? 128 + main_exit_->signal : main_exit_->code;
      oom = main_exit_->oom_killed != 0;
    } else {
      exit_code = 255;
      start_error_ = "the VM stopped unexpectedly";
      log::warn(vm_->with_boot_log(Error(ErrorCode::kUnavailable, start_error_)).to_string());
    }
    main_running_ = false;
    if (log_) (void)log_->flush();
    // Exec'd processes end with the VM.
    for (auto& [g, r] : routes_)
      if (auto it = clients_.find(r.client_fd); it != clients_.end())
        it->second->ch.queue(type_code(MsgType::kExit), r.client_stream,
                             protocol::encode(protocol::Exit{0, SIGKILL}));
    routes_.clear();
    phase("main process exited");
    bool restart = rebooted || should_restart(exit_code);
    // A monitor that will not boot the VM again leaves its host cgroup
    // while the VM ends; QEMU and virtiofsd stay in it until they are gone,
    // and leave_host() removes it. A monitor of one thread moves at once
    // (HostCgroup::enter); one with more (a port proxy's) waits for an RCU
    // grace period (~10 ms here), overlapped with the guest's sync and
    // QEMU's exit in a thread of its own.
    std::thread moving_out;
    if (!restart && cgroup_) {
      if (sys::thread_count() == 1)
        cgroup_->move_out();
      else
        moving_out = std::thread([this] { cgroup_->move_out(); });
    }
    // A --rm container that will not restart goes with its disks: nothing
    // in its guest needs a clean shutdown unless it shares host directories.
    if (config_.auto_remove && !machine() && !should_restart(exit_code))
      vm_->discard(10s);
    else
      vm_->poweroff(10s);
    if (moving_out.joinable()) moving_out.join();
    phase("VM stopped");
    end_update_waiters();
    vm_.reset();

    update([&](state::ContainerState& s) {
      s.status = restart ? state::RunState::kRestarting : state::RunState::kExited;
      s.exit_code = exit_code;
      s.finished = state::now_ns();
      s.error = start_error_;
      s.oom_killed = oom;
      if (!restart) s.monitor_pid = 0;
    });
    if (!restart) break;
    // Docker's backoff: doubling from 100 ms, at most a minute, reset after
    // a run of 10 s or more.
    if (Clock::now() - started_at >= 10s) backoff = 100ms;
    auto resume = Clock::now() + backoff;
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 60s);
    ++restart_count_;
    log::info("restarting (" + config_.restart.to_string() + ", restart " +
              std::to_string(restart_count_) + ")");
    while (!stop_requested_ && Clock::now() < resume)
      serve(std::chrono::duration_cast<std::chrono::milliseconds>(resume - Clock::now()));
    if (stop_requested_) {
      update([&](state::ContainerState& s) {
        s.status = state::RunState::kExited;
        s.monitor_pid = 0;
      });
      break;
    }
  }

  // The end: tell the clients, clean up, go.
  finish_stop_waiters(0, "");
  // Addresses and names go before the record can (--rm): the leases are
  // what the DNS answers from.
  release_network();
  phase("network released");
  if (config_.auto_remove) {
    if (auto s = store_->remove_container(o_.id); !s.ok())
      log::warn("remove container: " + s.error().to_string());
    if (auto s = sys::remove_tree(cdir_); !s.ok()) log::warn(s.error().to_string());
    phase("removed");
  }
  // The VM and its daemons are gone: leave the host cgroup and remove it
  // (moving a process between v1 memory cgroups takes ~15 ms here) while
  // the runtime directory's lock is still held, so that whoever waits for
  // this monitor to go finds nothing of it left.
  leave_host();  // before clients hear of the end
  phase("host cgroup left");
  serve(0ms);  // take what clients sent meanwhile
  broadcast(type_code(MsgType::kExit), kMainStream,
            protocol::encode(main_exit_.value_or(protocol::Exit{exit_code, 0})));
  flush_clients(2s);
  return 0;
}

void Monitor::broadcast(uint16_t type, uint32_t stream, std::span<const uint8_t> payload) {
  for (auto& [fd, c] : clients_)
    if (c->attached && c->member.empty()) c->ch.queue(type, stream, payload);
}

// Writes what is queued, then ends each connection in order: our side
// first (the client sees EOF after the last frame), then reads until the
// client closes, so that nothing unread makes the kernel reset it.
void Monitor::flush_clients(std::chrono::milliseconds budget) {
  auto deadline = Clock::now() + budget;
  for (auto& [fd, c] : clients_) {
    while (c->ch.queued() > 0 && Clock::now() < deadline) {
      if (!c->ch.flush().ok()) break;
      if (c->ch.queued() == 0) break;
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 50);
    }
    ::shutdown(fd, SHUT_WR);
  }
  for (auto& [fd, c] : clients_) {
    while (Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
    }
  }
}

void Monitor::drop_client(int fd) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  if (stdin_client_ == fd) {
    stdin_client_ = -1;
    // As Docker's StdinOnce: the attached input went away, so it ends.
    send_to_main(MsgType::kStdin, {});
  }
  for (auto& [g, r] : routes_)
    if (r.client_fd == fd) r.client_fd = -1;
  for (auto& [id, m] : members_) {
    if (m->stdin_client == fd) {
      m->stdin_client = -1;
      if (m->phase == Member::Phase::kRunning && vm_)
        (void)vm_->agent().send(MsgType::kStdin, m->stream, {});
    }
    std::erase(m->stop_waiters, fd);
    if (m->add_fd == fd) m->add_fd = -1;
  }
  std::erase(stop_waiters_, fd);
  std::erase(stats_waiters_, fd);
  for (auto& w : update_waiters_)
    if (w.fd == fd) w.fd = -1;
  clients_.erase(it);
}

void Monitor::end_update_waiters() {
  for (const auto& w : update_waiters_)
    if (auto it = clients_.find(w.fd); it != clients_.end())
      it->second->ch.queue(type_code(ApiType::kResult), 0,
                           reply_payload(ESRCH, "the container stopped"));
  update_waiters_.clear();
}

void Monitor::accept_clients() {
  while (true) {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    clients_.emplace(fd, std::make_unique<Client>(Channel(UniqueFd(fd))));
  }
}

void Monitor::request_stop(int signal, int timeout, int client_fd) {
  if (client_fd >= 0) stop_waiters_.push_back(client_fd);
  if (!stop_requested_) {
    stop_requested_ = true;
    update([](state::ContainerState& s) { s.stopped_by_user = true; });
  }
  if (!main_running_) return;
  int sig = signal > 0 ? signal : config_.stop_signal;
  int secs = timeout >= 0 ? timeout : config_.stop_timeout;
  if (idle()) {
    // No process to signal: the pod ends, its VM is powered off.
    main_exit_ = protocol::Exit{0, sig};
    main_running_ = false;
    return;
  }
  if (machine()) {
    // A clean shutdown by the machine's init (the agent asks it), the VM
    // forced off if it has not powered off after the timeout.
    auto at = Clock::now() + std::chrono::seconds(sig == SIGKILL ? 0 : secs);
    if (!force_at_) {
      log::info("stopping the machine: power-off, forced after " + std::to_string(secs) + " s");
      if (vm_ && sig != SIGKILL) (void)vm_->agent().send(MsgType::kPoweroff, 0);
    }
    if (!force_at_ || at < *force_at_) force_at_ = at;
    return;
  }
  log::info(std::string("stopping: ") + strsignal(sig) + ", SIGKILL after " + std::to_string(secs) +
            " s");
  send_to_main(MsgType::kSignal, protocol::encode(protocol::Signal{sig}));
  auto at = Clock::now() + std::chrono::seconds(secs);
  if (sig == SIGKILL) at = Clock::now();
  if (!kill_at_ || at < *kill_at_) kill_at_ = at;
}

void Monitor::handle_client_frame(int fd, Client& c, Frame& f) {
  uint16_t type = f.header.type;
  uint32_t stream = f.header.stream;
  auto reply = [&](int errnum, const std::string& message) {
    c.ch.queue(type_code(ApiType::kResult), 0, reply_payload(errnum, message));
  };
  if (!c.member.empty()) {
    auto it = members_.find(c.member);
    if (it == members_.end()) return drop_client(fd);
    return handle_member_frame(fd, c, *it->second, f);
  }
  if (type == type_code(ApiType::kAddContainer) && stream == 0) {
    return add_member(fd, std::string(f.payload.begin(), f.payload.end()));
  }
  if (type == type_code(ApiType::kAttach) && stream == kMainStream) {
    Attach a;
    if (!decode(f.payload, a)) return drop_client(fd);
    c.attached = true;
    c.output = a.output;
    if (a.stdin && config_.open_stdin && stdin_client_ < 0) stdin_client_ = fd;
    if (main_running_)
      c.ch.queue(type_code(ApiType::kStarted), kMainStream, reply_payload(0, "", main_pid_));
    return;
  }
  if (type == type_code(ApiType::kStop) && stream == 0) {
    Stop s;
    if (!decode(f.payload, s)) return drop_client(fd);
    request_stop(s.signal, s.timeout, fd);
    if (!main_running_ && !vm_) {
      // Between runs (restart backoff): nothing to signal.
      finish_stop_waiters(0, "");
    }
    return;
  }
  if (type == type_code(ApiType::kKill) && stream == 0) {
    protocol::Signal s;
    if (!protocol::decode(f.payload, s) || s.signo <= 0 || s.signo >= 65)
      return reply(EINVAL, "invalid signal");
    if (!main_running_) return reply(ESRCH, "container is not running");
    if (machine() || idle()) {
      // A machine's "process" is the VM: any signal that ends it stops it.
      // A pod's sandbox has none either: its VM is the pod's.
      request_stop(s.signo, s.signo == SIGKILL ? 0 : -1, -1);
      return reply(0, "");
    }
    if (s.signo == SIGKILL || s.signo == SIGTERM) {
      stop_requested_ = true;
      update([](state::ContainerState& st) { st.stopped_by_user = true; });
    }
    send_to_main(MsgType::kSignal, f.payload);
    return reply(0, "");
  }
  if (type == type_code(ApiType::kStart) && stream == 0) {
    if (!o_.hold) return reply(EALREADY, "the container was not waiting to start");
    o_.hold = false;
    return reply(0, "");
  }
  if (type == type_code(ApiType::kPause) && stream == 0) {
    if (f.payload.size() != 1) return drop_client(fd);
    if (!main_running_ || !vm_) return reply(ESRCH, "container is not running");
    if (auto s = vm_->vm().pause(f.payload[0] != 0); !s.ok())
      return reply(EIO, s.error().to_string());
    return reply(0, "");
  }
  if (type == type_code(ApiType::kUpdate) && stream == 0) {
    Limits l;
    if (!decode(f.payload, l)) return drop_client(fd);
    if (!main_running_ || !vm_) return reply(ESRCH, "container is not running");
    if (machine()) return reply(EOPNOTSUPP, "a machine's limits are its own init's");
    // An update still waiting for the guest goes first: this one applies
    // on top of what it asked for.
    const protocol::Update& base =
        update_waiters_.empty() ? limits_ : update_waiters_.back().limits;
    auto merged = merge_limits(base, l, config_.memory_bytes, config_.cpus);
    if (!merged.ok()) return reply(EINVAL, merged.error().message());
    if (!vm_->agent().send_message(MsgType::kUpdate, 0, *merged).ok())
      return reply(EIO, "guest unreachable");
    update_waiters_.push_back({fd, *merged});
    return;
  }
  if (type == type_code(MsgType::kStats) && stream == 0) {
    if (!main_running_ || !vm_) return reply(ESRCH, "container is not running");
    if (!vm_->agent().send(MsgType::kStats, 0).ok()) return reply(EIO, "guest unreachable");
    stats_waiters_.push_back(fd);
    return;
  }
  // The main process's input, signals and window size.
  if (stream == kMainStream) {
    protocol::Signal sig;
    if (idle() && type == type_code(MsgType::kSignal) && protocol::decode(f.payload, sig) &&
        (sig.signo == SIGINT || sig.signo == SIGTERM || sig.signo == SIGKILL)) {
      // A signal to the sandbox's relay (its guardian's SIGKILL when the
      // relay is killed) ends the pod, as it ends pause.
      request_stop(sig.signo, 0, -1);
      return;
    }
    if (type == type_code(MsgType::kStdin)) {
      if (fd == stdin_client_) send_to_main(MsgType::kStdin, f.payload);
    } else if (type == type_code(MsgType::kSignal) || type == type_code(MsgType::kResize)) {
      protocol::Resize size;
      if (type == type_code(MsgType::kResize) && protocol::decode(f.payload, size))
        pending_size_ = size;  // for a start still to come
      send_to_main(static_cast<MsgType>(type), f.payload);
    }
    return;
  }
  if (stream < 2) return drop_client(fd);
  // exec: client stream -> guest stream.
  // CopyOut and CopyIn run in the guest as internal processes: routed alike.
  if (type == type_code(MsgType::kSpawn) || type == type_code(MsgType::kCopyOut) ||
      type == type_code(MsgType::kCopyIn)) {
    protocol::Spawn s;
    if (type == type_code(MsgType::kSpawn) && !protocol::decode(f.payload, s))
      return drop_client(fd);
    // A maintenance boot serves copies only: nothing of the container runs.
    bool can = vm_ && (main_running_ || (o_.maintenance && type != type_code(MsgType::kSpawn)));
    if (!can) {
      c.ch.queue(type_code(MsgType::kSpawnResult), stream,
                 reply_payload(ESRCH, "container is not running"));
      return;
    }
    uint32_t g = next_stream_++;
    routes_[g] = Route{fd, stream};
    if (auto st = vm_->agent().send(static_cast<MsgType>(type), g, f.payload); !st.ok())
      c.ch.queue(type_code(MsgType::kSpawnResult), stream, reply_payload(EIO, "guest unreachable"));
    return;
  }
  if (type == type_code(MsgType::kStdin) || type == type_code(MsgType::kSignal) ||
      type == type_code(MsgType::kResize))
    return forward_to_exec(fd, f);
  drop_client(fd);  // anything else is a client bug
}

void Monitor::forward_to_exec(int fd, Frame& f) {
  for (auto& [g, r] : routes_)
    if (r.client_fd == fd && r.client_stream == f.header.stream && vm_)
      (void)vm_->agent().send(static_cast<MsgType>(f.header.type), g, f.payload);
}

void Monitor::handle_guest_frame(Frame& f) {
  auto type = static_cast<MsgType>(f.header.type);
  uint32_t stream = f.header.stream;
  if (stream == 0) {
    if (type == MsgType::kUpdateResult && !update_waiters_.empty()) {
      UpdateWaiter w = update_waiters_.front();
      update_waiters_.pop_front();
      auto r = agent::decode_as<protocol::Reply>(f);
      if (r.ok() && r->errnum == 0) {
        if (w.member.empty()) {
          limits_ = w.limits;
          // A restart (its policy's, or a reboot) boots with them too.
          runtime::keep_limits(config_, w.limits);
        } else if (auto m = members_.find(w.member); m != members_.end()) {
          m->second->limits = w.limits;
        }
      }
      if (auto it = clients_.find(w.fd); it != clients_.end())
        it->second->ch.queue(
            type_code(ApiType::kResult), 0,
            r.ok() ? f.payload : reply_payload(EIO, "malformed answer from the guest"));
      return;
    }
    if (type == MsgType::kStatsResult && !stats_waiters_.empty()) {
      int fd = stats_waiters_.front();
      stats_waiters_.pop_front();
      // The host's figure joins the guest's: the host memory the VM holds
      // (what it costs the host, beside what the container uses inside it).
      // A malformed answer goes on as it came; the client rejects it.
      protocol::Stats st;
      std::vector<uint8_t> payload = f.payload;
      if (protocol::decode(f.payload, st) && vm_) {
        // Private anonymous pages (its heap, TCG's code, guest RAM when not
        // shared) and the memfd guest RAM shared with virtiofsd, whose
        // pages virtiofsd may have filled without QEMU ever touching them.
        // With a host cgroup: what the VM's processes hold there that is
        // not page cache (QEMU, virtiofsd, this monitor); the same figure
        // as below where there is none.
        pid_t qemu = vm_->vm().pid();
        auto held = cgroup_ ? cgroup_->memory_unreclaimable()
                            : Result<uint64_t>(Error(ErrorCode::kUnavailable, ""));
        if (held.ok()) {
          st.host_vm_rss = *held;
        } else {
          auto mem = sys::process_memory(qemu);
          st.host_vm_rss = (mem.ok() ? mem->anonymous : 0) + sys::shared_memory_file_bytes(qemu);
        }
        payload = protocol::encode(st);
      }
      if (auto it = clients_.find(fd); it != clients_.end())
        it->second->ch.queue(f.header.type, 0, payload);
    }
    return;
  }
  if (stream == kMainStream) {
    switch (type) {
      case MsgType::kStdout:
      case MsgType::kStderr: {
        if (log_) {
          auto which =
              type == MsgType::kStdout ? runtime::LogStream::kStdout : runtime::LogStream::kStderr;
          std::string_view data(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
          if (auto s = log_->write(which, data); !s.ok()) log::warn(s.error().to_string());
        }
        for (auto& [fd, c] : clients_)
          if (c->attached && c->output && c->member.empty())
            c->ch.queue(f.header.type, stream, f.payload);
        break;
      }
      case MsgType::kStdinAck:
        if (auto it = clients_.find(stdin_client_); it != clients_.end())
          it->second->ch.queue(f.header.type, stream, f.payload);
        break;
      case MsgType::kExit: {
        auto e = agent::decode_as<protocol::Exit>(f);
        main_exit_ = e.ok() ? *e : protocol::Exit{255, 0};
        main_running_ = false;
        break;
      }
      default:
        break;
    }
    return;
  }
  if (handle_member_guest_frame(f)) return;
  auto route = routes_.find(stream);
  if (route == routes_.end()) return;
  if (auto it = clients_.find(route->second.client_fd); it != clients_.end())
    it->second->ch.queue(f.header.type, route->second.client_stream, f.payload);
  bool ends = type == MsgType::kExit;
  if (type == MsgType::kSpawnResult) {
    auto r = agent::decode_as<protocol::Reply>(f);
    ends = !r.ok() || r->errnum != 0;
  }
  if (ends) routes_.erase(route);
}

// ---- a pod's containers ----

Monitor::Member* Monitor::member_at_stream(uint32_t stream) {
  for (auto& [id, m] : members_)
    if (m->stream == stream && m->phase != Member::Phase::kEnded) return m.get();
  return nullptr;
}

void Monitor::update_member(const Member& m,
                            const std::function<void(state::ContainerState&)>& change) {
  auto r = store_->update_container(m.id, [&](state::ContainerRecord& rec) {
    change(rec.state);
    return ok_status();
  });
  if (!r.ok()) log::warn("record state of " + m.id + ": " + r.error().to_string());
}

void Monitor::add_member(int fd, const std::string& id) {
  auto reply = [&](int errnum, const std::string& message) {
    if (auto it = clients_.find(fd); it != clients_.end())
      it->second->ch.queue(type_code(ApiType::kResult), 0, reply_payload(errnum, message));
  };
  if (!sandbox())
    return reply(EOPNOTSUPP, "container " + o_.id + "'s VM cannot take a pod's containers");
  // Booted and set up is enough: a sandbox created and not started yet
  // takes containers too.
  if (!vm_ || vm_died_ || stop_requested_) return reply(ESRCH, "the pod's VM is not running");
  if (members_.count(id)) return reply(EEXIST, "container " + id + " is in the pod already");
  if (next_member_index_ >= protocol::kMaxContainers)
    return reply(ENOSPC, "a pod's VM holds at most " +
                             std::to_string(protocol::kMaxContainers - 1) + " containers");
  auto record = store_->container(id);
  if (!record.ok()) return reply(ENOENT, record.error().to_string());
  auto config = runtime::config_from_json(record->config);
  if (!config.ok()) return reply(EINVAL, config.error().to_string());
  if (config->pod_role != runtime::kPodMember || config->pod_sandbox != o_.id)
    return reply(EINVAL, "container " + id + " is not recorded as a member of this pod");
  auto m = std::make_unique<Member>();
  m->id = id;
  m->config = std::move(*config);
  auto rdir = runtime::RuntimeDir::create(o_.root, id);
  if (!rdir.ok()) return reply(EIO, rdir.error().to_string());
  m->rdir.emplace(std::move(*rdir));
  auto listener = sys::listen_unix(runtime::monitor_socket_of(o_.root, id), 64, true);
  if (!listener.ok()) return reply(EIO, listener.error().to_string());
  m->listener = std::move(*listener);
  if (auto log = runtime::LogWriter::open(runtime::container_dir(o_.root, id) + "/container.log");
      log.ok())
    m->log.emplace(std::move(*log));
  m->index = next_member_index_++;
  m->stream = next_stream_++;
  m->limits = runtime::container_limits(m->config);
  m->add_fd = fd;
  // The pod's address is every container's (one network namespace).
  std::vector<net::Ipv4> own;
  if (netns_link_) own.push_back(netns_link_->address.address);
  protocol::Setup setup = runtime::member_setup(
      m->config, m->index, runtime::container_hosts(m->config.hostname, own, m->config.extra_hosts),
      runtime::container_resolv_conf(std::nullopt, m->config.dns, m->config.dns_search,
                                     m->config.dns_options));
  if (auto s = vm_->agent().send_message(MsgType::kSetup, m->stream, setup); !s.ok())
    return reply(EIO, "guest unreachable");
  log::info("adding container " + id + " to the pod as container " + std::to_string(m->index));
  members_.emplace(id, std::move(m));
}

void Monitor::end_member(Member& m, const protocol::Exit& exit, const std::string& error,
                         int start_errnum) {
  if (m.phase == Member::Phase::kEnded) return;
  bool started = m.phase == Member::Phase::kRunning;
  m.phase = Member::Phase::kEnded;
  m.exit = exit;
  m.kill_at.reset();
  // Also while its Setup is on the way: the guest takes frames in order, so
  // this undoes it (and is ignored if the Setup failed).
  if (vm_)
    (void)vm_->agent().send_message(MsgType::kRemoveContainer, 0,
                                    protocol::RemoveContainer{m.index});
  if (m.log) (void)m.log->flush();
  int code = exit.signal ? 128 + exit.signal : exit.code;
  update_member(m, [&](state::ContainerState& s) {
    s.status = state::RunState::kExited;
    s.exit_code = code;
    s.finished = state::now_ns();
    s.error = error;
    s.oom_killed = exit.oom_killed != 0;
    s.monitor_pid = 0;
  });
  for (int fd : m.stop_waiters)
    if (auto it = clients_.find(fd); it != clients_.end())
      it->second->ch.queue(type_code(ApiType::kResult), 0, reply_payload(0, ""));
  m.stop_waiters.clear();
  // Gone before its clients hear of the end, as a monitor's own runtime
  // directory is: whoever waits for the container to go finds it gone.
  m.listener.reset();
  m.rdir.reset();
  for (auto& [fd, c] : clients_) {
    if (c->member != m.id || !c->attached) continue;
    // A relay waits for the start before anything else, as for a monitor's
    // own container that ends unstarted.
    if (!started)
      c->ch.queue(type_code(ApiType::kStarted), kMainStream,
                  reply_payload(start_errnum, error.empty() ? "the container ended" : error));
    c->ch.queue(type_code(MsgType::kExit), kMainStream, protocol::encode(exit));
  }
  log::info("container " + m.id + " of the pod ended (" + std::to_string(code) + ")");
}

void Monitor::handle_member_frame(int fd, Client& c, Member& m, Frame& f) {
  uint16_t type = f.header.type;
  uint32_t stream = f.header.stream;
  using Phase = Member::Phase;
  auto reply = [&](int errnum, const std::string& message) {
    c.ch.queue(type_code(ApiType::kResult), 0, reply_payload(errnum, message));
  };
  bool running = m.phase == Phase::kRunning && vm_;
  auto to_guest = [&](MsgType t, std::span<const uint8_t> payload) {
    if (running) (void)vm_->agent().send(t, m.stream, payload);
  };
  if (type == type_code(ApiType::kAttach) && stream == kMainStream) {
    Attach a;
    if (!decode(f.payload, a)) return drop_client(fd);
    c.attached = true;
    c.output = a.output;
    if (a.stdin && m.config.open_stdin && m.stdin_client < 0) m.stdin_client = fd;
    if (m.phase == Phase::kRunning)
      c.ch.queue(type_code(ApiType::kStarted), kMainStream, reply_payload(0, "", m.pid));
    // Connected just before the end: it hears it now.
    if (m.phase == Phase::kEnded) {
      c.ch.queue(type_code(ApiType::kStarted), kMainStream, reply_payload(EIO, "it has ended"));
      c.ch.queue(type_code(MsgType::kExit), kMainStream, protocol::encode(m.exit));
    }
    return;
  }
  if (type == type_code(ApiType::kStart) && stream == 0) {
    if (m.phase != Phase::kHeld || !vm_)
      return reply(EALREADY, "the container was not waiting to start");
    protocol::Spawn spawn = runtime::main_spawn(m.config, m.pending_size.rows, m.pending_size.cols);
    spawn.container = m.index;
    if (!vm_->agent().send_message(MsgType::kSpawn, m.stream, spawn).ok())
      return reply(EIO, "guest unreachable");
    m.phase = Phase::kStarting;
    return reply(0, "");
  }
  if (type == type_code(ApiType::kStop) && stream == 0) {
    Stop st;
    if (!decode(f.payload, st)) return drop_client(fd);
    if (m.phase == Phase::kEnded) return reply(0, "");
    if (m.phase == Phase::kSettingUp || m.phase == Phase::kHeld) {
      m.stop_waiters.push_back(fd);
      return end_member(m, protocol::Exit{137, 0}, "stopped before it started");
    }
    m.stop_waiters.push_back(fd);
    int sig = st.signal > 0 ? st.signal : m.config.stop_signal;
    int secs = st.timeout >= 0 ? st.timeout : m.config.stop_timeout;
    if (vm_) (void)vm_->agent().send_message(MsgType::kSignal, m.stream, protocol::Signal{sig});
    auto at = Clock::now() + std::chrono::seconds(sig == SIGKILL ? 0 : secs);
    if (!m.kill_at || at < *m.kill_at) m.kill_at = at;
    return;
  }
  if (type == type_code(ApiType::kKill) && stream == 0) {
    protocol::Signal sig;
    if (!protocol::decode(f.payload, sig) || sig.signo <= 0 || sig.signo >= 65)
      return reply(EINVAL, "invalid signal");
    if (m.phase != Phase::kRunning && m.phase != Phase::kStarting)
      return reply(ESRCH, "container is not running");
    if (vm_) (void)vm_->agent().send(MsgType::kSignal, m.stream, f.payload);
    return reply(0, "");
  }
  if (type == type_code(ApiType::kPause) && stream == 0)
    return reply(EOPNOTSUPP,
                 "a container of a pod shares the pod's VM: pause the pod's sandbox instead");
  if (type == type_code(ApiType::kUpdate) && stream == 0) {
    Limits l;
    if (!decode(f.payload, l)) return drop_client(fd);
    if (!running) return reply(ESRCH, "container is not running");
    const protocol::Update* base = &m.limits;
    for (const auto& w : update_waiters_)
      if (w.member == m.id) base = &w.limits;
    // Up to what the pod's VM has for its containers (the sandbox's limit).
    auto merged = merge_limits(*base, l, config_.memory_bytes, config_.cpus);
    if (!merged.ok()) return reply(EINVAL, merged.error().message());
    merged->container = m.index;
    if (!vm_->agent().send_message(MsgType::kUpdate, 0, *merged).ok())
      return reply(EIO, "guest unreachable");
    update_waiters_.push_back({fd, *merged, m.id});
    return;
  }
  if (type == type_code(MsgType::kStats) && stream == 0) {
    if (!running) return reply(ESRCH, "container is not running");
    if (!vm_->agent().send_message(MsgType::kStats, 0, protocol::StatsRequest{m.index}).ok())
      return reply(EIO, "guest unreachable");
    stats_waiters_.push_back(fd);
    return;
  }
  if (stream == kMainStream) {
    if (type == type_code(MsgType::kStdin)) {
      if (fd == m.stdin_client) to_guest(MsgType::kStdin, f.payload);
    } else if (type == type_code(MsgType::kSignal) || type == type_code(MsgType::kResize)) {
      protocol::Resize size;
      if (type == type_code(MsgType::kResize) && protocol::decode(f.payload, size))
        m.pending_size = size;
      to_guest(static_cast<MsgType>(type), f.payload);
    }
    return;
  }
  if (stream < 2) return drop_client(fd);
  if (type == type_code(MsgType::kSpawn)) {
    protocol::Spawn spawn;
    if (!protocol::decode(f.payload, spawn)) return drop_client(fd);
    if (!running) {
      c.ch.queue(type_code(MsgType::kSpawnResult), stream,
                 reply_payload(ESRCH, "container is not running"));
      return;
    }
    spawn.container = m.index;
    uint32_t g = next_stream_++;
    routes_[g] = Route{fd, stream};
    if (!vm_->agent().send_message(MsgType::kSpawn, g, spawn).ok())
      c.ch.queue(type_code(MsgType::kSpawnResult), stream, reply_payload(EIO, "guest unreachable"));
    return;
  }
  if (type == type_code(MsgType::kCopyOut) || type == type_code(MsgType::kCopyIn)) {
    c.ch.queue(type_code(MsgType::kSpawnResult), stream,
               reply_payload(EOPNOTSUPP, "copying files of a pod's container is not supported"));
    return;
  }
  if (type == type_code(MsgType::kStdin) || type == type_code(MsgType::kSignal) ||
      type == type_code(MsgType::kResize))
    return forward_to_exec(fd, f);
  drop_client(fd);
}

bool Monitor::handle_member_guest_frame(Frame& f) {
  Member* m = member_at_stream(f.header.stream);
  if (!m) return false;
  auto type = static_cast<MsgType>(f.header.type);
  using Phase = Member::Phase;
  auto answer_add = [&](int errnum, const std::string& message) {
    if (auto it = clients_.find(m->add_fd); it != clients_.end())
      it->second->ch.queue(type_code(ApiType::kResult), 0, reply_payload(errnum, message));
    m->add_fd = -1;
  };
  switch (type) {
    case MsgType::kSetupResult: {
      if (m->phase != Phase::kSettingUp) break;
      auto r = agent::decode_as<protocol::Reply>(f);
      if (!r.ok() || r->errnum != 0) {
        std::string why = r.ok() ? r->message : "malformed answer from the guest";
        answer_add(r.ok() ? r->errnum : EIO, "set up container in the pod's VM: " + why);
        end_member(*m, protocol::Exit{125, 0}, why);
        break;
      }
      m->phase = Phase::kHeld;
      answer_add(0, "");
      break;
    }
    case MsgType::kSpawnResult: {
      if (m->phase != Phase::kStarting) break;
      auto r = agent::decode_as<protocol::Reply>(f);
      if (!r.ok() || r->errnum != 0) {
        std::string why = r.ok() ? r->message : "malformed answer from the guest";
        int errnum = r.ok() ? r->errnum : EIO;
        int code = runtime::exec_failure_code(errnum);
        end_member(*m, protocol::Exit{code ? code : 125, 0}, why, errnum);
        break;
      }
      m->phase = Phase::kRunning;
      m->pid = r->pid;
      update_member(*m, [](state::ContainerState& s) {
        s.status = state::RunState::kRunning;
        s.started = state::now_ns();
        s.monitor_pid = 0;  // the sandbox's monitor: never to be killed for this one
      });
      for (auto& [fd, c] : clients_)
        if (c->member == m->id && c->attached)
          c->ch.queue(type_code(ApiType::kStarted), kMainStream, reply_payload(0, "", m->pid));
      break;
    }
    case MsgType::kStdout:
    case MsgType::kStderr: {
      if (m->log) {
        auto which =
            type == MsgType::kStdout ? runtime::LogStream::kStdout : runtime::LogStream::kStderr;
        std::string_view data(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
        (void)m->log->write(which, data);
      }
      for (auto& [fd, c] : clients_)
        if (c->member == m->id && c->attached && c->output)
          c->ch.queue(f.header.type, kMainStream, f.payload);
      break;
    }
    case MsgType::kStdinAck:
      if (auto it = clients_.find(m->stdin_client); it != clients_.end())
        it->second->ch.queue(f.header.type, kMainStream, f.payload);
      break;
    case MsgType::kExit: {
      auto e = agent::decode_as<protocol::Exit>(f);
      end_member(*m, e.ok() ? *e : protocol::Exit{255, 0}, "");
      break;
    }
    default:
      break;
  }
  return true;
}

void Monitor::serve(std::chrono::milliseconds timeout) {
  // Stop escalation: SIGKILL after the timeout, then force the VM off.
  auto now = Clock::now();
  if (kill_at_ && now >= *kill_at_ && main_running_) {
    log::info("stop timeout: sending SIGKILL");
    send_to_main(MsgType::kSignal, protocol::encode(protocol::Signal{SIGKILL}));
    kill_at_.reset();
    force_at_ = now + 5s;
  }
  if (force_at_ && now >= *force_at_ && main_running_ && vm_) {
    log::warn(machine() ? "the machine did not power off in time: forcing it off"
                        : "the guest did not end the process: forcing the VM off");
    (void)vm_->vm().stop(0ms);
    main_exit_ = protocol::Exit{0, SIGKILL};
    main_running_ = false;
    force_at_.reset();
    return;
  }
  for (auto& [id, m] : members_) {
    if (m->kill_at && now >= *m->kill_at && m->phase == Member::Phase::kRunning && vm_) {
      log::info("stop timeout of " + id + ": sending SIGKILL");
      (void)vm_->agent().send_message(MsgType::kSignal, m->stream, protocol::Signal{SIGKILL});
      m->kill_at.reset();
    }
    if (m->kill_at)
      timeout = std::min(
          timeout, std::chrono::duration_cast<std::chrono::milliseconds>(*m->kill_at - now + 1ms));
  }
  for (auto at : {kill_at_, force_at_})
    if (at)
      timeout =
          std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(*at - now + 1ms));

  // A channel that failed while a frame before the failure was still being
  // handled (during the start) has nothing more to poll for: end it now.
  if (vm_ && !vm_died_ && vm_->agent().error()) {
    log::warn("guest connection: " + vm_->agent().error()->to_string());
    vm_died_ = true;
    Frame f;
    while (vm_->agent().next(f))
      handle_guest_frame(f);
  }

  bool paused = false;
  for (auto& [fd, c] : clients_)
    if (c->ch.queued() > kPauseQueued)
      for (auto& [g, r] : routes_)
        paused = paused || r.client_fd == fd;
  // Frames that came in one read with an awaited reply (the main process's
  // SpawnResult, then its output and Exit, when it is quick) are queued
  // already: the guest fd will not wake us for them.
  if (vm_ && !paused) {
    Frame f;
    bool handled = false;
    while (vm_->agent().next(f)) {
      handle_guest_frame(f);
      handled = true;
    }
    if (handled) timeout = 0ms;
  }

  std::vector<pollfd> p;
  p.push_back({listener_.get(), POLLIN, 0});
  p.push_back({signals_.get(), POLLIN, 0});
  p.push_back({vm_ && !paused ? vm_->agent().fd() : -1, POLLIN, 0});
  p.push_back({vm_ ? vm_->vm().exit_fd() : -1, POLLIN, 0});
  std::vector<int> fds;
  for (auto& [fd, c] : clients_) {
    p.push_back({fd, static_cast<short>(POLLIN | (c->ch.queued() ? POLLOUT : 0)), 0});
    fds.push_back(fd);
  }
  // The sockets of a pod's containers.
  std::vector<std::string> member_listeners;
  for (auto& [id, m] : members_)
    if (m->listener) {
      p.push_back({m->listener.get(), POLLIN, 0});
      member_listeners.push_back(id);
    }
  int n = ::poll(p.data(), p.size(), static_cast<int>(std::max<int64_t>(timeout.count(), 0)));
  if (n < 0 && errno != EINTR) {
    log::warn(Error::from_errno(errno, "poll").to_string());
    return;
  }
  if (p[1].revents) {
    signalfd_siginfo si;
    while (::read(signals_.get(), &si, sizeof si) == sizeof si)
      request_stop(0, -1, -1);  // the host is shutting down: stop cleanly
  }
  if (p[2].revents && vm_) {
    if (auto s = vm_->agent().read_available(); !s.ok()) {
      log::warn("guest connection: " + s.error().to_string());
      vm_died_ = true;
    }
    Frame f;
    while (vm_->agent().next(f))
      handle_guest_frame(f);
  }
  if (p[3].revents && !p[2].revents && (main_running_ || o_.maintenance)) vm_died_ = true;
  if (p[0].revents) accept_clients();
  for (size_t i = 0; i < fds.size(); ++i) {
    int fd = fds[i];
    auto it = clients_.find(fd);
    if (it == clients_.end()) continue;
    Client& c = *it->second;
    short re = p[4 + i].revents;
    if (re & (POLLIN | POLLHUP | POLLERR)) {
      if (!c.ch.read_available().ok()) {
        Frame f;
        while (c.ch.next(f))
          handle_client_frame(fd, c, f);
        drop_client(fd);
        continue;
      }
      Frame f;
      while (clients_.count(fd) && c.ch.next(f))
        handle_client_frame(fd, c, f);
      if (!clients_.count(fd)) continue;
    }
    if (c.ch.queued() && !c.ch.flush().ok()) {
      drop_client(fd);
      continue;
    }
    bool has_routes = false;
    for (auto& [g, r] : routes_)
      has_routes = has_routes || r.client_fd == fd;
    if (c.ch.queued() > kMaxQueued && !has_routes) {
      log::warn("dropping a client that does not read its output");
      drop_client(fd);
    }
  }
  for (size_t i = 0; i < member_listeners.size(); ++i) {
    if (!p[4 + fds.size() + i].revents) continue;
    auto it = members_.find(member_listeners[i]);
    if (it == members_.end() || !it->second->listener) continue;
    while (true) {
      int fd =
          ::accept4(it->second->listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) break;
      auto c = std::make_unique<Client>(Channel(UniqueFd(fd)));
      c->member = it->first;
      clients_.emplace(fd, std::move(c));
    }
  }
}

}  // namespace

int run_monitor(const MonitorOptions& o) {
  auto fail = [&](const std::string& message) {
    log::error(message);
    if (o.ready_fd >= 0) {
      std::string line = "fail 125\n" + message;
      (void)sys::write_all(o.ready_fd, line.data(), line.size());
    }
    return 1;
  };
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP})
    sigaddset(&set, s);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  UniqueFd signals(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));

  // A private mount namespace (as root): the read-only views made for
  // virtiofsd exist only here and vanish with this process. Host mounts
  // still propagate in (slave), ours never out.
  if (::geteuid() == 0) {
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
      log::warn(Error::from_errno(errno, "private mount namespace").to_string());
  }
  auto store = state::Store::open(runtime::state_db(o.root));
  if (!store.ok()) return fail(store.error().to_string());
  auto record = (*store)->container(o.id);
  if (!record.ok()) return fail(record.error().to_string());
  auto config = runtime::config_from_json(record->config);
  if (!config.ok()) return fail(config.error().to_string());
  auto rdir = runtime::RuntimeDir::create(o.root, o.id, o.maintenance);
  if (!rdir.ok()) return fail(rdir.error().to_string());
  auto listener = sys::listen_unix(runtime::monitor_socket_of(o.root, o.id), 64, true);
  if (!listener.ok()) return fail(listener.error().to_string());

  // Capabilities nothing a monitor starts ever uses go for good, from its
  // bounding set too, so no child (QEMU, virtiofsd, dnsmasq) can regain
  // them: modules, raw I/O, clocks, reboot, audit, MAC policy, BPF, perf.
  if (::geteuid() == 0 && runtime::vmm_confinement().enabled) {
    Status dropped = sys::drop_capabilities(
        {CAP_LINUX_IMMUTABLE, CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_PACCT, CAP_SYS_BOOT,
         CAP_SYS_TIME, CAP_SYS_TTY_CONFIG, CAP_LEASE, CAP_AUDIT_WRITE, CAP_AUDIT_CONTROL,
         CAP_MAC_OVERRIDE, CAP_MAC_ADMIN, CAP_SYSLOG, CAP_WAKE_ALARM, CAP_BLOCK_SUSPEND,
         CAP_AUDIT_READ, CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE});
    if (!dropped.ok()) log::warn(dropped.error().to_string());
  }

  // The VM's host processes (this monitor, QEMU, virtiofsd) in a host
  // cgroup of their own with memory, pids and CPU bounds: a runaway VM
  // cannot starve the host or its neighbours (docs/security.md). A host
  // without usable cgroups runs the VM unbounded, with a warning.
  std::optional<sys::HostCgroup> cgroup;
  if (::geteuid() == 0 && runtime::vmm_confinement().enabled) {
    auto cg = sys::HostCgroup::enter(o.id.substr(0, 12), runtime::host_limits(*config));
    if (cg.ok()) {
      (void)runtime::record_host_cgroups(rdir->path(), cg->dirs());
      cgroup.emplace(std::move(*cg));
    } else {
      log::warn(cg.error().to_string() + " (the VM runs without host resource bounds)");
    }
  }

  std::vector<std::string> cgroup_dirs = cgroup ? cgroup->dirs() : std::vector<std::string>{};
  int code;
  {
    Monitor m(o, std::move(*store), std::move(*config), std::move(*rdir), std::move(*listener),
              std::move(signals), std::move(cgroup));
    code = m.run();
  }
  // Left already; one that a dying daemon kept busy then is free soon. (A
  // cgroup still left is swept by the next monitor that starts.)
  for (int i = 0; i < 5 && !cgroup_dirs.empty(); ++i) {
    sys::remove_host_cgroups(cgroup_dirs);
    std::erase_if(cgroup_dirs, [](const std::string& d) { return ::access(d.c_str(), F_OK) != 0; });
    if (!cgroup_dirs.empty()) ::usleep(50'000);
  }
  return code;
}

}  // namespace vessel::monitor
