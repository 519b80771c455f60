#include "image/platform.h"

#include <sys/utsname.h>

#include "image/text.h"

namespace vessel::image {
namespace {

constexpr size_t kMaxPartLength = 64;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool valid_part(std::string_view s) {
  if (s.empty() || s.size() > kMaxPartLength) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// The numeric version of a "vN" variant, or -1.
int variant_number(std::string_view v) {
  if (v.size() < 2 || v.size() > 3 || v.front() != 'v') return -1;
  int n = 0;
  for (char c : v.substr(1)) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

std::string Platform::str() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Platform normalize(Platform p) {
  p.os = lower(p.os);
  p.architecture = lower(p.architecture);
  p.variant = lower(p.variant);
  if (p.os == "macos") p.os = "darwin";

  const std::string& a = p.architecture;
  std::string& v = p.variant;
  if (a == "i386" || a == "i686" || a == "386") {
    p.architecture = "386";
    v.clear();
  } else if (a == "x86_64" || a == "x86-64" || a == "amd64") {
    p.architecture = "amd64";
    if (v == "v1") v.clear();  // the baseline; images never label it
  } else if (a == "aarch64" || a == "arm64") {
    p.architecture = "arm64";
    if (v.empty() || v == "8" || v == "v8.0") v = "v8";
  } else if (a == "armhf") {
    p.architecture = "arm";
    v = "v7";
  } else if (a == "armel") {
    p.architecture = "arm";
    v = "v6";
  } else if (a == "arm") {
    if (v.empty()) v = "v7";
  }
  if (all_digits(v)) v = "v" + v;
  return p;
}

Result<Platform> parse_platform(std::string_view s) {
  auto bad = [&](std::string_view why) {
    return Error(ErrorCode::kInvalidArgument,
                 "invalid platform '" + detail::printable(s) + "': " + std::string(why));
  };
  Platform p;
  std::string_view parts[3];
  size_t n = 0, start = 0;
  while (true) {
    const size_t slash = s.find('/', start);
    if (n == 3) return bad("expected os/architecture[/variant]");
    parts[n++] = s.substr(start, slash - start);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (n < 2) return bad("expected os/architecture[/variant]");
  for (size_t i = 0; i < n; ++i)
    if (!valid_part(parts[i]))
      return bad("invalid component '" + detail::printable(parts[i]) + "'");
  p.os = parts[0];
  p.architecture = parts[1];
  if (n == 3) p.variant = parts[2];
  return normalize(std::move(p));
}

Platform host_platform() {
  Platform p{.os = "linux"};
  struct utsname u {};
  if (uname(&u) == 0) p.architecture = u.machine;
  // uname(2) reports "armv7l", "armv6l" on 32-bit ARM; the variant is in
  // the name.
  if (p.architecture.starts_with("armv") && p.architecture.size() >= 5) {
    p.variant = "v" + p.architecture.substr(4, 1);
    p.architecture = "arm";
  }
  return normalize(std::move(p));
}

std::vector<Platform> compatible_platforms(const Platform& wanted) {
  const Platform w = normalize(wanted);
  std::vector<Platform> out{w};
  const int n = variant_number(w.variant);
  // containerd's platformVector, minus the cross-architecture entries.
  if (w.architecture == "amd64" && n > 1) {
    for (int i = n - 1; i >= 2; --i)
      out.push_back({w.os, w.architecture, "v" + std::to_string(i)});
    out.push_back({w.os, w.architecture, ""});  // v1
  } else if (w.architecture == "arm" && n > 5) {
    for (int i = n - 1; i >= 5; --i)
      out.push_back({w.os, w.architecture, "v" + std::to_string(i)});
  }
  return out;
}

bool platform_matches(const Platform& wanted, const Platform& candidate) {
  const Platform w = normalize(wanted), c = normalize(candidate);
  if (w.os != c.os || w.architecture != c.architecture) return false;
  if (w.variant.empty() || w.variant == c.variant) return true;
  for (const Platform& p : compatible_platforms(w))
    if (p.variant == c.variant) return true;
  return false;
}

}  // namespace vessel::image
