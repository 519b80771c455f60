// The QEMU backend of Vmm: QEMU as a child process, controlled over QMP.
#pragma once

#include "vmm/vmm.h"

namespace vessel::vmm {

/// Path of the QEMU binary for this host ($VESSEL_QEMU overrides), or an
/// error saying which package to install.
Result<std::string> find_qemu(const VmConfig& config);

class QemuVmm final : public Vmm {
 public:
  Result<std::unique_ptr<VmInstance>> start(const VmConfig& config) override;
};

}  // namespace vessel::vmm
