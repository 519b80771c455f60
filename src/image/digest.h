// Content digests ("sha256:<64 hex>") as the OCI image spec defines them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/sha256.h"

namespace vessel::image {

/// A validated digest. Only sha256 is accepted (the algorithm every
/// registry uses; sha512 may follow).
class Digest {
 public:
  /// Parses "sha256:<64 lowercase hex>"; kInvalidArgument naming the input.
  static Result<Digest> parse(std::string_view s);
  /// The sha256 digest of `data`.
  static Digest of(std::span<const uint8_t> data);
  static Digest of(std::string_view data);

  const std::string& algorithm() const { return algorithm_; }
  const std::string& hex() const { return hex_; }
  /// "sha256:<hex>".
  std::string str() const { return algorithm_ + ":" + hex_; }
  /// The first 12 hex characters, for display.
  std::string short_hex() const { return hex_.substr(0, 12); }

  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest&, const Digest&) = default;

 private:
  Digest(std::string algorithm, std::string hex)
      : algorithm_(std::move(algorithm)), hex_(std::move(hex)) {}
  std::string algorithm_;
  std::string hex_;
};

/// Incremental sha256, for verifying a blob while it streams.
class Sha256 {
 public:
  void update(const void* data, size_t size);
  uint64_t bytes() const { return bytes_; }
  /// Finishes the hash; the object must not be updated afterwards.
  Digest finish();

 private:
  Sha256Context ctx_;
  uint64_t bytes_ = 0;
};

}  // namespace vessel::image
