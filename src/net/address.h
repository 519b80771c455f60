// IPv4 addresses, subnets and MAC addresses: parsing, formatting, arithmetic.
// Pure data, no system calls.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace vessel::net {

/// An IPv4 address in host byte order.
struct Ipv4 {
  uint32_t value = 0;
  /// Dotted quad, exactly four decimal parts 0-255 without leading zeros
  /// beyond "0"; kInvalidArgument naming the text otherwise.
  static Result<Ipv4> parse(std::string_view text);
  std::string to_string() const;
  auto operator<=>(const Ipv4&) const = default;
};

/// An IPv4 subnet: `address` with `prefix` leading bits significant.
struct Ipv4Net {
  Ipv4 address;        // as given; network() clears the host bits
  uint8_t prefix = 0;  // 0-32
  /// "A.B.C.D/N". With `strict` the host bits must be zero (a subnet as
  /// Docker wants it: "10.1.2.3/24" is refused, naming 10.1.2.0/24).
  static Result<Ipv4Net> parse(std::string_view text, bool strict = true);
  Ipv4 network() const;
  Ipv4 broadcast() const;
  uint32_t netmask() const;
  bool contains(Ipv4 a) const;
  bool overlaps(const Ipv4Net& other) const;
  /// The n-th address of the subnet (0 = the network address).
  Ipv4 host(uint32_t n) const;
  /// Number of addresses (2^(32-prefix), saturating at 2^32-1).
  uint64_t size() const;
  /// "10.1.2.0/24" (network address, not `address`).
  std::string to_string() const;
  auto operator<=>(const Ipv4Net&) const = default;
};

struct Mac {
  std::array<uint8_t, 6> bytes{};
  /// "02:42:ac:11:00:02" (hex pairs, ':' or '-' separated, any case).
  /// Multicast addresses (low bit of the first byte) and all-zero are refused.
  static Result<Mac> parse(std::string_view text);
  /// Lowercase, ':' separated.
  std::string to_string() const;
  auto operator<=>(const Mac&) const = default;
};

/// A stable, locally administered unicast MAC derived from `seed` (e.g. the
/// container id and the network name): the same seed gives the same MAC.
Mac derive_mac(std::string_view seed);

}  // namespace vessel::net
