#include "runtime/container_vm.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/strings.h"
#include "sys/fs.h"
#include "sys/process.h"
#include "vmm/qemu_vmm.h"

namespace vessel::runtime {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using protocol::MsgType;

constexpr const char* kRootfsTag = "rootfs";
constexpr const char* kLowerSerial = "vessel-lower";
constexpr const char* kUpperSerial = "vessel-upper";

// The host's resolver configuration minus loopback nameservers, which mean
// nothing inside the VM (Docker filters them the same way).
std::string guest_resolv_conf() {
  auto content = sys::read_file("/etc/resolv.conf", 64 << 10);
  if (!content.ok()) return "";
  std::string out;
  for (const auto& line : split(*content, '\n')) {
    std::string_view t = trim(line);
    if (starts_with(t, "nameserver") &&
        (t.find(" 127.") != std::string_view::npos || t.find(" ::1") != std::string_view::npos))
      continue;
    if (!t.empty()) out += std::string(t) + "\n";
  }
  return out;
}

std::string guest_hosts(const std::string& hostname) {
  return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname +
         "\n";
}

Result<std::string> real_root(const ContainerConfig& c) {
  bool image_root = !c.root_image.empty();
  const std::string& path = image_root ? c.root_image : c.rootfs;
  const std::string what = image_root ? "root image '" : "rootfs '";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Error::from_errno(errno, what + path + "'");
  if (image_root ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode))
    return Error(ErrorCode::kInvalidArgument,
                 what + path + (image_root ? "' is not a file" : "' is not a directory"));
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) return Error::from_errno(errno, what + path + "'");
  return std::string(real);
}

}  // namespace

Status make_writable_disk(const std::string& path, uint64_t bytes) {
  // mkfs with lazy inode tables and journal touches a few MiB (about 15 ms).
  std::string mkfs;
  for (const char* candidate : {"mkfs.ext4", "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"}) {
    if (auto p = sys::find_program(candidate)) {
      mkfs = *p;
      break;
    }
  }
  if (mkfs.empty())
    return Error(ErrorCode::kUnavailable, "mkfs.ext4 not found (install e2fsprogs)");
  {
    VESSEL_ASSIGN_OR_RETURN(UniqueFd fd, sys::open_fd(path, O_WRONLY | O_CREAT | O_EXCL, 0600));
    if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0)
      return Error::from_errno(errno, "size writable layer '" + path + "'");
  }
  VESSEL_ASSIGN_OR_RETURN(
      sys::Process p,
      sys::Process::spawn({.argv = {mkfs, "-q", "-F", "-L", "vessel-upper", "-E",
                                    "lazy_itable_init=1,lazy_journal_init=1", path}}));
  VESSEL_ASSIGN_OR_RETURN(sys::ExitStatus st, p.wait());
  if (st.code != 0 || st.signal != 0)
    return Error(ErrorCode::kInternal, "mkfs.ext4 '" + path + "' " + st.to_string());
  return ok_status();
}

protocol::Spawn main_spawn(const ContainerConfig& c, uint16_t rows, uint16_t cols) {
  protocol::Spawn s;
  s.argv = c.argv;
  s.env = c.env;
  s.cwd = c.workdir;
  s.uid = c.uid;
  s.gid = c.gid;
  s.groups = c.groups;
  s.user = c.user;
  s.tty = c.tty;
  s.stdin_open = c.open_stdin;
  s.rows = rows;
  s.cols = cols;
  return s;
}

int exec_failure_code(int errnum) {
  if (errnum == ENOENT) return 127;
  if (errnum == EACCES || errnum == ENOEXEC) return 126;
  return 0;
}

Result<std::unique_ptr<ContainerVm>> ContainerVm::boot(const ContainerConfig& c,
                                                       const BootOptions& o) {
  VESSEL_ASSIGN_OR_RETURN(std::string root, real_root(c));
  std::optional<vmm::Accel> wanted;
  if (!c.accel.empty()) {
    VESSEL_ASSIGN_OR_RETURN(wanted, vmm::parse_accel(c.accel));
  }
  vmm::HostFacts facts = vmm::read_host_facts();
  VESSEL_ASSIGN_OR_RETURN(vmm::AccelChoice accel, vmm::resolve_accel(wanted, facts));

  vmm::VmConfig cfg;
  cfg.kernel = c.kernel;
  cfg.initrd = c.initrd;
  cfg.cpus = c.cpus;
  cfg.memory_bytes = c.memory_bytes;
  cfg.accel = accel.accel;
  cfg.host_tsc_khz = vmm::cpu_khz(facts.cpuinfo);
  protocol::Setup setup{c.hostname, "", guest_hosts(c.hostname), guest_resolv_conf(),
                        static_cast<uint8_t>(c.read_only)};
  if (!c.root_image.empty()) {
    cfg.disks.push_back({root, kLowerSerial, true});
    setup.lower_serial = kLowerSerial;
    if (!c.read_only) {
      cfg.disks.push_back({o.upper_disk, kUpperSerial, false});
      setup.upper_serial = kUpperSerial;
    }
  } else {
    cfg.shared_dirs = {{kRootfsTag, root}};
    setup.rootfs_tag = kRootfsTag;
  }
  cfg.serial_ports = {std::string(protocol::kPortName)};
  cfg.runtime_dir = o.runtime_dir;
  cfg.boot_log = o.boot_log;
  cfg.debug = o.debug;
  vmm::QemuVmm qemu;
  VESSEL_ASSIGN_OR_RETURN(std::unique_ptr<vmm::VmInstance> vm, qemu.start(cfg));
  int port = vm->port_fd(protocol::kPortName);
  ::fcntl(port, F_SETFL, ::fcntl(port, F_GETFL) | O_NONBLOCK);
  std::unique_ptr<ContainerVm> self(new ContainerVm(std::move(vm), port, o.abort_fd));
  self->accel_ = accel;

  auto fail = [&](Error e, const std::string& what) -> Error {
    // A guest that hangs up usually means QEMU is exiting: give it a moment
    // and say so; the boot log then tells why.
    if (e.code() == ErrorCode::kUnavailable && e.message() != "interrupted") {
      pollfd p{self->vm_->exit_fd(), POLLIN, 0};
      if (::poll(&p, 1, 1000) == 1)
        e = Error(ErrorCode::kUnavailable, "the VM stopped unexpectedly");
    }
    if (e.message() == "interrupted") return e;
    return self->with_boot_log(std::move(e).wrap(what));
  };

  // Boot: the guest says hello once vessel-init serves the port.
  auto hello_frame = self->await(std::chrono::seconds(c.boot_timeout_seconds));
  if (!hello_frame.ok()) return fail(hello_frame.error(), "boot VM");
  if (hello_frame->header.type != static_cast<uint16_t>(MsgType::kHello))
    return fail(Error(ErrorCode::kProtocol, "guest did not start with hello"), "boot VM");
  auto hello = agent::decode_as<protocol::Hello>(*hello_frame);
  if (!hello.ok()) return fail(hello.error(), "boot VM");
  if (hello->version != protocol::kVersion)
    return fail(Error(ErrorCode::kProtocol, "guest speaks protocol version " +
                                                std::to_string(hello->version) + ", host " +
                                                std::to_string(protocol::kVersion)),
                "boot VM");
  log::debug("guest: " + hello->guest);

  if (auto s = self->agent_.send_message(MsgType::kSetup, 0, setup); !s.ok())
    return fail(s.error(), "set up container");
  auto reply = self->await(30s);
  if (!reply.ok()) return fail(reply.error(), "set up container");
  auto result = agent::decode_as<protocol::Reply>(*reply);
  if (!result.ok() || reply->header.type != static_cast<uint16_t>(MsgType::kSetupResult))
    return fail(Error(ErrorCode::kProtocol, "unexpected reply to setup"), "set up container");
  if (result->errnum != 0)
    return fail(Error(ErrorCode::kInternal, result->message, result->errnum), "set up container");
  return self;
}

Result<agent::Frame> ContainerVm::await(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  agent::Frame f;
  while (!agent_.next(f)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Error(ErrorCode::kTimeout, "timed out waiting for the guest");
    pollfd p[3] = {{agent_.fd(), POLLIN, 0}, {vm_->exit_fd(), POLLIN, 0}, {abort_fd_, POLLIN, 0}};
    if (::poll(p, 3, static_cast<int>(left.count())) < 0 && errno != EINTR)
      return Error::from_errno(errno, "poll");
    if (p[0].revents) {
      VESSEL_TRY(agent_.read_available());
      continue;
    }
    if (p[1].revents) return Error(ErrorCode::kUnavailable, "the VM stopped");
    if (p[2].revents) return Error(ErrorCode::kUnavailable, "interrupted");
  }
  return f;
}

void ContainerVm::poweroff(std::chrono::milliseconds grace) {
  // The guest syncs and reboots, which ends QEMU (-no-reboot).
  (void)agent_.send(MsgType::kPoweroff, 0);
  (void)vm_->stop(grace);
}

Error ContainerVm::with_boot_log(Error e) const {
  std::string tail = vm_->boot_log_tail(2048);
  if (tail.empty()) return e;
  return Error(e.code(), e.to_string() + "\n--- boot log (tail) ---\n" + tail);
}

}  // namespace vessel::runtime
