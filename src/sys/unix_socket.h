// Unix stream sockets by path.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"
#include "base/unique_fd.h"

namespace vessel::sys {

/// A listening socket bound at `path` (a stale file there is replaced);
/// close-on-exec, blocking unless `nonblocking`.
Result<UniqueFd> listen_unix(const std::string& path, int backlog, bool nonblocking = false);
/// A socket connected to `path`; close-on-exec, blocking.
Result<UniqueFd> connect_unix(const std::string& path);
/// Writes all of `data` (non-empty) to the connected blocking socket
/// `sock`, passing `fd` along with its first bytes (SCM_RIGHTS): the
/// receiver gets a copy of `fd` with the message those bytes start.
Status send_with_fd(int sock, std::string_view data, int fd);

}  // namespace vessel::sys
