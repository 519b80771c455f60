// The QEMU backend of Vmm: QEMU as a child process, controlled over QMP.
#pragma once

#include "vmm/vmm.h"

namespace vessel::vmm {

/// Path of the QEMU binary for this host and VM ($VESSEL_QEMU overrides):
/// the machine's lean build (MachineSpec::lean_binary) where it is installed
/// beside the full one, else the full one; or an error saying which package
/// to install.
Result<std::string> find_qemu(const VmConfig& config);

class QemuVmm final : public Vmm {
 public:
  Result<std::unique_ptr<VmInstance>> start(const VmConfig& config) override;
};

}  // namespace vessel::vmm
