// Internal helpers for error messages about untrusted text (not installed,
// not part of the layer's API).
#pragma once

#include <string>
#include <string_view>

namespace vessel::image::detail {

/// `s` made safe to put in a message: bytes outside printable ASCII become
/// "\xNN", and anything past `max` bytes becomes "…". Untrusted input can
/// hold control characters that would garble a terminal or a log line.
std::string printable(std::string_view s, size_t max = 200);

/// True if `s` contains a NUL byte, which a later execve() or open() would
/// silently truncate at.
inline bool has_nul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

}  // namespace vessel::image::detail
