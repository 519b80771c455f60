// Docker's --ulimit syntax, turned into the rlimits a Spawn carries.
#pragma once

#include <string_view>

#include "base/error.h"
#include "protocol/protocol.h"

namespace vessel::agent {

/// Parses "NAME=SOFT[:HARD]" as `docker run --ulimit` does (go-units
/// ParseUlimit): NAME is one of protocol::rlimit_name()'s ("nofile",
/// "nproc", ...), the values are decimal, -1 means unlimited, and HARD
/// defaults to SOFT. kInvalidArgument, with a message naming the argument,
/// for anything else and for a soft limit above the hard one.
Result<protocol::Rlimit> parse_ulimit(std::string_view spec);

}  // namespace vessel::agent
