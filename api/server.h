// `vessel system service`: the Docker Engine API on a unix socket, served
// with Boost.Beast (HTTP/1.1 parsing and writing) over Boost.Asio, one
// thread per connection. Beast was chosen over cpp-httplib because
// attach and exec hijack the connection (101 Switching Protocols, then a
// raw byte stream both ways): Beast leaves the socket to us after the
// request is read. docs/docker-api.md says what is served.
#pragma once

#include <string>
#include <string_view>

#include "api/http.h"
#include "base/error.h"

namespace vessel::api {

struct ServiceOptions {
  std::string root;         // the state root
  std::string socket_path;  // where to listen
  int idle_seconds = 5;     // exit after this long without a connection; 0: never
};

/// The socket served when no URI is given: /run/vessel/docker.sock for
/// root, else <root>/run/docker.sock.
std::string default_socket(const std::string& root);

/// "unix:///path" or a plain absolute path -> the path; kInvalidArgument
/// for other schemes (tcp:// is not served: it would need TLS to be safe).
Result<std::string> socket_from_uri(const std::string& uri);

/// Serves until idle for `idle_seconds` (0: forever). With systemd socket
/// activation (LISTEN_PID = us, LISTEN_FDS = 1) serves fd 3 instead of
/// binding. A live socket at the path (another service) is an error; a
/// stale one is replaced.
Status serve(const ServiceOptions& options);

/// Parses raw bytes as one HTTP request with the server's limits and
/// routes it without running a handler: the part of serving that reads
/// untrusted input, for the fuzz target and unit tests. Returns the status
/// the server would answer without a handler (400, 404, 413, ...) or 0
/// when a handler would run; `out` is filled as far as parsing got.
int parse_and_route(std::string_view bytes, Request& out);

}  // namespace vessel::api
