#include "vmm/qemu_jail.h"

#include <unistd.h>

#include <algorithm>

#include <gtest/gtest.h>

#include "sys/fs.h"
#include "vmm/qemu_args.h"

namespace vessel::vmm {
namespace {

TEST(QemuJail, ElfInterpreterOfADynamicBinary) {
  auto head = sys::read_file("/bin/sh");
  ASSERT_TRUE(head.ok());
  auto interp = elf_interpreter(*head);
  ASSERT_TRUE(interp.has_value());
  EXPECT_EQ(interp->front(), '/');
  EXPECT_NE(interp->find("ld-linux"), std::string::npos) << *interp;
}

TEST(QemuJail, ElfInterpreterRejectsScriptsTruncationAndLies) {
  EXPECT_FALSE(elf_interpreter("#!/bin/sh\nexec qemu\n").has_value());
  EXPECT_FALSE(elf_interpreter("").has_value());
  auto head = sys::read_file("/bin/sh");
  ASSERT_TRUE(head.ok());
  // Cut anywhere: never read past the end, never a wrong answer.
  for (size_t n : {16ul, 63ul, 64ul, 100ul, 200ul, 568ul})
    EXPECT_FALSE(elf_interpreter(head->substr(0, n)).has_value()) << n;
  // A program header table said to lie far beyond the data.
  std::string bad = head->substr(0, 4096);
  bad[0x20] = '\xff';
  bad[0x21] = '\xff';
  bad[0x27] = '\x7f';
  EXPECT_FALSE(elf_interpreter(bad).has_value());
}

TEST(QemuJail, ParsesLoaderListing) {
  auto libs = parse_ld_list(
      "\tlinux-vdso.so.1 (0x00007ffc5c1f2000)\n"
      "\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f0f1c000000)\n"
      "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0f1be00000)\n"
      "\t/lib64/ld-linux-x86-64.so.2 (0x00007f0f1c400000)\n");
  ASSERT_TRUE(libs.ok());
  EXPECT_EQ(*libs, (std::vector<std::string>{"/lib/x86_64-linux-gnu/libz.so.1",
                                             "/lib/x86_64-linux-gnu/libc.so.6",
                                             "/lib64/ld-linux-x86-64.so.2"}));
  auto missing = parse_ld_list("\tlibfoo.so.3 => not found\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("libfoo.so.3"), std::string::npos);
}

TEST(QemuJail, ConfinedCommandLineUsesFdsAndTheSandbox) {
  VmConfig c;
  c.kernel = "/k";
  c.initrd = "/i";
  c.disks = {{"/a,b.img", "lower", true}, {"/up.img", "upper", false}};
  c.shared_dirs = {{"rootfs", "/r"}};
  QemuLaunch l;
  l.sandbox = true;
  l.kernel_path = kJailKernel;
  l.initrd_path = kJailInitrd;
  l.data_dir = "/usr/share/qemu";
  l.disk_fds = {{5}, {6, 7}};
  l.fs_fds = {8};
  auto a = qemu_command_line(c, l);
  auto has = [&](const std::string& x) { return std::find(a.begin(), a.end(), x) != a.end(); };
  EXPECT_TRUE(has(kQemuSandbox));
  EXPECT_TRUE(has("/vm/kernel"));
  EXPECT_TRUE(has("/vm/initrd"));
  EXPECT_FALSE(has("/k"));
  EXPECT_TRUE(has("fd=5,set=1"));
  EXPECT_TRUE(has("fd=6,set=2"));
  EXPECT_TRUE(has("fd=7,set=2"));
  EXPECT_TRUE(has("if=none,id=disk0,file=/dev/fdset/1,format=raw,discard=unmap,readonly=on"));
  EXPECT_TRUE(has("if=none,id=disk1,file=/dev/fdset/2,format=raw,discard=unmap,readonly=off"));
  EXPECT_TRUE(has("socket,id=fs0,fd=8"));
  for (const auto& arg : a)
    EXPECT_EQ(arg.find("a,b.img"), std::string::npos) << arg;
}

TEST(QemuJail, TheJailHoldsTheLoaderLibrariesFirmwareAndTheKernel) {
  const char* qemu = "/usr/bin/qemu-system-x86_64";
  if (::access(qemu, X_OK) != 0) GTEST_SKIP() << "needs " << qemu;
  auto files = find_qemu_files(qemu);
  ASSERT_TRUE(files.ok()) << files.error().to_string();
  EXPECT_GT(files->libraries.size(), 5u);
  EXPECT_FALSE(files->data_dir.empty());
  VmConfig c;
  c.kernel = "/bin/sh";
  c.initrd = "/bin/sh";
  c.confine = {true, confined_id(1234), confined_id(1234), {}};
  auto j = qemu_jail(*files, c, "/tmp/x");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->uid, kConfinedIdBase + 1234);
  auto bound = [&](const std::string& target) {
    return std::any_of(j->binds.begin(), j->binds.end(),
                       [&](const sys::JailBind& b) { return b.target == target; });
  };
  EXPECT_TRUE(bound(kJailKernel));
  EXPECT_TRUE(bound(kJailInitrd));
  EXPECT_TRUE(bound("/dev/null"));
  EXPECT_TRUE(bound(files->binary));
  EXPECT_FALSE(bound("/dev/kvm"));  // TCG
  EXPECT_TRUE(j->nodes.empty());
  // Whatever the jail holds is planned without error.
  auto plan = sys::plan_jail(*j);
  EXPECT_TRUE(plan.ok()) << plan.error().to_string();
  // Under KVM: a /dev/kvm node of the jail's own (not the host's, whose
  // owner and mode vary), with the host node's number.
  struct stat kvm;
  if (::stat("/dev/kvm", &kvm) == 0) {
    c.accel = Accel::kKvm;
    auto k = qemu_jail(*files, c, "/tmp/x");
    ASSERT_TRUE(k.ok()) << k.error().to_string();
    ASSERT_EQ(k->nodes.size(), 1u);
    EXPECT_EQ(k->nodes[0].target, "/dev/kvm");
    EXPECT_EQ(k->nodes[0].rdev, kvm.st_rdev);
    EXPECT_TRUE(sys::plan_jail(*k).ok());
  }
}

TEST(QemuJail, TheCacheGivesWhatTheLoaderFoundAndSurvivesGarbage) {
  const char* qemu = "/usr/bin/qemu-system-x86_64";
  if (::access(qemu, X_OK) != 0) GTEST_SKIP() << "needs " << qemu;
  auto dir = sys::make_temp_dir("/tmp", "vessel-qemu-cache-");
  ASSERT_TRUE(dir.ok());
  auto found = find_qemu_files(qemu);
  auto first = cached_qemu_files(qemu, *dir);   // found, written
  auto second = cached_qemu_files(qemu, *dir);  // read back
  ASSERT_TRUE(found.ok() && first.ok() && second.ok());
  for (const auto* f : {&*first, &*second}) {
    EXPECT_EQ(f->binary, found->binary);
    EXPECT_EQ(f->libraries, found->libraries);
    EXPECT_EQ(f->data_dir, found->data_dir);
    EXPECT_EQ(f->module_dir, found->module_dir);
  }
  auto names = sys::list_dir(*dir);
  ASSERT_TRUE(names.ok());
  ASSERT_EQ(names->size(), 1u);
  ASSERT_TRUE(sys::write_file_atomic(*dir + "/" + names->front(), "garbage\nlib\trelative").ok());
  auto third = cached_qemu_files(qemu, *dir);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->libraries, found->libraries);
  // A cache directory that does not exist yet is made (a state root that
  // has run only --rootfs containers has none).
  std::string fresh = *dir + "/not-yet";
  ASSERT_TRUE(cached_qemu_files(qemu, fresh).ok());
  auto kept = sys::list_dir(fresh);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->size(), 1u);
  (void)sys::remove_tree(*dir);
}

TEST(QemuJail, AScriptCannotBeConfined) {
  auto files = find_qemu_files("/bin/true");  // dynamic: fine
  EXPECT_TRUE(files.ok());
  auto script = find_qemu_files("/usr/bin/ldd");  // a bash script
  if (::access("/usr/bin/ldd", R_OK) != 0) GTEST_SKIP();
  ASSERT_FALSE(script.ok());
  EXPECT_NE(script.error().message().find("VESSEL_CONFINE=0"), std::string::npos);
}

}  // namespace
}  // namespace vessel::vmm
