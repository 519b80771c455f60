// What a confined QEMU needs in its jail (sys/jail.h): the files it opens
// by path after exec (its dynamic loader and libraries, its modules, its
// firmware, the guest kernel and initramfs) and device nodes. Everything
// else it uses (disks, taps, sockets, the console log) it is given as
// file descriptors, so the jail shows none of the host's files besides
// these, all read-only.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "sys/jail.h"
#include "vmm/vmm.h"

namespace vessel::vmm {

/// Where the guest kernel and initramfs appear inside the jail.
inline constexpr const char* kJailKernel = "/vm/kernel";
inline constexpr const char* kJailInitrd = "/vm/initrd";
/// A VM that shares host directories (virtio-fs) has its guest RAM in a
/// file QEMU creates here: a tmpfs of the jail's own with huge pages.
inline constexpr const char* kJailRamDir = "/ram";

/// The ELF program interpreter (PT_INTERP) named in the first bytes of an
/// executable, e.g. "/lib64/ld-linux-x86-64.so.2"; nullopt for a static
/// binary or something that is not a 64-bit little-endian ELF file (a
/// script). Bounds: every offset is checked against `head`.
std::optional<std::string> elf_interpreter(std::string_view head);

/// The libraries in the output of `ld.so --list BINARY` (absolute paths, in
/// order, the loader included). kNotFound names a library that is missing.
Result<std::vector<std::string>> parse_ld_list(std::string_view text);

/// Host files a QEMU binary loads by path.
struct QemuFiles {
  std::string binary;                  // resolved
  std::vector<std::string> libraries;  // loader and libraries, as the loader names them
  std::string data_dir;                // firmware (passed with -L)
  std::string module_dir;              // "" when the build has no modules
};

/// Finds them for `qemu_binary` (runs its loader with --list). Fails for
/// a binary that is not a dynamically linked ELF executable (a wrapper
/// script cannot be confined).
Result<QemuFiles> find_qemu_files(const std::string& qemu_binary);

/// The firmware and data directory of the QEMU build `qemu_binary` (a link
/// followed) belongs to: <prefix>/share/qemu beside its bin/, else
/// /usr/share/qemu. Debian's QEMU looks only in /usr/share/qemu unless told
/// (-L): a QEMU unpacked elsewhere (scripts/install-backports-qemu.sh) would
/// load another version's firmware.
std::string qemu_data_dir(const std::string& qemu_binary);

/// The file `name` beside the real file of `qemu_binary` (a link followed):
/// another program of the same QEMU build, such as its lean binary
/// (MachineSpec::lean_binary). Whether it exists is the caller's question.
std::string qemu_sibling(const std::string& qemu_binary, const std::string& name);

/// find_qemu_files, remembered in `cache_dir` ("" = not remembered): one
/// small file per QEMU build, keyed by the binary's path, size, mtime and
/// inode (a package upgrade replaces the binary), so a VM's start does not
/// run the loader twice each time.
Result<QemuFiles> cached_qemu_files(const std::string& qemu_binary, const std::string& cache_dir);

/// The jail for one VM: `files`, the kernel and initramfs of `config` at
/// kJailKernel and kJailInitrd, /dev/null, and /dev/kvm under KVM (its
/// group joins `config.confine`'s groups so the uid may open it);
/// mounted at `mountpoint` (an empty directory).
Result<sys::Jail> qemu_jail(const QemuFiles& files, const VmConfig& config,
                            const std::string& mountpoint);

/// The uid (and gid) of a confined QEMU: one per running VM, from a range
/// Vessel owns (kConfinedIdBase + the owner's pid: pids are unique among
/// live processes, so no two running VMs share one; see
/// docs/security.md).
inline constexpr uid_t kConfinedIdBase = 0x70000000;  // 1879048192
uid_t confined_id(pid_t owner);

}  // namespace vessel::vmm
