// Tap devices for VM NICs.
#pragma once

#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace vessel::net {

/// Creates tap `name` (at most 15 bytes) with IFF_TAP | IFF_NO_PI |
/// IFF_VNET_HDR, not persistent: it disappears when the last fd on it
/// closes, so a dead monitor and its QEMU leave no tap behind. The fd is
/// O_CLOEXEC; pass it to QEMU explicitly.
Result<UniqueFd> open_tap(const std::string& name);

}  // namespace vessel::net
