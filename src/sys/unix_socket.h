// Unix stream sockets by path.
#pragma once

#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace vessel::sys {

/// A listening socket bound at `path` (a stale file there is replaced);
/// close-on-exec, blocking unless `nonblocking`.
Result<UniqueFd> listen_unix(const std::string& path, int backlog, bool nonblocking = false);
/// A socket connected to `path`; close-on-exec, blocking.
Result<UniqueFd> connect_unix(const std::string& path);

}  // namespace vessel::sys
