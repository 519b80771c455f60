// VM templates: a container's VM booted once to where vessel-init waits for
// its Setup, saved (QEMU's migration state, to a file), and restored by
// later containers of the same shape instead of booting their own kernel
// (docs/architecture.md, "VM templates").
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "base/unique_fd.h"
#include "vmm/vmm.h"

namespace vessel::runtime {

/// How many templates a state root keeps (~30 MiB each), and how long one
/// no start has used is kept: the shapes of an older QEMU, kernel or
/// initramfs are never used again.
inline constexpr size_t kKeptTemplates = 8;
inline constexpr std::chrono::seconds kTemplateMaxUnused{14 * 24 * 3600};
/// How long a template's VM may take to say hello (a boot takes ~0.4 s
/// under TCG); a template not made then is not tried again for its shape.
inline constexpr std::chrono::seconds kTemplateBootTimeout{20};

/// Removes from `dir` the templates (with their marks and locks) unused for
/// longer than `max_unused`, then all but the `keep` most recently used (a
/// use touches a template's mtime), and templates half-written by a maker
/// that died over an hour ago. Done before a template is made.
void prune_templates(const std::string& dir, size_t keep, std::chrono::seconds max_unused);

/// Where a state root keeps its templates: <state_root>/cache/templates.
/// "" (no templates) without a state root, or with VESSEL_TEMPLATES=0.
std::string templates_dir(const std::string& state_root);

/// A saved VM state to start a VM from (VmConfig::incoming_fd).
struct VmTemplate {
  UniqueFd state;    // open for reading; empty: none, boot
  std::string path;  // the file, to remove if it fails to load
};

/// The template for VMs of `config` (whose disks are each a qcow2 over a
/// base, Disk::backing: vmm::state_key()), in `dir`. There is one: it is
/// opened. There is none, but a VM of this shape was booted from this state
/// root before (a mark in `dir`): it is made now, by booting a VM of
/// `config` on empty disks over the same bases (and `config`'s taps, with
/// the template's MACs: protocol::template_mac; without its shares' devices,
/// VmConfig::shares_late) until the guest's Hello and saving it, which
/// costs that start one boot (~0.5 s under TCG); for a shape with shares
/// only if its QEMU can restore them (vmm::restores_with_shares(), asked
/// once: a shape it cannot is marked to boot). Else the shape is marked and nothing is returned, so
/// that a shape used once never pays for a template. Also nothing when
/// another process is making it. `work_dir` (created, then removed) holds
/// the template VM's files. Failures are logged and give nothing: the
/// caller boots.
/// A template QEMU could not load (a damaged file; QEMU changed in place):
/// removed, and its shape marked to boot from now on (a new template would
/// most likely fail the same way, and each costs a start a boot).
void drop_template(const VmTemplate& t);

VmTemplate open_template(const vmm::VmConfig& config, const std::string& dir,
                         const std::string& work_dir, std::chrono::seconds boot_timeout);

}  // namespace vessel::runtime
