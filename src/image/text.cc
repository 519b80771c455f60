#include "image/text.h"

namespace vessel::image::detail {

std::string printable(std::string_view s, size_t max) {
  static const char* const kHex = "0123456789abcdef";
  std::string out;
  const size_t n = s.size() < max ? s.size() : max;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > max) out += "…";
  return out;
}

}  // namespace vessel::image::detail
