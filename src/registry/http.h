// A small libcurl wrapper: one easy handle per request, bodies bounded in
// memory or streamed to a callback.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"

namespace vessel::registry {

/// Response headers in arrival order; lookups ignore case (RFC 9110 5.1).
class HttpHeaders {
 public:
  void add(std::string name, std::string value);
  void clear() { entries_.clear(); }
  /// The first value of `name`, or nullopt.
  std::optional<std::string> get(std::string_view name) const;
  /// Every value of `name` (WWW-Authenticate may repeat).
  std::vector<std::string> get_all(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

/// Receives a successful (2xx) response body as it arrives. An error aborts
/// the transfer and becomes the result of HttpClient::perform.
using BodySink = std::function<Status(std::string_view chunk)>;

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  /// Request headers as "Name: value" lines, sent verbatim. Callers must not
  /// put CR or LF in them (perform rejects such a header).
  std::vector<std::string> headers;
  /// The request body, from memory...
  std::string body;
  /// ...or, when set, from this file: `body_length` bytes from `body_offset`
  /// (the rest of the file when body_length is nullopt).
  std::optional<std::string> body_path;
  int64_t body_offset = 0;
  std::optional<int64_t> body_length;
  /// Follows up to 5 redirects (only GET and HEAD should: blob storage
  /// redirects). libcurl drops the Authorization header when the redirect
  /// leads to another host or port (CURLOPT_UNRESTRICTED_AUTH stays off).
  bool follow_redirects = false;
  /// Where a 2xx body goes; when empty it is kept in HttpResponse::body.
  BodySink sink;
  /// Bound on a body kept in memory (2xx without a sink, or any non-2xx
  /// body); beyond it the transfer fails with kProtocol.
  size_t max_body = 8u << 20;
};

struct HttpResponse {
  long status = 0;
  /// Headers of the final response (those of redirects are dropped).
  HttpHeaders headers;
  /// The body unless a sink took it (non-2xx bodies are always here).
  std::string body;
  /// The URL that answered, after redirects.
  std::string effective_url;
};

struct HttpOptions {
  /// Skip TLS certificate and host name verification (self-signed registries).
  bool insecure_tls = false;
  /// A PEM bundle to trust instead of the system CA store.
  std::string ca_file;
  long connect_timeout_seconds = 15;
  /// Abort when fewer than `low_speed_bytes` per second arrive for
  /// `low_speed_seconds` (a stalled transfer, not a slow one).
  long low_speed_bytes = 1024;
  long low_speed_seconds = 30;
  std::string user_agent = "vessel/0.1";
};

/// Performs HTTP requests with libcurl. Stateless apart from its options; safe
/// to use from several threads (each perform has its own easy handle).
class HttpClient {
 public:
  explicit HttpClient(HttpOptions options = {}) : options_(std::move(options)) {}

  /// Performs `request`. Any HTTP status is a successful result; transport
  /// failures are errors naming the method and URL: kTimeout for timeouts,
  /// kPermissionDenied for an untrusted TLS certificate, kUnavailable for
  /// connection failures, kProtocol for malformed or oversized replies, or
  /// the sink's own error.
  Result<HttpResponse> perform(const HttpRequest& request) const;

  const HttpOptions& options() const { return options_; }

 private:
  HttpOptions options_;
};

/// Percent-encodes `s` for a URL query component (RFC 3986 unreserved kept).
std::string url_encode(std::string_view s);

}  // namespace vessel::registry
