// Small string helpers used across layers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vessel {

/// Splits on every occurrence of `sep` (empty fields kept).
std::vector<std::string> split(std::string_view s, char sep);
/// Removes leading and trailing ASCII whitespace.
std::string_view trim(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
/// Parses a decimal unsigned integer with no sign, spaces or overflow.
std::optional<uint64_t> parse_u64(std::string_view s);
/// Parses a size such as "512m", "1g", "2048k", "1073741824" (bytes; suffixes
/// b, k, m, g, t are binary, case-insensitive, optional trailing 'b' or 'ib').
std::optional<uint64_t> parse_size(std::string_view s);

}  // namespace vessel
