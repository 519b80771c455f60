#include "runtime/vm_template.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/agent_connection.h"
#include "base/log.h"
#include "net/address.h"
#include "protocol/protocol.h"
#include "runtime/container_vm.h"
#include "sys/fs.h"
#include "vmm/qemu_vmm.h"

namespace vessel::runtime {
namespace {

using Clock = std::chrono::steady_clock;

/// Waits for vessel-init's Hello on the VM's agent port and checks its
/// protocol version.
Status await_hello(vmm::VmInstance& vm, Clock::time_point deadline) {
  int fd = vm.port_fd(protocol::kPortName);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);  // as ContainerVm reads it
  agent::AgentConnection port(fd);
  VESSEL_ASSIGN_OR_RETURN(agent::Frame f, port.wait_frame(deadline, vm.exit_fd()));
  if (f.header.type != static_cast<uint16_t>(protocol::MsgType::kHello))
    return Error(ErrorCode::kProtocol, "the guest did not start with hello");
  VESSEL_ASSIGN_OR_RETURN(protocol::Hello hello, agent::decode_as<protocol::Hello>(f));
  if (hello.version != protocol::kVersion)
    return Error(ErrorCode::kProtocol, "the guest speaks protocol version " +
                                           std::to_string(hello.version) + ", host " +
                                           std::to_string(protocol::kVersion));
  return ok_status();
}

/// Boots a VM of `config` on empty disks over the same bases until its
/// guest says hello, and saves it to `path` (written aside, then renamed).
Status make_template(const vmm::VmConfig& config, const std::string& path,
                     const std::string& work_dir, std::chrono::seconds boot_timeout) {
  VESSEL_TRY(sys::make_dirs(work_dir, 0700));
  vmm::VmConfig t = config;
  t.runtime_dir = work_dir;
  t.boot_log = work_dir + "/boot.log";
  t.append_boot_log = false;
  t.debug = false;
  t.incoming_fd = -1;
  if (!t.name.empty()) t.name += "-template";
  // The shares' devices are left out: their virtiofsd would serve this
  // container's directories to a VM that outlives nothing, and a state
  // with them could not be saved (vhost-user-fs migrates only with a
  // virtiofsd that can hand over its state).
  t.shares_late = !t.shared_dirs.empty();
  for (size_t i = 0; i < t.disks.size(); ++i) {
    vmm::Disk& d = t.disks[i];
    if (d.backing.empty())
      return Error(ErrorCode::kInvalidArgument, "a template's disk needs a base (Disk::backing)");
    // The guest reads only a disk's size and first sectors before its
    // Setup (the partition scan), and a restored guest drops those.
    d.path = work_dir + "/disk" + std::to_string(i) + ".qcow2";
    VESSEL_TRY(make_root_overlay(t.cache_dir, d.backing, d.path));
  }
  // Network devices get the template's MACs (protocol::template_mac): the
  // guest of a restored VM finds each by it and gives it the container's.
  // The template VM uses the starting container's taps for its short life;
  // its guest never brings a link up.
  for (size_t i = 0; i < t.nics.size(); ++i) {
    std::string raw = protocol::template_mac(static_cast<uint8_t>(i));
    net::Mac mac;
    std::copy(raw.begin(), raw.end(), mac.bytes.begin());
    t.nics[i].mac = mac.to_string();
  }
  vmm::QemuVmm qemu;
  VESSEL_ASSIGN_OR_RETURN(std::unique_ptr<vmm::VmInstance> vm, qemu.start(t));
  Status s = await_hello(*vm, Clock::now() + boot_timeout);
  if (!s.ok()) {
    std::string tail = vm->boot_log_tail(2048);
    if (tail.empty()) return s;
    return Error(s.error().code(), s.error().to_string() + "\n--- boot log (tail) ---\n" + tail);
  }
  VESSEL_ASSIGN_OR_RETURN(std::string suffix, sys::random_hex(8));
  std::string made = path + ".tmp-" + suffix;
  {
    VESSEL_ASSIGN_OR_RETURN(UniqueFd out,
                            sys::open_fd(made, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    s = vm->save_state(out.get(), std::chrono::seconds(30));
  }
  (void)vm->kill();
  if (s.ok() && ::rename(made.c_str(), path.c_str()) != 0)
    s = Error::from_errno(errno, "rename '" + made + "' to '" + path + "'");
  if (!s.ok()) ::unlink(made.c_str());
  return s;
}

}  // namespace

void prune_templates(const std::string& dir, size_t keep, std::chrono::seconds max_unused) {
  auto names = sys::list_dir(dir);
  if (!names.ok()) return;
  time_t now = ::time(nullptr);
  std::vector<std::pair<time_t, std::string>> states;  // last use, key
  auto remove_key = [&](const std::string& key) {
    for (const char* ext : {".vmstate", ".wanted", ".boot", ".lock"})
      ::unlink((dir + "/" + key + ext).c_str());
  };
  for (const std::string& n : *names) {
    std::string path = dir + "/" + n;
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) continue;
    // A template being written by a maker that died (its monitor killed).
    if (n.find(".vmstate.tmp-") != std::string::npos) {
      if (now - st.st_mtime > 3600) ::unlink(path.c_str());
      continue;
    }
    // Marks of shapes not started for as long (an older QEMU's, kernel's).
    for (std::string_view mark : {".wanted", ".boot"}) {
      if (n.ends_with(mark) && now - st.st_mtime > max_unused.count()) ::unlink(path.c_str());
    }
    if (!n.ends_with(".vmstate")) continue;
    std::string key = n.substr(0, n.size() - std::string_view(".vmstate").size());
    if (now - st.st_mtime > max_unused.count())
      remove_key(key);
    else
      states.emplace_back(st.st_mtime, key);
  }
  std::sort(states.begin(), states.end(), std::greater<>());
  for (size_t i = keep; i < states.size(); ++i)
    remove_key(states[i].second);
}

void drop_template(const VmTemplate& t) {
  static constexpr std::string_view kState = ".vmstate";
  if (!t.path.ends_with(kState)) return;
  ::unlink(t.path.c_str());
  std::string mark = t.path.substr(0, t.path.size() - kState.size()) + ".boot";
  UniqueFd fd(::open(mark.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
}

std::string templates_dir(const std::string& state_root) {
  const char* off = ::getenv("VESSEL_TEMPLATES");
  if (state_root.empty() || (off != nullptr && std::string(off) == "0")) return "";
  return state_root + "/cache/templates";
}

VmTemplate open_template(const vmm::VmConfig& config, const std::string& dir,
                         const std::string& work_dir, std::chrono::seconds boot_timeout) {
  if (dir.empty()) return {};
  std::string key = vmm::state_key(config);
  if (key.empty()) return {};
  for (const vmm::Disk& d : config.disks)
    if (d.backing.empty()) return {};
  if (!sys::make_dirs(dir, 0700).ok()) return {};
  VmTemplate t;
  t.path = dir + "/" + key + ".vmstate";
  t.state.reset(::open(t.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (t.state) {
    ::futimens(t.state.get(), nullptr);  // used: see prune_templates()
    return t;
  }
  // A shape whose QEMU cannot restore it (restores_with_shares()), or whose
  // template could not be made, boots.
  std::string boots = dir + "/" + key + ".boot";
  if (::access(boots.c_str(), F_OK) == 0) return {};
  std::string wanted = dir + "/" + key + ".wanted";
  if (::access(wanted.c_str(), F_OK) != 0) {
    UniqueFd mark(::open(wanted.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    return {};
  }
  // One maker per shape; the others boot meanwhile.
  UniqueFd lock(::open((dir + "/" + key + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return {};
  t.state.reset(::open(t.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (t.state) return t;
  if (!config.shared_dirs.empty() && !vmm::restores_with_shares(config)) {
    log::debug("VM template " + key + ": this QEMU cannot restore a VM with shares; booting");
    UniqueFd mark(::open(boots.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    return {};
  }
  prune_templates(dir, kKeptTemplates - 1, kTemplateMaxUnused);
  auto began = Clock::now();
  // A template that takes longer than this to boot is not worth waiting
  // for: the host is overloaded, or VMs cannot boot on it at all (then the
  // container's own boot fails too, and should not wait twice as long).
  Status made =
      make_template(config, t.path, work_dir, std::min(boot_timeout, kTemplateBootTimeout));
  (void)sys::remove_tree(work_dir);
  if (!made.ok()) {
    // Not tried again for this shape: what failed once fails again, and
    // each try costs a start a boot.
    log::warn("VM template " + key + ": " + made.error().to_string() +
              "; booting instead, and this shape from now on");
    UniqueFd mark(::open(boots.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    return {};
  }
  log::debug(
      "VM template " + key + " made in " +
      std::to_string(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began).count()) +
      " ms");
  t.state.reset(::open(t.path.c_str(), O_RDONLY | O_CLOEXEC));
  return t;
}

}  // namespace vessel::runtime
