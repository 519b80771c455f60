// Routes of the Docker Engine API: METHOD + a path pattern -> handler.
// Patterns are segments with parameters: "/containers/{id}/json"; a
// parameter written {name*} takes one or more segments, so image names
// with slashes match "/images/{name*}/json".
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "api/http.h"

namespace vessel::api {

class Context;
class Exchange;

using Handler = std::function<Reply(Context&, Request&, Exchange&)>;

class Router {
 public:
  /// A route; with `streams_body` its handler reads the request body
  /// itself (Exchange::read_body: tar uploads, unbounded), else the server
  /// reads it first, up to kMaxBodyBytes.
  void add(const std::string& method, const std::string& pattern, Handler handler,
           bool streams_body = false);
  /// The handler for `method` and `req.path`, filling req.params (and
  /// *streams_body when given); nullptr when none matches (Docker's 404
  /// "page not found"). HEAD falls back to GET's route.
  const Handler* match(const std::string& method, Request& req, bool* streams_body = nullptr) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
    bool streams_body = false;
  };
  std::vector<Route> routes_;
};

/// Every route of the API (the handlers in containers.cc, images.cc, ...).
Router make_router();

}  // namespace vessel::api
