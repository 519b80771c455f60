// One virtiofsd daemon serving one host directory.
#pragma once

#include <string>

#include "base/error.h"
#include "sys/process.h"

namespace vessel::vmm {

/// Path of Debian's virtiofsd ($VESSEL_VIRTIOFSD overrides).
std::string virtiofsd_path();

/// Starts virtiofsd for `dir`, listening on `socket_path`. The socket is
/// bound and listening before this returns (it is created here and handed to
/// the daemon with --fd), so QEMU can connect at once without a race.
/// `log_fd` receives the daemon's stderr. `keep_cache`: SharedDir::keep_cache.
Result<sys::Process> start_virtiofsd(const std::string& dir, const std::string& socket_path,
                                     int log_fd, bool keep_cache = false);

}  // namespace vessel::vmm
