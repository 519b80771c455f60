// libFuzzer target for what a client of `vessel system service` sends: the
// HTTP request (Boost.Beast's parser with the server's limits), its target
// (version prefix, escapes, query), the route, the `filters` parameter,
// and a container create body (Docker's Config + HostConfig).
//
// Beyond "no crash, no sanitizer report" it aborts when:
//   - parse_and_route answers something other than 0 (a handler would
//     run), 400, 404 or 413;
//   - a routed request's path does not start with '/' or keeps a version
//     prefix, or its version is outside [kMinApiVersion, kApiVersion];
//   - parse_create_body fails with a code other than kInvalidArgument, or
//     accepts a body without an image;
//   - parse_endpoint_config (network connect's EndpointConfig) or
//     parse_registry_auth (X-Registry-Auth) fails with another code, or the
//     latter gives credentials with neither a username nor a password.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/create_body.h"
#include "api/http.h"
#include "api/server.h"

namespace vessel::api {
namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void create_body(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return;
  if (j.is_object() && j.contains("EndpointConfig")) {
    auto a = parse_endpoint_config(j["EndpointConfig"], "net", "EndpointConfig.");
    check(a.ok() || a.error().code() == ErrorCode::kInvalidArgument);
  }
  auto s = parse_create_body(j);
  if (!s.ok()) {
    check(s.error().code() == ErrorCode::kInvalidArgument);
    return;
  }
  check(!s->image.empty());
}

void registry_auth(const std::string& header) {
  auto a = parse_registry_auth(header);
  if (!a.ok()) {
    check(a.error().code() == ErrorCode::kInvalidArgument);
    return;
  }
  if (*a) check(!(*a)->username.empty() || !(*a)->password.empty());
}

}  // namespace
}  // namespace vessel::api

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel::api;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Request req;
  int status = parse_and_route(in, req);
  check(status == 0 || status == 400 || status == 404 || status == 413);
  if (status == 0) {
    check(!req.path.empty() && req.path[0] == '/');
    check(req.path.rfind("/v1.", 0) != 0 || req.version.empty());
    if (!req.version.empty()) check(req.version.size() <= 12);
    (void)parse_filters(req.arg("filters"));
    if (req.path == "/containers/create") create_body(req.body);
    registry_auth(req.header("x-registry-auth"));
  }
  // The input as a body and as a header value by itself too.
  create_body(in);
  registry_auth(std::string(in));
  return 0;
}
