// A client of the OCI distribution API (distribution-spec v1.1): pull and
// push manifests and blobs, with anonymous, basic and bearer-token auth.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "image/digest.h"
#include "registry/auth.h"
#include "registry/http.h"

namespace vessel::registry {

enum class Scheme {
  kHttps,
  kHttp,
  /// http for loopback hosts (127.0.0.0/8, [::1], localhost), https otherwise.
  kAuto,
};

struct RegistryOptions {
  /// "host", "host:port" or "[v6addr]:port" — no scheme, no path.
  std::string host;
  Scheme scheme = Scheme::kAuto;
  /// Skip TLS verification (self-signed registries).
  bool insecure_tls = false;
  /// A PEM bundle to trust instead of the system store.
  std::string ca_file;
  std::optional<Credentials> credentials;
  /// Attempts per request on connection errors, 429 and 5xx (not other 4xx).
  /// A 429 or 503 with Retry-After waits that long (when longer than the
  /// backoff and at most kMaxRetryAfter; longer asks fail at once).
  int attempts = 3;
  std::chrono::milliseconds backoff_base{200};
  /// Blobs larger than this are pushed in PATCH chunks of this size.
  int64_t chunk_size = 64ll << 20;
};

/// A manifest (or index) as the registry served it.
struct FetchedManifest {
  std::string bytes;
  /// Content-Type without parameters ("application/vnd.oci.image.manifest.v1+json").
  std::string media_type;
  /// sha256 of `bytes`, checked against the requested digest and the
  /// Docker-Content-Digest header.
  image::Digest digest;
};

/// Called as a blob streams: bytes received so far and the expected total.
using ProgressFn = std::function<void(int64_t bytes_so_far, int64_t total)>;

/// Largest manifest accepted (the distribution spec suggests 4 MiB).
inline constexpr size_t kMaxManifestBytes = 8u << 20;

/// True for 127.0.0.0/8, [::1], ::1 and localhost (with or without a port).
bool is_loopback_host(std::string_view host);
/// Resolves an upload Location header against the URL of the request that
/// returned it: absolute URLs as is, "/path" against the origin, anything
/// else against the request's directory.
std::string resolve_location(const std::string& request_url, const std::string& location);
/// Checks a repository name against the distribution grammar
/// (lowercase path components of [a-z0-9] separated by [._-], joined by '/').
Status validate_repository(std::string_view repo);
/// How long a Retry-After header (RFC 9110 10.2.3) asks to wait: delay
/// seconds ("120") or an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT", taken
/// relative to `now`; a date in the past is zero). nullopt for anything else.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, std::time_t now);
/// Retry-After values above this are not waited for: the request fails.
inline constexpr std::chrono::seconds kMaxRetryAfter{60};

/// Checks a tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}) or a digest reference.
Status validate_reference(std::string_view reference);

/// A registry client for one host. Thread-safe: concurrent pulls share the
/// token cache.
class RegistryClient {
 public:
  /// Validates the options; kInvalidArgument for a malformed host.
  static Result<RegistryClient> create(RegistryOptions options);
  ~RegistryClient();
  RegistryClient(RegistryClient&&) noexcept;
  RegistryClient& operator=(RegistryClient&&) noexcept;

  /// GET /v2/<repo>/manifests/<reference> with `accept_media_types` as the
  /// Accept header. kNotFound for a missing manifest or repository,
  /// kPermissionDenied when unauthorized, kProtocol for a digest mismatch
  /// (against a digest reference or the Docker-Content-Digest header) or a
  /// manifest larger than kMaxManifestBytes.
  Result<FetchedManifest> get_manifest(const std::string& repo, const std::string& reference,
                                       const std::vector<std::string>& accept_media_types);

  /// HEAD /v2/<repo>/blobs/<digest>: the blob's size, or nullopt when the
  /// registry does not have it.
  Result<std::optional<int64_t>> head_blob(const std::string& repo, const image::Digest& digest);

  /// Streams the blob into `dest_path` (created or truncated, mode 0644),
  /// hashing as it arrives and aborting as soon as more than
  /// `expected_size` bytes arrive. On success the file holds exactly the
  /// blob and is fsynced; the caller renames it into its store. On any
  /// failure the file is removed; a wrong size or digest is kProtocol
  /// ("blob sha256:…: digest mismatch (expected …, got …)").
  Status fetch_blob(const std::string& repo, const image::Digest& digest, int64_t expected_size,
                    const std::string& dest_path, const ProgressFn& progress = {});

  /// Uploads the file at `path` as blob `digest` unless the registry already
  /// has it: POST an upload session, then one PUT (or PATCH chunks of
  /// chunk_size then a closing PUT for larger files).
  Status push_blob(const std::string& repo, const image::Digest& digest, const std::string& path);

  /// PUT /v2/<repo>/manifests/<reference> with `bytes` as `media_type`.
  Status put_manifest(const std::string& repo, const std::string& reference,
                      const std::string& bytes, const std::string& media_type);

  /// "http://host" or "https://host".
  const std::string& base_url() const { return base_url_; }

 private:
  struct AuthState;
  RegistryClient(RegistryOptions options, std::string base_url);

  /// Performs a request with retries and one authentication round: `scope`
  /// is the token scope ("repository:<repo>:pull").
  /// Only requests to base_url_ carry credentials (an upload Location may
  /// point elsewhere). `before_attempt` runs before each attempt (and may
  /// fail it); `retry` false for non-idempotent requests (PATCH).
  Result<HttpResponse> send(const HttpRequest& request, const std::string& scope,
                            const std::function<Status()>& before_attempt = {}, bool retry = true);
  Result<HttpResponse> send_once(const HttpRequest& request, const std::string& scope);
  /// Reacts to a 401: fetches a token or switches to basic auth. False if
  /// the challenge cannot be answered.
  Result<bool> authenticate(const HttpResponse& response, const std::string& scope);
  Result<std::optional<int64_t>> head_blob_scoped(const std::string& repo,
                                                  const image::Digest& digest,
                                                  const std::string& scope);

  RegistryOptions options_;
  std::string base_url_;
  HttpClient http_;
  std::unique_ptr<AuthState> auth_;
};

}  // namespace vessel::registry
