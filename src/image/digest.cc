#include "image/digest.h"

namespace vessel::image {
namespace {

std::string to_hex(const unsigned char* bytes, size_t n) {
  static const char* const kHex = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
  return out;
}

}  // namespace

Result<Digest> Digest::parse(std::string_view s) {
  auto bad = [&](const char* why) {
    return Error(ErrorCode::kInvalidArgument, "invalid digest '" + std::string(s) + "': " + why);
  };
  auto colon = s.find(':');
  if (colon == std::string_view::npos) return bad("expected 'sha256:<hex>'");
  std::string_view algorithm = s.substr(0, colon), hex = s.substr(colon + 1);
  if (algorithm != "sha256") return bad("unsupported algorithm");
  if (hex.size() != 64) return bad("expected 64 hex characters");
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return bad("not lowercase hex");
  return Digest(std::string(algorithm), std::string(hex));
}

Digest Digest::of(std::span<const uint8_t> data) {
  Sha256 h;
  h.update(data.data(), data.size());
  return h.finish();
}

Digest Digest::of(std::string_view data) {
  Sha256 h;
  h.update(data.data(), data.size());
  return h.finish();
}

void Sha256::update(const void* data, size_t size) {
  ctx_.update(data, size);
  bytes_ += size;
}

Digest Sha256::finish() {
  Sha256Bytes md = ctx_.finish();
  return *Digest::parse("sha256:" + to_hex(md.data(), md.size()));
}

}  // namespace vessel::image
