#include "agent/ulimit.h"

#include <optional>
#include <string>

#include "base/strings.h"

namespace vessel::agent {
namespace {

/// A limit value: decimal, or -1 for unlimited.
std::optional<uint64_t> parse_limit(std::string_view s) {
  if (s == "-1") return protocol::kRlimInfinity;
  auto v = parse_u64(s);
  // RLIM_INFINITY itself is spelled -1, so that a number never means it.
  if (!v || *v == protocol::kRlimInfinity) return std::nullopt;
  return v;
}

std::string shown(uint64_t v) {
  return v == protocol::kRlimInfinity ? "-1" : std::to_string(v);
}

}  // namespace

Result<protocol::Rlimit> parse_ulimit(std::string_view spec) {
  auto invalid = [&](const std::string& why) -> Error {
    return Error(ErrorCode::kInvalidArgument, "invalid ulimit '" + std::string(spec) + "': " + why);
  };
  size_t eq = spec.find('=');
  if (eq == std::string_view::npos) return invalid("expected NAME=SOFT[:HARD]");
  std::string_view name = spec.substr(0, eq), values = spec.substr(eq + 1);
  auto resource = protocol::rlimit_resource(name);
  if (!resource) return invalid("unknown type '" + std::string(name) + "'");
  size_t colon = values.find(':');
  std::string_view soft_text = values.substr(0, colon);
  std::string_view hard_text =
      colon == std::string_view::npos ? soft_text : values.substr(colon + 1);
  if (hard_text.find(':') != std::string_view::npos) {
    return invalid("too many values, expected SOFT[:HARD]");
  }
  auto soft = parse_limit(soft_text), hard = parse_limit(hard_text);
  if (!soft || !hard) return invalid("limits are decimal numbers, or -1 for unlimited");
  if (*soft > *hard) {
    return invalid("the soft limit is above the hard limit (" + shown(*soft) + " > " +
                   shown(*hard) + ")");
  }
  return protocol::Rlimit{*resource, *soft, *hard};
}

}  // namespace vessel::agent
