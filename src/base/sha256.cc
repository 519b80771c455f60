#include "base/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "base/library.h"

namespace vessel {
namespace {

struct CryptoApi {
  decltype(&EVP_MD_CTX_new) md_ctx_new;
  decltype(&EVP_MD_CTX_free) md_ctx_free;
  decltype(&EVP_sha256) sha256;
  decltype(&EVP_DigestInit_ex) digest_init;
  decltype(&EVP_DigestUpdate) digest_update;
  decltype(&EVP_DigestFinal_ex) digest_final;
};

const CryptoApi& crypto() {
  static const CryptoApi api = [] {
    CryptoApi a{};
    Library lib("libcrypto.so.3", "libssl3");
    lib.bind(a.md_ctx_new, "EVP_MD_CTX_new");
    lib.bind(a.md_ctx_free, "EVP_MD_CTX_free");
    lib.bind(a.sha256, "EVP_sha256");
    lib.bind(a.digest_init, "EVP_DigestInit_ex");
    lib.bind(a.digest_update, "EVP_DigestUpdate");
    lib.bind(a.digest_final, "EVP_DigestFinal_ex");
    if (Status s = lib.status(); !s.ok()) {
      std::fprintf(stderr, "vessel: %s\n", s.error().to_string().c_str());
      std::abort();
    }
    return a;
  }();
  return api;
}

}  // namespace

Sha256Context::Sha256Context() {
  const CryptoApi& api = crypto();
  EVP_MD_CTX* ctx = api.md_ctx_new();
  if (ctx == nullptr || api.digest_init(ctx, api.sha256(), nullptr) != 1) {
    std::fprintf(stderr, "vessel: libcrypto could not start a SHA-256\n");
    std::abort();
  }
  ctx_ = ctx;
}

Sha256Context::~Sha256Context() {
  if (ctx_) crypto().md_ctx_free(static_cast<EVP_MD_CTX*>(ctx_));
}

Sha256Context::Sha256Context(Sha256Context&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)) {}

Sha256Context& Sha256Context::operator=(Sha256Context&& other) noexcept {
  if (this != &other) {
    if (ctx_) crypto().md_ctx_free(static_cast<EVP_MD_CTX*>(ctx_));
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}

void Sha256Context::update(const void* data, size_t size) {
  crypto().digest_update(static_cast<EVP_MD_CTX*>(ctx_), data, size);
}

Sha256Bytes Sha256Context::finish() {
  Sha256Bytes out{};
  unsigned int n = 0;
  crypto().digest_final(static_cast<EVP_MD_CTX*>(ctx_), out.data(), &n);
  return out;
}

Sha256Bytes sha256(const void* data, size_t size) {
  Sha256Context c;
  c.update(data, size);
  return c.finish();
}

}  // namespace vessel
