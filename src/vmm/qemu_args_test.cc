#include "vmm/qemu_args.h"

#include <algorithm>

#include <gtest/gtest.h>

namespace vessel::vmm {
namespace {

bool has_pair(const std::vector<std::string>& a, const std::string& flag,
              const std::string& value) {
  for (size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == flag && a[i + 1] == value) return true;
  return false;
}

bool contains(const std::vector<std::string>& a, const std::string& needle) {
  return std::any_of(a.begin(), a.end(),
                     [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

VmConfig config() {
  VmConfig c;
  c.kernel = "/k";
  c.initrd = "/i";
  c.cpus = 3;
  c.memory_bytes = 256ull << 20;
  c.accel = Accel::kTcg;
  c.serial_ports = {"vessel.agent"};
  return c;
}

TEST(QemuArgs, BasicMachine) {
  QemuLaunch l{.port_fds = {3}, .qmp_fd = 4};
  auto a = qemu_command_line(config(), l);
  EXPECT_TRUE(has_pair(a, "-smp", "3"));
  EXPECT_TRUE(has_pair(a, "-m", "256M"));
  EXPECT_TRUE(has_pair(a, "-kernel", "/k"));
  EXPECT_TRUE(has_pair(a, "-initrd", "/i"));
  EXPECT_TRUE(has_pair(a, "-accel", "tcg,tb-size=48"));
  // -M microvm,accel=... and -accel cannot both be given.
  EXPECT_FALSE(contains(a, "accel="));
  EXPECT_TRUE(contains(a, "-no-reboot"));
  EXPECT_TRUE(has_pair(a, "-chardev", "socket,id=port0,fd=3"));
  EXPECT_TRUE(has_pair(a, "-device", "virtserialport,chardev=port0,name=vessel.agent"));
  EXPECT_TRUE(has_pair(a, "-chardev", "socket,id=qmp,fd=4"));
  // No virtio-fs: no need for shared memory.
  EXPECT_FALSE(contains(a, "memory-backend-memfd"));
}

TEST(QemuArgs, ARestoredVmWaitsForItsStateToBeNamedOverQmp) {
  // The state's format is a capability set over QMP before the load, so
  // the file goes over QMP then (migrate-incoming), not on the command line.
  QemuLaunch l{.port_fds = {3}, .qmp_fd = 4, .incoming = true};
  auto a = qemu_command_line(config(), l);
  EXPECT_TRUE(has_pair(a, "-incoming", "defer"));
  EXPECT_FALSE(contains(a, "fd:"));
  QemuLaunch boot{.port_fds = {3}, .qmp_fd = 4};
  EXPECT_FALSE(contains(qemu_command_line(config(), boot), "-incoming"));
}

TEST(QemuArgs, VirtioFsNeedsSharedMemory) {
  VmConfig c = config();
  c.shared_dirs = {{"rootfs", "/srv/root"}};
  QemuLaunch l{.port_fds = {3}, .qmp_fd = 4, .fs_sockets = {"/run/x/fs0.sock"}};
  auto a = qemu_command_line(c, l);
  EXPECT_TRUE(has_pair(a, "-object", "memory-backend-memfd,id=mem,size=256M,share=on"));
  EXPECT_TRUE(has_pair(a, "-numa", "node,memdev=mem"));
  EXPECT_TRUE(has_pair(a, "-chardev", "socket,id=fs0,path=/run/x/fs0.sock"));
  EXPECT_TRUE(
      has_pair(a, "-device", "vhost-user-fs-device,chardev=fs0,tag=rootfs,bus=virtio-mmio-bus.6"));
}

// The shares' devices come after every other device, so that the others
// take the same transports in a template without them (shares_late).
TEST(QemuArgs, SharesAreTheLastDevices) {
  VmConfig c = config();
  c.shared_dirs = {{"rootfs", "/srv/root"}, {"m0", "/srv/m0"}};
  c.disks = {{.path = "/d", .serial = "root"}};
  c.balloon = true;
  QemuLaunch l{.port_fds = {3}, .qmp_fd = 4, .fs_sockets = {"/s0", "/s1"}};
  auto a = qemu_command_line(c, l);
  std::vector<std::string> devices;
  for (size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == "-device" && a[i + 1].rfind("virtserialport", 0) != 0) devices.push_back(a[i + 1]);
  ASSERT_EQ(devices.size(), 5u);
  // Each on its transport, from the highest down; not 3, whose interrupt is
  // the RTC's.
  EXPECT_EQ(devices[0], "virtio-blk-device,drive=disk0,serial=root,bus=virtio-mmio-bus.7");
  EXPECT_EQ(devices[1], "virtio-serial-device,max_ports=2,bus=virtio-mmio-bus.6");
  EXPECT_EQ(devices[2], "virtio-balloon-device,free-page-reporting=on,bus=virtio-mmio-bus.5");
  EXPECT_EQ(devices[3], "vhost-user-fs-device,chardev=fs0,tag=rootfs,bus=virtio-mmio-bus.4");
  EXPECT_EQ(devices[4], "vhost-user-fs-device,chardev=fs1,tag=m0,bus=virtio-mmio-bus.2");
  EXPECT_FALSE(contains(a, "virtio_mmio.device="));
}

// A template for VMs with shares: no shares' devices, their transports named
// on the kernel command line (microvm gives the -device options transports
// 7, 6, ... at 0xfeb00000 + 512 i, interrupt 5 + i), shared RAM all the same.
TEST(QemuArgs, ATemplateNamesItsSharesTransportsInsteadOfHavingThem) {
  VmConfig c = config();
  c.shared_dirs = {{"rootfs", "/srv/root"}, {"m0", "/srv/m0"}};
  c.disks = {{.path = "/d", .serial = "root"}};
  c.balloon = true;
  c.shares_late = true;
  QemuLaunch l{.port_fds = {3}, .qmp_fd = 4};
  auto a = qemu_command_line(c, l);
  EXPECT_FALSE(contains(a, "vhost-user-fs-device"));
  EXPECT_TRUE(has_pair(a, "-object", "memory-backend-memfd,id=mem,size=256M,share=on"));
  auto append = std::find(a.begin(), a.end(), "-append");
  ASSERT_NE(append, a.end());
  // Disk, serial and balloon take 7, 6 and 5: the shares 4 and 2 (3 is on
  // the RTC's interrupt).
  EXPECT_NE(append[1].find(" virtio_mmio.device=512@0xfeb00800:9"
                           " virtio_mmio.device=512@0xfeb00400:7"),
            std::string::npos)
      << append[1];
  // The VM restored from it has them there.
  c.shares_late = false;
  l.fs_sockets = {"/s0", "/s1"};
  a = qemu_command_line(c, l);
  EXPECT_TRUE(
      has_pair(a, "-device", "vhost-user-fs-device,chardev=fs0,tag=rootfs,bus=virtio-mmio-bus.4"));
  EXPECT_TRUE(
      has_pair(a, "-device", "vhost-user-fs-device,chardev=fs1,tag=m0,bus=virtio-mmio-bus.2"));
  // Too many devices for microvm's 7 usable transports: nothing can be named.
  c.shared_dirs.resize(5, {"m", "/srv/m"});
  EXPECT_EQ(late_share_args(c, l, machine_spec(c)), "");
  // A machine with ACPI has no such layout.
  c.shared_dirs.resize(1);
  c.acpi = true;
  EXPECT_EQ(late_share_args(c, l, machine_spec(c)), "");
}

// Confined, the guest RAM that virtiofsd maps is a file QEMU makes in its
// jail's huge-page tmpfs, mapped 2 MiB-aligned so that the pages can be huge.
TEST(QemuArgs, SharedRamInADirectoryIsAFileAlignedForHugePages) {
  VmConfig c = config();
  c.shared_dirs = {{"rootfs", "/srv/root"}};
  QemuLaunch l{.port_fds = {3}, .qmp_fd = 4, .fs_sockets = {"/run/x/fs0.sock"}, .ram_dir = "/ram"};
  auto a = qemu_command_line(c, l);
  EXPECT_TRUE(has_pair(a, "-object",
                       "memory-backend-file,id=mem,size=256M,mem-path=/ram,share=on,align=2M"));
  EXPECT_FALSE(contains(a, "memory-backend-memfd"));
  EXPECT_TRUE(has_pair(a, "-numa", "node,memdev=mem"));
  // Without shared directories the directory is not used: anonymous RAM.
  c.shared_dirs.clear();
  l.fs_sockets.clear();
  a = qemu_command_line(c, l);
  for (const auto& arg : a)
    EXPECT_EQ(arg.find("memory-backend"), std::string::npos) << arg;
}

TEST(QemuArgs, DisksAreVirtioBlkNamedBySerial) {
  VmConfig c = config();
  c.disks = {{"/img/lower,1.ext4", "lower", true}, {"/run/upper.img", "upper", false}};
  auto a = qemu_command_line(c, {});
  EXPECT_TRUE(has_pair(a, "-drive",
                       "if=none,id=disk0,file=/img/lower,,1.ext4,format=raw,"
                       "discard=unmap,readonly=on"));
  EXPECT_TRUE(
      has_pair(a, "-device", "virtio-blk-device,drive=disk0,serial=lower,bus=virtio-mmio-bus.7"));
  EXPECT_TRUE(contains(a, "file=/run/upper.img,format=raw,discard=unmap,readonly=off"));
  EXPECT_TRUE(
      has_pair(a, "-device", "virtio-blk-device,drive=disk1,serial=upper,bus=virtio-mmio-bus.6"));
}

// A root_disk container's disk: a qcow2 read-write over its image's base,
// read-only, named on the command line (by path or by fd set).
TEST(QemuArgs, ADiskWithABackingIsAQcow2OverARawNode) {
  VmConfig c = config();
  c.disks = {{"/c/root.qcow2", "vessel-root", false, "/s/base,1.ext4"}};
  auto a = qemu_command_line(c, {});
  EXPECT_TRUE(has_pair(a, "-blockdev",
                       "driver=raw,node-name=disk0-base,read-only=on,file.driver=file,"
                       "file.filename=/s/base,,1.ext4"));
  EXPECT_TRUE(has_pair(a, "-blockdev",
                       "driver=qcow2,node-name=disk0,discard=unmap,file.driver=file,"
                       "file.filename=/c/root.qcow2,file.discard=unmap,backing=disk0-base"));
  EXPECT_TRUE(has_pair(a, "-device",
                       "virtio-blk-device,drive=disk0,serial=vessel-root,bus=virtio-mmio-bus.7"));
  EXPECT_FALSE(contains(a, "-drive"));
  QemuLaunch l{.port_fds = {3}, .qmp_fd = 4};
  l.disk_fds = {{7, 8}};
  l.backing_fds = {{9}};
  a = qemu_command_line(c, l);
  EXPECT_TRUE(has_pair(a, "-add-fd", "fd=7,set=1"));
  EXPECT_TRUE(has_pair(a, "-add-fd", "fd=8,set=1"));
  EXPECT_TRUE(has_pair(a, "-add-fd", "fd=9,set=101"));
  EXPECT_TRUE(contains(a, "file.filename=/dev/fdset/101"));
  EXPECT_TRUE(contains(a, "file.filename=/dev/fdset/1,"));
}

TEST(QemuArgs, NicsAreVirtioNetOnInheritedTaps) {
  VmConfig c = config();
  c.nics = {{11, "02:42:0a:7b:00:02"}, {12, "02:42:0a:7c:00:02"}};
  QemuLaunch l{.port_fds = {3}, .qmp_fd = 4, .tap_fds = {5, 6}};
  auto a = qemu_command_line(c, l);
  // The fd numbers QEMU sees, not the caller's.
  EXPECT_TRUE(has_pair(a, "-netdev", "tap,id=net0,fd=5,vhost=off"));
  EXPECT_TRUE(has_pair(
      a, "-device", "virtio-net-device,netdev=net0,mac=02:42:0a:7b:00:02,bus=virtio-mmio-bus.7"));
  EXPECT_TRUE(has_pair(a, "-netdev", "tap,id=net1,fd=6,vhost=off"));
  EXPECT_TRUE(has_pair(
      a, "-device", "virtio-net-device,netdev=net1,mac=02:42:0a:7c:00:02,bus=virtio-mmio-bus.6"));
  EXPECT_FALSE(contains(a, "fd=11"));
  l.vhost_net = true;
  a = qemu_command_line(c, l);
  EXPECT_TRUE(has_pair(a, "-netdev", "tap,id=net0,fd=5,vhost=on"));
  // No nics: no network device at all (-nodefaults keeps QEMU's own away).
  a = qemu_command_line(config(), QemuLaunch{.port_fds = {3}, .qmp_fd = 4});
  EXPECT_FALSE(contains(a, "-netdev"));
  EXPECT_FALSE(contains(a, "virtio-net"));
}

TEST(QemuArgs, VhostNetOnlyWithKvmAndTheDevice) {
  EXPECT_TRUE(use_vhost_net(Accel::kKvm, true));
  EXPECT_FALSE(use_vhost_net(Accel::kKvm, false));
  EXPECT_FALSE(use_vhost_net(Accel::kTcg, true));  // vhost needs KVM's ioeventfd/irqfd
  EXPECT_FALSE(use_vhost_net(Accel::kTcg, false));
}

TEST(QemuArgs, OnlyAVmRestoredUnderTcgHasItsRamInSmallPages) {
  VmConfig c = config();
  c.accel = Accel::kTcg;
  EXPECT_FALSE(guest_ram_in_small_pages(c));  // booted
  c.incoming_fd = 9;
  EXPECT_TRUE(guest_ram_in_small_pages(c));
  c.accel = Accel::kKvm;
  EXPECT_FALSE(guest_ram_in_small_pages(c));
}

TEST(QemuArgs, MacAddressesAreCheckedBeforeTheyReachTheCommandLine) {
  EXPECT_TRUE(valid_mac("02:42:0a:7b:00:02"));
  EXPECT_TRUE(valid_mac("02:42:0A:7B:FF:fe"));
  EXPECT_FALSE(valid_mac(""));
  EXPECT_FALSE(valid_mac("02:42:0a:7b:00"));
  EXPECT_FALSE(valid_mac("02:42:0a:7b:00:02:"));
  EXPECT_FALSE(valid_mac("02-42-0a-7b-00-02"));
  EXPECT_FALSE(valid_mac("02:42:0a:7b:00:0g"));
  EXPECT_FALSE(valid_mac("02:42:0a:7b:0,:02"));  // a comma would start a new QEMU option
  EXPECT_FALSE(valid_mac("2:42:0a:7b:00:002"));
}

TEST(QemuArgs, TcgUsesAConservativeCpuModel) {
  auto a = qemu_command_line(config(), {});
  EXPECT_TRUE(has_pair(a, "-cpu", "Nehalem"));
}

TEST(QemuArgs, TcgGetsTimerHintsAndDelayLoopValue) {
  VmConfig c = config();
  c.host_tsc_khz = 2596136;
  auto a = qemu_command_line(c, {});
  auto append = std::find(a.begin(), a.end(), "-append");
  ASSERT_NE(append, a.end());
  EXPECT_NE((append + 1)->find("lpj=25961360"), std::string::npos);
  EXPECT_NE((append + 1)->find("tsc=reliable"), std::string::npos);
  // Without it a slow boot fails to calibrate the TSC and the guest's tick
  // never stops.
  EXPECT_NE((append + 1)->find("tsc_early_khz=2596136"), std::string::npos);
  // QEMU's APIC timer rate, so the kernel does not spend ~0.25 s measuring it.
  EXPECT_NE((append + 1)->find("lapic_timer_khz=1000000"), std::string::npos);
  c.accel = Accel::kKvm;
  a = qemu_command_line(c, {});
  append = std::find(a.begin(), a.end(), "-append");
  EXPECT_EQ((append + 1)->find("lpj="), std::string::npos);
  EXPECT_EQ((append + 1)->find("tsc_early_khz="), std::string::npos);
  EXPECT_EQ((append + 1)->find("lapic_timer_khz="), std::string::npos);
}

TEST(QemuArgs, TcgGuestZeroesPagesItHandsOut) {
  // Stale translated code after virtiofsd writes guest RAM (machine_x86_64.cc).
  auto a = qemu_command_line(config(), {});
  auto append = std::find(a.begin(), a.end(), "-append");
  ASSERT_NE(append, a.end());
  EXPECT_NE((append + 1)->find("init_on_alloc=1"), std::string::npos);
  VmConfig c = config();
  c.accel = Accel::kKvm;
  a = qemu_command_line(c, {});
  append = std::find(a.begin(), a.end(), "-append");
  EXPECT_EQ((append + 1)->find("init_on_alloc"), std::string::npos);
}

TEST(QemuArgs, KvmUsesHostCpuAndQuietUnlessDebug) {
  VmConfig c = config();
  c.accel = Accel::kKvm;
  auto a = qemu_command_line(c, {});
  EXPECT_TRUE(has_pair(a, "-accel", "kvm"));
  EXPECT_FALSE(contains(a, "tb-size"));
  EXPECT_TRUE(has_pair(a, "-cpu", "host"));
  auto append = std::find(a.begin(), a.end(), "-append");
  ASSERT_NE(append, a.end());
  EXPECT_NE((append + 1)->find("quiet"), std::string::npos);
  c.debug = true;
  a = qemu_command_line(c, {});
  append = std::find(a.begin(), a.end(), "-append");
  EXPECT_EQ((append + 1)->find("quiet"), std::string::npos);
}

TEST(QemuArgs, OnlyAKvmVmWithoutSharesHasALeanBuild) {
  VmConfig c = config();
  EXPECT_EQ(machine_spec(c).lean_binary, "");  // TCG: the microvm build has none
  c.accel = Accel::kKvm;
  EXPECT_EQ(machine_spec(c).binary, "qemu-system-x86_64");
  EXPECT_EQ(machine_spec(c).lean_binary, "qemu-system-x86_64-microvm");
  c.shared_dirs = {SharedDir{"root", "/r"}};  // vhost-user-fs-device: full build only
  EXPECT_EQ(machine_spec(c).lean_binary, "");
}

}  // namespace
}  // namespace vessel::vmm
