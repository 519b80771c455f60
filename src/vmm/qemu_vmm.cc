#include "vmm/qemu_vmm.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>

#include "base/log.h"
#include "sys/fs.h"
#include "sys/process.h"
#include "sys/unix_socket.h"
#include "vmm/qemu_args.h"
#include "vmm/qemu_jail.h"
#include "vmm/qmp.h"
#include "vmm/virtiofsd.h"

namespace vessel::vmm {
namespace {

using namespace std::chrono_literals;

class QemuInstance final : public VmInstance {
 public:
  QemuInstance(sys::Process qemu, std::vector<sys::Process> daemons,
               std::vector<std::pair<std::string, UniqueFd>> ports, UniqueFd qmp,
               std::string log_path, UniqueFd incoming)
      : qemu_(std::move(qemu)),
        daemons_(std::move(daemons)),
        ports_(std::move(ports)),
        qmp_(std::move(qmp)),
        log_path_(std::move(log_path)),
        incoming_(std::move(incoming)) {}

  ~QemuInstance() override { (void)stop(0ms); }

  int port_fd(std::string_view name) const override {
    for (const auto& [n, fd] : ports_)
      if (n == name) return fd.get();
    return -1;
  }

  int exit_fd() const override { return qemu_.pidfd(); }
  pid_t pid() const override { return qemu_.pid(); }

  bool running() override { return !qemu_.try_wait().has_value(); }

  Result<std::string> status() override {
    if (!running()) return std::string("shutdown");
    VESSEL_ASSIGN_OR_RETURN(auto reply, qmp_.execute("query-status"));
    if (!reply.is_object() || !reply.contains("status") || !reply["status"].is_string())
      return Error(ErrorCode::kProtocol, "qmp: malformed query-status reply");
    return reply["status"].get<std::string>();
  }

  Status pause(bool paused) override {
    if (!running()) return Error(ErrorCode::kFailedPrecondition, "the VM is not running");
    auto r = qmp_.execute(paused ? "stop" : "cont");
    if (!r.ok()) return r.error().wrap(paused ? "pause the VM" : "resume the VM");
    return ok_status();
  }

  Status stop(std::chrono::milliseconds grace) override {
    if (!qemu_.try_wait()) {
      if (grace.count() > 0) (void)qemu_.wait(grace);
      if (!qemu_.try_wait()) {
        // Ask QEMU to quit (it flushes its block devices), then insist.
        if (qmp_.execute("quit", nullptr, 1s).ok()) (void)qemu_.wait(1s);
        if (!qemu_.try_wait()) {
          (void)qemu_.kill(SIGKILL);
          (void)qemu_.wait();
        }
      }
    }
    // virtiofsd exits by itself once QEMU's vhost-user connection closes;
    // give it a moment, then make sure.
    for (auto& d : daemons_) {
      if (!d.wait(500ms).ok()) {
        (void)d.kill(SIGKILL);
        (void)d.wait();
      }
    }
    daemons_.clear();
    return ok_status();
  }

  Status kill() override {
    // All at once: their exits (mostly freeing guest RAM) overlap.
    if (!qemu_.try_wait()) (void)qemu_.kill(SIGKILL);
    for (auto& d : daemons_)
      if (!d.try_wait()) (void)d.kill(SIGKILL);
    (void)qemu_.wait();
    for (auto& d : daemons_)
      (void)d.wait();
    daemons_.clear();
    return ok_status();
  }

  Status save_state(int fd, std::chrono::milliseconds timeout) override {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    if (!running()) return Error(ErrorCode::kFailedPrecondition, "the VM is not running");
    auto check = [](const Result<nlohmann::json>& r) -> Status {
      if (!r.ok()) return r.error().wrap("save the VM");
      return ok_status();
    };
    VESSEL_TRY(check(qmp_.execute("stop")));
    auto started = migrate_with_file("migrate", fd);
    if (!started.ok()) return started.error().wrap("save the VM");
    for (;;) {
      auto r = qmp_.execute("query-migrate");
      VESSEL_TRY(check(r));
      std::string status = r->is_object() && r->contains("status") && (*r)["status"].is_string()
                               ? (*r)["status"].get<std::string>()
                               : "";
      if (status == "completed") return ok_status();
      if (status == "failed" || status == "cancelled") {
        std::string why = r->contains("error-desc") && (*r)["error-desc"].is_string()
                              ? (*r)["error-desc"].get<std::string>()
                              : status;
        return Error(ErrorCode::kFailedPrecondition, "save the VM: " + why);
      }
      if (std::chrono::steady_clock::now() >= deadline)
        return Error(ErrorCode::kTimeout, "save the VM: not done in time");
      ::usleep(2000);
    }
  }

  Status resume_incoming(std::chrono::milliseconds timeout) override {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    bool in_fd_set = false;
    if (incoming_) {
      // Started with -incoming defer: the file goes over QMP now, in the
      // format the same QEMU saved it in (save_state).
      auto started = migrate_with_file("migrate-incoming", incoming_.get());
      if (!started.ok()) return started.error().wrap("load the VM's saved state");
      in_fd_set = *started;
      incoming_.reset();
    }
    for (;;) {
      if (!running())
        return Error(ErrorCode::kUnavailable, "the VM stopped while its saved state loaded");
      auto st = status();
      if (!st.ok()) return st.error().wrap("load the VM's saved state");
      // A state saved from a paused VM (save_state) loads paused.
      if (*st == "paused" || *st == "prelaunch") {
        // Loaded: the fd set's copy of the file goes (QEMU closed its
        // own when the load ended), so QEMU holds nothing of it. Failing
        // that keeps one fd of a file, not worth failing the start for.
        if (in_fd_set) (void)qmp_.execute("remove-fd", {{"fdset-id", kStateFdSet}});
        auto r = qmp_.execute("cont");
        if (!r.ok()) return r.error().wrap("run the restored VM");
        return ok_status();
      }
      if (*st == "running") return ok_status();
      if (*st != "inmigrate")
        return Error(ErrorCode::kFailedPrecondition, "load the VM's saved state: the VM is " + *st);
      if (std::chrono::steady_clock::now() >= deadline)
        return Error(ErrorCode::kTimeout, "load the VM's saved state: not done in time");
      ::usleep(1000);
    }
  }

  std::string boot_log_tail(size_t bytes) const override {
    if (log_path_.empty()) return "";
    auto content = sys::read_file(log_path_);
    if (!content.ok()) return "";
    const std::string& s = *content;
    return s.size() > bytes ? s.substr(s.size() - bytes) : s;
  }

 private:
  /// Whether this QEMU saves and loads states in the mapped-ram format
  /// (QEMU 9.0 and later): each page at its own offset in the file, zero
  /// pages left out (a hole). The stream format's loader reads every page
  /// of guest RAM to compare it with zero, which allocates all of it where
  /// RAM is shared memory (a VM with shares): a restored VM's QEMU then held
  /// ~320 MiB of guest RAM instead of ~40 MiB, and took 1 s longer
  /// to start (docs/performance.md, session 15).
  Result<bool> mapped_ram() {
    auto r = qmp_.execute("query-version");
    if (!r.ok()) return r.error().wrap("ask QEMU its version");
    const nlohmann::json& v = *r;
    if (!v.is_object() || !v.contains("qemu") || !v["qemu"].is_object() ||
        !v["qemu"].contains("major") || !v["qemu"]["major"].is_number_unsigned())
      return Error(ErrorCode::kProtocol, "qmp: malformed query-version reply");
    return v["qemu"]["major"].get<unsigned>() >= 9;
  }

  /// The fd set a state file goes into for a file: URI (add-fd).
  static constexpr int kStateFdSet = 7;
  static std::string state_set_uri() { return "file:/dev/fdset/" + std::to_string(kStateFdSet); }

  /// Starts `command` ("migrate" or "migrate-incoming") with the state
  /// file `fd`, passed over QMP (a jailed QEMU opens nothing itself). In
  /// the mapped-ram format (set on both sides: mapped_ram()) QEMU needs a
  /// file it can seek, which it takes only as a file: URI, so the fd goes
  /// into an fd set the URI names; else QEMU's stream over fd:. Returns
  /// whether the fd went into the set (kStateFdSet).
  Result<bool> migrate_with_file(const char* command, int fd) {
    VESSEL_ASSIGN_OR_RETURN(bool mapped, mapped_ram());
    if (mapped) {
      nlohmann::json cap = {{"capability", "mapped-ram"}, {"state", true}};
      VESSEL_TRY(qmp_.execute("migrate-set-capabilities",
                              {{"capabilities", nlohmann::json::array({cap})}}));
      VESSEL_TRY(qmp_.execute_with_fd("add-fd", {{"fdset-id", kStateFdSet}}, fd));
      VESSEL_TRY(qmp_.execute(command, {{"uri", state_set_uri()}}));
    } else {
      VESSEL_TRY(qmp_.execute_with_fd("getfd", {{"fdname", "vessel-state"}}, fd));
      VESSEL_TRY(qmp_.execute(command, {{"uri", "fd:vessel-state"}}));
    }
    return mapped;
  }

  sys::Process qemu_;
  std::vector<sys::Process> daemons_;
  std::vector<std::pair<std::string, UniqueFd>> ports_;
  QmpClient qmp_;
  std::string log_path_;
  UniqueFd incoming_;  // the saved state to load (resume_incoming)
};

Result<std::pair<UniqueFd, UniqueFd>> make_socketpair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return Error::from_errno(errno, "socketpair");
  return std::make_pair(UniqueFd(sv[0]), UniqueFd(sv[1]));
}

}  // namespace

Result<std::string> find_qemu(const VmConfig& config) {
  const char* env = ::getenv("VESSEL_QEMU");
  MachineSpec m = machine_spec(config);
  std::string name = env && *env ? env : m.binary;
  auto path = sys::find_program(name);
  if (!path)
    return Error(ErrorCode::kUnavailable,
                 "QEMU not found: '" + name + "' is not in PATH (install qemu-system-x86)");
  if ((env && *env) || m.lean_binary.empty()) return *path;
  // The lean build beside the full one's real file, so that both are the
  // same QEMU (scripts/install-backports-qemu.sh links only the full one).
  std::string lean = qemu_sibling(*path, m.lean_binary);
  return ::access(lean.c_str(), X_OK) == 0 ? lean : *path;
}

namespace {

/// What the guest sees of a disk's size: a qcow2's virtual size (its
/// header), a raw image's file size; 0 if unreadable.
uint64_t disk_virtual_size(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return 0;
  unsigned char h[32];
  if (::pread(fd.get(), h, sizeof h, 0) == static_cast<ssize_t>(sizeof h) && h[0] == 'Q' &&
      h[1] == 'F' && h[2] == 'I' && h[3] == 0xfb) {
    uint64_t size = 0;
    for (int i = 24; i < 32; ++i)
      size = size << 8 | h[i];  // big-endian (qcow2 header, "size")
    return size;
  }
  struct stat st;
  return ::fstat(fd.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

/// A file as it is now: where, what, how big, when last changed.
std::string file_identity(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "";
  return path + ":" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace

std::string state_key(const VmConfig& config) {
  VmConfig c = config;
  c.shares_late = false;
  if (c.host_tsc_khz == 0) c.host_tsc_khz = cpu_khz(read_host_facts().cpuinfo);
  auto qemu_bin = find_qemu(c);
  if (!qemu_bin.ok()) return "";
  std::string text = "vessel-vm-state-1\n";
  for (const std::string& f : {*qemu_bin, c.kernel, c.initrd}) {
    std::string id = file_identity(f);
    if (id.empty()) return "";
    text += id + "\n";
  }
  // The machine and its devices as QEMU is told them, without what is each
  // VM's own: disk files (the guest sees their sizes and serials), fds,
  // paths, name, boot log, confinement (QEMU's own, not the guest's).
  QemuLaunch launch;
  for (size_t i = 0; i < c.serial_ports.size(); ++i)
    launch.port_fds.push_back(100 + static_cast<int>(i));
  launch.qmp_fd = 99;
  // A NIC's MAC is device state: a restored VM has its template's, and the
  // guest changes it (Setup.restored). Its tap is each VM's own.
  for (size_t i = 0; i < c.nics.size(); ++i) {
    c.nics[i].mac = "02:00:00:00:00:00";
    launch.tap_fds.push_back(110 + static_cast<int>(i));
  }
  if (!c.nics.empty())
    launch.vhost_net = use_vhost_net(c.accel, ::access("/dev/vhost-net", R_OK | W_OK) == 0);
  // The shares count (their transports), not their tags or directories:
  // the guest of a restored VM probes their devices after the restore.
  for (size_t i = 0; i < c.shared_dirs.size(); ++i) {
    c.shared_dirs[i] = SharedDir{.tag = "fs" + std::to_string(i), .host_path = "share"};
    launch.fs_fds.push_back(120 + static_cast<int>(i));
  }
  if (!c.shared_dirs.empty() && late_share_args(c, launch, machine_spec(c)).empty()) return "";
  for (Disk& d : c.disks) {
    uint64_t size = disk_virtual_size(d.path);
    if (size == 0) return "";
    text += "disk " + d.serial + " " + std::to_string(size) + "\n";
    d.path = "disk";
    if (!d.backing.empty()) d.backing = "backing";
  }
  c.name.clear();
  c.runtime_dir.clear();
  c.boot_log.clear();
  c.cache_dir.clear();
  c.debug = false;
  c.append_boot_log = false;
  c.confine = Confinement{};
  c.incoming_fd = -1;
  for (const std::string& a : qemu_command_line(c, launch))
    text += a + "\n";
  // Two 64-bit hashes of the text, not SHA-256: the key names local files
  // from local configuration (nothing an image chooses), and SHA-256 would
  // load libcrypto into every monitor that starts a VM (~2 ms, and ~0.45
  // MiB of its relocated data per container: architecture.md, "Libraries
  // opened on demand").
  std::hash<std::string> h;
  char key[33];
  std::snprintf(key, sizeof key, "%016zx%016zx", h(text), h("vessel-vm-state\n" + text));
  return key;
}

bool restores_with_shares(const VmConfig& config) {
  auto qemu_bin = find_qemu(config);
  if (!qemu_bin.ok()) return false;
  auto out = sys::output_of({*qemu_bin, "--version"});
  if (!out.ok()) return false;
  // "QEMU emulator version 10.0.2 (Debian ...)"
  static constexpr std::string_view kPrefix = "QEMU emulator version ";
  size_t at = out->find(kPrefix);
  if (at == std::string::npos) return false;
  unsigned major = 0, minor = 0;
  if (std::sscanf(out->c_str() + at + kPrefix.size(), "%u.%u", &major, &minor) != 2) return false;
  return major > 8 || (major == 8 && minor >= 2);
}

Result<std::unique_ptr<VmInstance>> QemuVmm::start(const VmConfig& config) {
  VmConfig c = config;
  if (c.host_tsc_khz == 0) c.host_tsc_khz = cpu_khz(read_host_facts().cpuinfo);
  VESSEL_ASSIGN_OR_RETURN(std::string qemu_bin, find_qemu(c));
  for (const auto& [what, path] : {std::pair{"kernel", c.kernel}, {"initramfs", c.initrd}}) {
    if (::access(path.c_str(), R_OK) != 0)
      return Error::from_errno(errno, std::string(what) + " '" + path + "'");
  }

  for (char ch : c.name) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.')
      return Error(ErrorCode::kInvalidArgument, "invalid VM name '" + c.name + "'");
  }
  for (const NetDevice& nic : c.nics) {
    if (nic.tap_fd < 0)
      return Error(ErrorCode::kInvalidArgument, "network device '" + nic.mac + "' has no tap");
    if (!valid_mac(nic.mac))
      return Error(ErrorCode::kInvalidArgument, "invalid MAC address '" + nic.mac + "'");
  }

  // The boot log gets the guest console and QEMU's and virtiofsd's
  // complaints; with debug they go straight to our stderr.
  std::string log_path;
  UniqueFd log;
  if (c.debug) {
    log.reset(::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3));
  } else {
    log_path = c.boot_log.empty() ? c.runtime_dir + "/boot.log" : c.boot_log;
    VESSEL_ASSIGN_OR_RETURN(
        log, sys::open_fd(log_path,
                          O_WRONLY | O_CREAT | O_APPEND | (c.append_boot_log ? 0 : O_TRUNC), 0600));
  }

  // Confined: QEMU's seccomp sandbox always; as root also a jail, where
  // QEMU finds only what it loads by path, and is given everything else
  // (disks, vhost-user sockets) as fds opened here.
  bool jailed = c.confine.enabled && ::geteuid() == 0;
  sys::SpawnOptions o;
  QemuLaunch launch;
  launch.sandbox = c.confine.enabled;
  std::optional<QemuFiles> files;
  if (jailed) {
    auto found = cached_qemu_files(qemu_bin, c.cache_dir);
    if (!found.ok()) return found.error().wrap("confine QEMU");
    files = std::move(*found);
    std::string mountpoint = c.runtime_dir + "/jail";
    if (::mkdir(mountpoint.c_str(), 0755) != 0 && errno != EEXIST)
      return Error::from_errno(errno, "create '" + mountpoint + "'");
    VESSEL_ASSIGN_OR_RETURN(sys::Jail jail, qemu_jail(*files, c, mountpoint));
    o.jail = std::move(jail);
    launch.kernel_path = kJailKernel;
    launch.initrd_path = kJailInitrd;
    launch.data_dir = files->data_dir;
    if (!c.shared_dirs.empty()) launch.ram_dir = kJailRamDir;
    // A minimal environment: the jail has nothing the rest would name.
    o.env = std::vector<std::string>{};
    if (!files->module_dir.empty()) o.env->push_back("QEMU_MODULE_DIR=" + files->module_dir);
    // Says whose VM this is to anyone looking at the host's processes (the
    // command line names no host path any more).
    o.env->push_back("VESSEL_RUNTIME_DIR=" + c.runtime_dir);
  } else if (std::string data = qemu_data_dir(qemu_bin); data != "/usr/share/qemu") {
    launch.data_dir = data;  // its own firmware, not the system QEMU's
  }

  std::vector<sys::Process> daemons;
  std::vector<UniqueFd> child_ends;
  int next_fd = 3;
  for (size_t i = 0; i < c.shared_dirs.size() && !c.shares_late; ++i) {
    std::string sock = c.runtime_dir + "/fs" + std::to_string(i) + ".sock";
    VESSEL_ASSIGN_OR_RETURN(
        sys::Process d,
        start_virtiofsd(c.shared_dirs[i].host_path, sock, log.get(), c.shared_dirs[i].keep_cache));
    daemons.push_back(std::move(d));
    launch.fs_sockets.push_back(sock);
    if (jailed) {
      // The daemon listens already (start_virtiofsd), so this connects at
      // once; QEMU takes the connected socket.
      VESSEL_ASSIGN_OR_RETURN(UniqueFd conn, sys::connect_unix(sock));
      o.fds.push_back({next_fd, conn.get()});
      launch.fs_fds.push_back(next_fd++);
      child_ends.push_back(std::move(conn));
    }
  }
  if (jailed) {
    for (const Disk& d : c.disks) {
      std::vector<int> set;
      for (int mode :
           d.read_only ? std::vector<int>{O_RDONLY} : std::vector<int>{O_RDWR, O_RDONLY}) {
        VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(d.path, mode | O_CLOEXEC));
        o.fds.push_back({next_fd, fd.get()});
        set.push_back(next_fd++);
        child_ends.push_back(std::move(fd));
      }
      launch.disk_fds.push_back(std::move(set));
      std::vector<int> backing;
      if (!d.backing.empty()) {
        VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(d.backing, O_RDONLY | O_CLOEXEC));
        o.fds.push_back({next_fd, fd.get()});
        backing.push_back(next_fd++);
        child_ends.push_back(std::move(fd));
      }
      launch.backing_fds.push_back(std::move(backing));
    }
  }

  // Serial ports and QMP are socketpairs whose QEMU ends are inherited as
  // fds 3, 4, ...: nothing to connect to, so no startup race.
  std::vector<std::pair<std::string, UniqueFd>> ports;
  for (const auto& name : c.serial_ports) {
    VESSEL_ASSIGN_OR_RETURN(auto pair, make_socketpair());
    ports.emplace_back(name, std::move(pair.first));
    o.fds.push_back({next_fd, pair.second.get()});
    launch.port_fds.push_back(next_fd++);
    child_ends.push_back(std::move(pair.second));
  }
  VESSEL_ASSIGN_OR_RETURN(auto qmp_pair, make_socketpair());
  o.fds.push_back({next_fd, qmp_pair.second.get()});
  launch.qmp_fd = next_fd++;
  // Taps are opened by the caller (QEMU needs no privileges for them) and
  // inherited the same way; our copies stay the caller's.
  for (const NetDevice& nic : c.nics) {
    o.fds.push_back({next_fd, nic.tap_fd});
    launch.tap_fds.push_back(next_fd++);
  }
  if (!c.nics.empty())
    launch.vhost_net = use_vhost_net(c.accel, ::access("/dev/vhost-net", R_OK | W_OK) == 0);
  if (launch.vhost_net) {
    // One vhost-net instance per NIC, opened here: a jailed QEMU could not.
    for (size_t i = 0; i < c.nics.size(); ++i) {
      VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd("/dev/vhost-net", O_RDWR | O_CLOEXEC));
      o.fds.push_back({next_fd, fd.get()});
      launch.vhost_fds.push_back(next_fd++);
      child_ends.push_back(std::move(fd));
    }
  }

  UniqueFd incoming;
  if (c.incoming_fd >= 0) {
    launch.incoming = true;
    // For resume_incoming, which hands it to QEMU over QMP.
    incoming.reset(::fcntl(c.incoming_fd, F_DUPFD_CLOEXEC, 0));
    if (!incoming) return Error::from_errno(errno, "duplicate the saved state's fd");
  }
  // Anonymous guest RAM in small pages: QEMU without huge pages (with
  // shares the jail's RAM tmpfs has none instead, and QEMU's translation
  // buffer keeps them).
  o.no_huge_pages = guest_ram_in_small_pages(c) && c.shared_dirs.empty();
  o.argv = qemu_command_line(c, launch);
  o.argv[0] = files ? files->binary : qemu_bin;
  o.fds.push_back({1, log.get()});
  o.fds.push_back({2, log.get()});
  if (log::level() <= log::Level::kDebug) {
    std::string line;
    for (const auto& a : o.argv)
      line += a + " ";
    log::debug("qemu: " + line);
  }
  auto qemu = sys::Process::spawn(o);
  if (!qemu.ok()) return qemu.error().wrap("start QEMU");
  return std::unique_ptr<VmInstance>(new QemuInstance(std::move(*qemu), std::move(daemons),
                                                      std::move(ports), std::move(qmp_pair.first),
                                                      log_path, std::move(incoming)));
}

}  // namespace vessel::vmm
