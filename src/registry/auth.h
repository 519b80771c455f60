// Registry authentication: WWW-Authenticate challenges (RFC 7235) and the
// Docker token protocol (distribution/docs/spec/auth/token.md).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "registry/http.h"

namespace vessel::registry {

/// A user name and password (or token) for one registry.
struct Credentials {
  std::string username;
  std::string password;
  friend bool operator==(const Credentials&, const Credentials&) = default;
};

/// One challenge of a WWW-Authenticate header.
struct Challenge {
  std::string scheme;                         // lowercased: "bearer", "basic", ...
  std::map<std::string, std::string> params;  // names lowercased, values unquoted
  std::string token68;                        // "Negotiate abc==" style, rarely used

  /// The value of `name` (lowercase), or "".
  std::string param(const std::string& name) const;
};

/// Bounds on what parse_www_authenticate accepts from a registry.
inline constexpr size_t kMaxAuthHeader = 8192;
inline constexpr size_t kMaxChallenges = 16;
inline constexpr size_t kMaxAuthParams = 32;

/// Parses the challenges of one WWW-Authenticate header value:
///   challenge = scheme [ 1*SP ( token68 / #( token BWS "=" BWS ( token / quoted-string ) ) ) ]
/// separated by commas. Strict: control characters, unterminated quoted
/// strings, a parameter without a value, a duplicate parameter or a header
/// beyond the bounds above is kProtocol.
Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header);

/// "Basic <base64(user:pass)>" for an Authorization header.
std::string basic_authorization(const Credentials& credentials);

/// Standard base64 with padding.
std::string base64_encode(std::string_view data);
/// Strict base64 decoding (padding required, no whitespace); nullopt if malformed.
std::optional<std::string> base64_decode(std::string_view data);

/// A bearer token and when to stop using it.
struct BearerToken {
  std::string token;
  std::chrono::steady_clock::time_point expires;
};

/// Parses a token server's JSON reply: "token" or "access_token" (a
/// non-empty string of visible ASCII), "expires_in" seconds (default 60).
Result<BearerToken> parse_token_response(std::string_view body);

/// Obtains a token from the challenge's realm: GET realm?service=..&scope=..
/// with basic auth when `credentials` are known. `scope` overrides the
/// challenge's own scope when non-empty. The realm must be an http(s) URL.
Result<BearerToken> fetch_token(const HttpClient& http, const Challenge& challenge,
                                const std::string& scope,
                                const std::optional<Credentials>& credentials);

/// Bearer tokens by scope ("repository:library/busybox:pull"). Thread-safe.
class TokenCache {
 public:
  /// The token for `scope` unless it expires within the next 10 seconds.
  std::optional<std::string> get(const std::string& scope) const;
  void put(const std::string& scope, BearerToken token);
  void erase(const std::string& scope);

 private:
  mutable std::mutex mu_;
  std::map<std::string, BearerToken> tokens_;
};

}  // namespace vessel::registry
