// SHA-256 (image digests, MAC addresses) from libcrypto, opened at the first
// use (base/library.h) rather than linked: most runs of the CLI and every
// monitor hash nothing, and a linked libcrypto cost each of them its
// loading and ~0.4 MiB of relocated data (docs/architecture.md, "Libraries
// opened on demand").
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace vessel {

using Sha256Bytes = std::array<uint8_t, 32>;

/// An incremental SHA-256. Without libcrypto (Debian's libssl3, which
/// Vessel depends on) the first use ends the program with a message naming
/// the package, as libarchive's functions do: there is no hashing without it.
class Sha256Context {
 public:
  Sha256Context();
  ~Sha256Context();
  Sha256Context(Sha256Context&& other) noexcept;
  Sha256Context& operator=(Sha256Context&& other) noexcept;
  Sha256Context(const Sha256Context&) = delete;
  Sha256Context& operator=(const Sha256Context&) = delete;

  void update(const void* data, size_t size);
  /// The hash of everything given; the context must not be updated after.
  Sha256Bytes finish();

 private:
  void* ctx_ = nullptr;  // an EVP_MD_CTX
};

/// The SHA-256 of `size` bytes at `data`.
Sha256Bytes sha256(const void* data, size_t size);

}  // namespace vessel
