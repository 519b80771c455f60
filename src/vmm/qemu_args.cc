#include "vmm/qemu_args.h"

#include <algorithm>
#include <cstdio>

namespace vessel::vmm {

namespace {
constexpr int kTcgTbSizeMib = 48;
}  // namespace

bool guest_ram_in_small_pages(const VmConfig& c) {
  return c.incoming_fd >= 0 && c.accel == Accel::kTcg;
}

bool use_vhost_net(Accel accel, bool vhost_net_device_exists) {
  return accel == Accel::kKvm && vhost_net_device_exists;
}

bool valid_mac(std::string_view mac) {
  if (mac.size() != 17) return false;
  for (size_t i = 0; i < mac.size(); ++i) {
    char c = mac[i];
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (i % 3 == 2 ? c != ':' : !hex) return false;
  }
  return true;
}

std::vector<int> virtio_buses(const MachineSpec& m) {
  std::vector<int> buses;
  for (int i = m.virtio_slots - 1; i >= 0; --i)
    if (m.virtio_irq_base + i != m.busy_irq) buses.push_back(i);
  return buses;
}

std::string late_share_args(const VmConfig& c, const QemuLaunch& l, const MachineSpec& m) {
  // The virtio-mmio devices qemu_command_line() gives before the shares'.
  size_t before = c.disks.size() + std::min(c.nics.size(), l.tap_fds.size()) +
                  (c.serial_ports.empty() ? 0 : 1) + (c.balloon ? 1 : 0);
  std::vector<int> buses = virtio_buses(m);
  if (c.shared_dirs.empty() || before + c.shared_dirs.size() > buses.size()) return "";
  std::string args;
  for (size_t i = 0; i < c.shared_dirs.size(); ++i) {
    int slot = buses[before + i];
    char arg[64];
    std::snprintf(arg, sizeof arg, " virtio_mmio.device=512@0x%llx:%d",
                  static_cast<unsigned long long>(m.virtio_mmio_base + 512ull * slot),
                  m.virtio_irq_base + slot);
    args += arg;
  }
  return args;
}

std::vector<std::string> qemu_command_line(const VmConfig& c, const QemuLaunch& l) {
  MachineSpec m = machine_spec(c);
  uint64_t mib = c.memory_bytes >> 20;
  std::vector<std::string> a = {m.binary};
  a.insert(a.end(), m.machine_args.begin(), m.machine_args.end());
  if (c.accel == Accel::kKvm) {
    a.insert(a.end(), {"-accel", "kvm"});
  } else {
    // TCG's translation buffer: QEMU 7.2 reserves 1 GiB and only flushes
    // it when full, so the host memory a VM's translated code occupies
    // only grows (a machine running systemd: ~200 MiB). The rule:
    // the smallest that does not slow the start. A container's boot and
    // start translate ~33-37 MiB: at 32 MiB (16 regions of 2 MiB, partly
    // filled per vCPU) QEMU flushed everything once in every boot and
    // translated it again, ~45 ms of each start (the floor's boot too, ~12
    // ms); 48 and 64 MiB start alike (30 alternated runs each). An idle
    // container keeps what it translated, ~37 MiB instead of ~31 after the
    // flush; a busy one stays under 48 (docs/performance.md).
    a.insert(a.end(), {"-accel", "tcg,tb-size=" + std::to_string(kTcgTbSizeMib)});
  }
  a.insert(a.end(), {
                        "-smp",
                        std::to_string(c.cpus),
                        "-m",
                        std::to_string(mib) + "M",
                        "-nodefaults",
                        "-no-user-config",
                        "-display",
                        "none",
                        // The guest ends a VM by rebooting (reboot=t); -no-reboot
                        // turns that into QEMU exiting.
                        "-no-reboot",
                        // The console goes to QEMU's stdout, which the owner points
                        // at the boot log.
                        "-chardev",
                        "stdio,id=con,signal=off",
                        "-serial",
                        "chardev:con",
                        "-kernel",
                        l.kernel_path.empty() ? c.kernel : l.kernel_path,
                        "-initrd",
                        l.initrd_path.empty() ? c.initrd : l.initrd_path,
                    });
  if (l.sandbox) a.insert(a.end(), {"-sandbox", kQemuSandbox});
  if (!c.name.empty()) a.insert(a.end(), {"-name", c.name});
  if (!l.data_dir.empty()) a.insert(a.end(), {"-L", l.data_dir});
  // Each virtio-mmio device on its transport (MachineSpec::virtio_slots).
  std::vector<int> buses = virtio_buses(m);
  size_t next_bus = 0;
  auto bus = [&]() -> std::string {
    if (next_bus >= buses.size()) return "";
    return ",bus=virtio-mmio-bus." + std::to_string(buses[next_bus++]);
  };
  std::string cmdline = m.kernel_args;
  if (!c.debug) cmdline += " quiet";
  if (!c.cmdline.empty()) cmdline += " " + c.cmdline;
  if (c.shares_late) cmdline += late_share_args(c, l, m);
  a.insert(a.end(), {"-append", cmdline});
  // vhost-user devices need modern virtio-mmio and guest RAM the daemon can
  // map: shared RAM (a memfd, or a file in QemuLaunch::ram_dir) backing
  // the only NUMA node.
  a.insert(a.end(), {"-global", "virtio-mmio.force-legacy=false"});
  if (!c.shared_dirs.empty()) {
    // In a directory QEMU makes a file and unlinks it; align=2M lets the
    // mapping take the tmpfs's huge pages (at 4 KiB alignment it cannot).
    std::string size = "size=" + std::to_string(mib) + "M";
    a.insert(a.end(), {"-object",
                       l.ram_dir.empty() ? "memory-backend-memfd,id=mem," + size + ",share=on"
                                         : "memory-backend-file,id=mem," + size +
                                               ",mem-path=" + l.ram_dir + ",share=on,align=2M",
                       "-numa", "node,memdev=mem"});
  }
  // An fd set per file (set N+1 for disk N, 101+N for its backing), or the
  // path, its commas doubled: QEMU parses commas in option values as
  // separators.
  auto file_of = [&](const std::string& host_path, const std::vector<std::vector<int>>& fds,
                     size_t i, int first_set) {
    if (i < fds.size() && !fds[i].empty()) {
      std::string set = std::to_string(first_set + static_cast<int>(i));
      for (int fd : fds[i])
        a.insert(a.end(), {"-add-fd", "fd=" + std::to_string(fd) + ",set=" + set});
      return "/dev/fdset/" + set;
    }
    std::string path;
    for (char ch : host_path)
      path += ch == ',' ? std::string(",,") : std::string(1, ch);
    return path;
  };
  for (size_t i = 0; i < c.disks.size(); ++i) {
    const Disk& d = c.disks[i];
    std::string id = "disk" + std::to_string(i);
    std::string path = file_of(d.path, l.disk_fds, i, 1);
    if (d.backing.empty()) {
      a.insert(a.end(), {"-drive", "if=none,id=" + id + ",file=" + path + ",format=raw," +
                                       "discard=unmap,readonly=" + (d.read_only ? "on" : "off")});
    } else {
      // The backing named here, not in the qcow2 (BlockdevOptionsGenericCOWFormat
      // `backing`): a raw node, read-only, under the qcow2 node.
      std::string backing = file_of(d.backing, l.backing_fds, i, 101);
      a.insert(a.end(),
               {"-blockdev",
                "driver=raw,node-name=" + id + "-base,read-only=on,file.driver=file," +
                    "file.filename=" + backing,
                "-blockdev",
                "driver=qcow2,node-name=" + id + ",discard=unmap,file.driver=file," +
                    "file.filename=" + path + ",file.discard=unmap,backing=" + id + "-base"});
    }
    a.insert(a.end(), {"-device", "virtio-blk-device,drive=" + id + ",serial=" + d.serial + bus()});
  }
  for (size_t i = 0; i < c.nics.size() && i < l.tap_fds.size(); ++i) {
    std::string id = "net" + std::to_string(i);
    // An open tap, inherited: QEMU needs no privileges and no tap name. Its
    // vnet header (IFF_VNET_HDR) is detected from the fd.
    a.insert(
        a.end(),
        {"-netdev",
         "tap,id=" + id + ",fd=" + std::to_string(l.tap_fds[i]) +
             ",vhost=" + (l.vhost_net ? "on" : "off") +
             (l.vhost_net && i < l.vhost_fds.size() ? ",vhostfd=" + std::to_string(l.vhost_fds[i])
                                                    : std::string()),
         "-device", "virtio-net-device,netdev=" + id + ",mac=" + c.nics[i].mac + bus()});
  }
  if (!c.serial_ports.empty()) {
    a.insert(a.end(), {"-device", "virtio-serial-device,max_ports=" +
                                      std::to_string(c.serial_ports.size() + 1) + bus()});
    for (size_t i = 0; i < c.serial_ports.size() && i < l.port_fds.size(); ++i) {
      std::string id = "port" + std::to_string(i);
      a.insert(a.end(), {"-chardev", "socket,id=" + id + ",fd=" + std::to_string(l.port_fds[i]),
                         "-device", "virtserialport,chardev=" + id + ",name=" + c.serial_ports[i]});
    }
  }
  if (c.balloon) {
    // Free page reporting: the guest kernel reports free blocks of
    // 2^page_reporting_order pages and QEMU discards them (MADV_DONTNEED,
    // or a hole punched in the memfd that backs shared guest RAM), so they
    // leave the host's resident set. The balloon itself is never inflated.
    a.insert(a.end(), {"-device", "virtio-balloon-device,free-page-reporting=on" + bus()});
  }
  // The shares' devices last, so that the other devices take the same
  // transports whether they are here or not (VmConfig::shares_late).
  for (size_t i = 0; i < c.shared_dirs.size() && !c.shares_late; ++i) {
    std::string id = "fs" + std::to_string(i);
    std::string chardev;
    if (i < l.fs_fds.size())
      chardev = "socket,id=" + id + ",fd=" + std::to_string(l.fs_fds[i]);
    else if (i < l.fs_sockets.size())
      chardev = "socket,id=" + id + ",path=" + l.fs_sockets[i];
    else
      continue;
    a.insert(a.end(),
             {"-chardev", chardev, "-device",
              "vhost-user-fs-device,chardev=" + id + ",tag=" + c.shared_dirs[i].tag + bus()});
  }
  if (l.incoming) a.insert(a.end(), {"-incoming", "defer"});
  if (l.qmp_fd >= 0) {
    a.insert(a.end(), {"-chardev", "socket,id=qmp,fd=" + std::to_string(l.qmp_fd), "-mon",
                       "chardev=qmp,mode=control"});
  }
  return a;
}

}  // namespace vessel::vmm
