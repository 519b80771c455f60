// The Docker Engine API's requests and replies, independent of the HTTP
// library: what handlers see and return. The server (server.cc) fills a
// Request from Boost.Beast's parser and writes a Reply back, or hands a
// handler the raw connection (Exchange) for streams and hijacked sessions.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace vessel::api {

/// The API version Vessel serves and documents (docs/docker-api.md), and
/// the oldest one a client may ask for in a /v1.NN/ path.
inline constexpr const char* kApiVersion = "1.41";
inline constexpr const char* kMinApiVersion = "1.24";

/// Largest request body accepted (JSON bodies are small; this bounds what
/// an untrusted client makes us buffer).
inline constexpr size_t kMaxBodyBytes = 4 << 20;

struct Request {
  std::string method;   // "GET", "POST", "HEAD", "DELETE", ...
  std::string target;   // as sent: "/v1.41/containers/json?all=1"
  std::string path;     // without the version prefix and query: "/containers/json"
  std::string version;  // "1.41" from the path, or "" when unversioned
  std::map<std::string, std::string> query;  // decoded; the last value of a repeated key
  std::map<std::string, std::vector<std::string>> query_all;  // every value, in order
  std::map<std::string, std::string> headers;                 // lower-case names
  std::string body;
  /// Path parameters the route matched: {id}, {name}.
  std::map<std::string, std::string> params;

  std::string param(const std::string& k) const {
    auto it = params.find(k);
    return it == params.end() ? "" : it->second;
  }
  /// A query parameter, `fallback` when absent.
  std::string arg(const std::string& k, const std::string& fallback = "") const {
    auto it = query.find(k);
    return it == query.end() ? fallback : it->second;
  }
  /// Docker's booleans in queries: "1", "true", "True" are true.
  bool flag(const std::string& k, bool fallback = false) const;
  std::string header(const std::string& k) const {
    auto it = headers.find(k);
    return it == headers.end() ? "" : it->second;
  }
};

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;
  /// The handler wrote everything on the connection itself (a stream or a
  /// hijacked session); the server writes nothing more and closes.
  bool taken = false;
};

/// `j` as one line of JSON. Strings may hold what a client sent (a path,
/// a name): bytes that are not UTF-8 are replaced (U+FFFD), never a throw.
std::string dump_json(const nlohmann::json& j);

/// A JSON reply.
Reply json_reply(int status, const nlohmann::json& body);
/// Docker's error body {"message": ...} with `status`.
Reply error_reply(int status, const std::string& message);
/// The status Docker gives for an error of this code: 404 not found, 409
/// conflict (exists, failed precondition), 400 invalid argument, 500 else.
int status_of(const Error& e);
/// error_reply(status_of(e), e's message with its causes).
Reply error_reply(const Error& e);

/// Decodes %XX and '+' in a query component; nullopt on a bad escape.
std::optional<std::string> url_decode(std::string_view s);

/// Splits a request target into path, version and query. Fails with a
/// clear message (kInvalidArgument) on a bad escape, a relative target, or
/// a version outside [kMinApiVersion, kApiVersion] (kFailedPrecondition:
/// Docker's 400 "client version X is too new/old").
Status parse_target(const std::string& target, Request& out);

/// Docker's `filters` query parameter: {"name": ["a"], "label": ["k=v"]}
/// (also the old {"name": {"a": true}} form). kInvalidArgument otherwise.
Result<std::map<std::string, std::vector<std::string>>> parse_filters(const std::string& text);

/// A JSON request body: an object (an empty body is {}), else
/// kInvalidArgument "invalid JSON body: ...".
Result<nlohmann::json> parse_body(const Request& req);

}  // namespace vessel::api

/// In a handler: `lhs = value of expr`, or return the error as Docker's reply.
#define VESSEL_ASSIGN_OR_RETURN_REPLY(lhs, expr) \
  VESSEL_ASSIGN_OR_RETURN_REPLY_IMPL_(VESSEL_CONCAT_(vessel_rr_, __LINE__), lhs, expr)
#define VESSEL_ASSIGN_OR_RETURN_REPLY_IMPL_(tmp, lhs, expr)                 \
  auto tmp = (expr);                                                        \
  if (!tmp.ok()) return ::vessel::api::error_reply(std::move(tmp).error()); \
  lhs = std::move(tmp).value()
