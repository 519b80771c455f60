#include "net/address.h"

#include <algorithm>
#include <cstdio>

#include "base/sha256.h"

namespace vessel::net {
namespace {

// One decimal part of a dotted quad: 1-3 digits, no leading zero unless it
// is "0" itself (inet_aton would read "010" as octal 8; refusing it avoids
// the ambiguity), at most 255.
bool parse_octet(std::string_view s, uint32_t* out) {
  if (s.empty() || s.size() > 3) return false;
  if (s.size() > 1 && s[0] == '0') return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 255) return false;
  *out = v;
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

uint32_t mask_of(uint8_t prefix) {
  // A shift by 32 is undefined behaviour, so /0 is its own case.
  return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
}

}  // namespace

Result<Ipv4> Ipv4::parse(std::string_view text) {
  auto bad = [&] {
    return Error(ErrorCode::kInvalidArgument,
                 "invalid IPv4 address '" + std::string(text) + "' (expected A.B.C.D)");
  };
  uint32_t value = 0;
  std::string_view rest = text;
  for (int i = 0; i < 4; ++i) {
    size_t dot = rest.find('.');
    if ((i < 3) != (dot != std::string_view::npos)) return bad();
    std::string_view part = rest.substr(0, dot);
    uint32_t octet;
    if (!parse_octet(part, &octet)) return bad();
    value = value << 8 | octet;
    rest = i < 3 ? rest.substr(dot + 1) : std::string_view();
  }
  return Ipv4{value};
}

std::string Ipv4::to_string() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", value >> 24, (value >> 16) & 0xff,
                (value >> 8) & 0xff, value & 0xff);
  return buf;
}

Result<Ipv4Net> Ipv4Net::parse(std::string_view text, bool strict) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument, "invalid subnet '" + std::string(text) + "': " + why);
  };
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return bad("expected A.B.C.D/N");
  auto address = Ipv4::parse(text.substr(0, slash));
  if (!address) return bad("expected A.B.C.D/N");
  std::string_view len = text.substr(slash + 1);
  if (len.empty() || len.size() > 2 || (len.size() == 2 && len[0] == '0'))
    return bad("prefix length must be 0-32");
  uint32_t prefix = 0;
  for (char c : len) {
    if (c < '0' || c > '9') return bad("prefix length must be 0-32");
    prefix = prefix * 10 + static_cast<uint32_t>(c - '0');
  }
  if (prefix > 32) return bad("prefix length must be 0-32");
  Ipv4Net net{*address, static_cast<uint8_t>(prefix)};
  if (strict && net.network() != net.address)
    return bad("host bits are set (did you mean " + net.to_string() + "?)");
  return net;
}

uint32_t Ipv4Net::netmask() const {
  return mask_of(prefix);
}

Ipv4 Ipv4Net::network() const {
  return Ipv4{address.value & netmask()};
}

Ipv4 Ipv4Net::broadcast() const {
  return Ipv4{address.value | ~netmask()};
}

bool Ipv4Net::contains(Ipv4 a) const {
  return (a.value & netmask()) == network().value;
}

bool Ipv4Net::overlaps(const Ipv4Net& other) const {
  // Two CIDR blocks overlap exactly when the wider one contains the
  // narrower one's network address.
  uint32_t mask = mask_of(std::min(prefix, other.prefix));
  return (address.value & mask) == (other.address.value & mask);
}

Ipv4 Ipv4Net::host(uint32_t n) const {
  return Ipv4{network().value + n};
}

uint64_t Ipv4Net::size() const {
  if (prefix == 0) return 0xffffffffu;  // 2^32 saturates, as the contract says
  return uint64_t{1} << (32 - prefix);
}

std::string Ipv4Net::to_string() const {
  return network().to_string() + "/" + std::to_string(prefix);
}

Result<Mac> Mac::parse(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument,
                 "invalid MAC address '" + std::string(text) + "': " + why);
  };
  // Exactly six hex pairs with one kind of separator: "02:42:ac:11:00:02".
  if (text.size() != 17) return bad("expected six hex pairs such as 02:42:ac:11:00:02");
  char sep = text[2];
  if (sep != ':' && sep != '-') return bad("expected six hex pairs such as 02:42:ac:11:00:02");
  Mac mac;
  for (size_t i = 0; i < 6; ++i) {
    size_t at = i * 3;
    if (i > 0 && text[at - 1] != sep)
      return bad("expected six hex pairs such as 02:42:ac:11:00:02");
    int hi = hex_value(text[at]), lo = hex_value(text[at + 1]);
    if (hi < 0 || lo < 0) return bad("expected six hex pairs such as 02:42:ac:11:00:02");
    mac.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  if (mac.bytes[0] & 0x01) return bad("a multicast address cannot name one interface");
  if (mac == Mac{}) return bad("the all-zero address is not valid");
  return mac;
}

std::string Mac::to_string() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return buf;
}

Mac derive_mac(std::string_view seed) {
  Sha256Bytes digest = sha256(seed.data(), seed.size());
  Mac mac;
  for (size_t i = 0; i < 6; ++i)
    mac.bytes[i] = digest[i];
  // Locally administered (bit 1 of the first byte set, IEEE 802 "U/L") so it
  // cannot clash with a vendor's address; unicast (bit 0 clear).
  mac.bytes[0] = static_cast<uint8_t>((mac.bytes[0] & 0xfe) | 0x02);
  return mac;
}

}  // namespace vessel::net
