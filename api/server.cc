#include "api/server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <system_error>
#include <thread>

#include "api/context.h"
#include "api/handlers.h"
#include "api/router.h"
#include "base/log.h"
#include "sys/fs.h"

namespace vessel::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr size_t kMaxHeaderBytes = 64 << 10;

void fill_request(const http::request<http::string_body>& m, Request& req) {
  req.method = std::string(m.method_string());
  req.target = std::string(m.target());
  for (const auto& h : m) {
    std::string k(h.name_string());
    for (auto& c : k)
      c = static_cast<char>(::tolower(static_cast<unsigned char>(c)));
    req.headers[k] = std::string(h.value());
  }
  req.body = m.body();
}

// Parses the target and finds the route: the status to answer without a
// handler, or 0 and the handler.
int route(const Router& router, Request& req, const Handler** handler, Reply& early,
          bool* streams_body = nullptr) {
  if (auto s = parse_target(req.target, req); !s.ok()) {
    early = error_reply(400, s.error().message());
    return 400;
  }
  *handler = router.match(req.method, req, streams_body);
  if (!*handler) {
    early = error_reply(404, "page not found");
    return 404;
  }
  return 0;
}

Reply run_handler(const Handler& h, Context& ctx, Request& req, Exchange& ex) {
  try {
    return h(ctx, req, ex);
  } catch (const nlohmann::json::exception& e) {
    return error_reply(400, std::string("invalid JSON body: ") + e.what());
  } catch (const std::exception& e) {
    return error_reply(500, std::string("internal error: ") + e.what());
  }
}

void write_reply(local::socket& sock, const Request& req, Reply& rep, bool keep_alive,
                 beast::error_code& ec) {
  http::response<http::string_body> res;
  res.version(11);
  res.result(static_cast<unsigned>(rep.status));
  res.set(http::field::server, "Vessel");
  res.set("Api-Version", kApiVersion);
  res.set("Docker-Experimental", "false");
  res.set("Ostype", "linux");
  if (!rep.body.empty() || rep.status != 204) res.set(http::field::content_type, rep.content_type);
  for (const auto& [k, v] : rep.headers)
    res.set(k, v);
  res.keep_alive(keep_alive);
  if (req.method == "HEAD") {
    res.content_length(rep.body.size());
    http::response_serializer<http::string_body> sr(res);
    http::write_header(sock, sr, ec);
    return;
  }
  if (rep.status != 204 && rep.status != 304) res.body() = std::move(rep.body);
  res.prepare_payload();
  http::write(sock, res, ec);
}

// The reply for a request the parser refused.
Reply parse_error_reply(const beast::error_code& ec) {
  return ec == http::error::body_limit
             ? error_reply(413, "request body too large (the limit is " +
                                    std::to_string(kMaxBodyBytes >> 20) + " MiB)")
         : ec == http::error::header_limit
             ? error_reply(431, "request headers too large")
             : error_reply(400, "malformed HTTP request: " + ec.message());
}

void serve_connection(Context& ctx, const Router& router, local::socket sock) {
  beast::flat_buffer buf;
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxHeaderBytes);
    // The limit is set once the route is known (a tar upload streams).
    // Not boost::none: Boost 1.74 compares a Content-Length with it as
    // "greater than nothing" and refuses every body.
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    beast::error_code ec;
    http::read_header(sock, buf, parser, ec);
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset)
      return;
    Request req;
    req.method = "GET";
    if (ec) {
      Reply rep = parse_error_reply(ec);
      write_reply(sock, req, rep, false, ec);
      return;
    }
    fill_request(parser.get(), req);
    bool keep_alive = parser.get().keep_alive();
    const Handler* handler = nullptr;
    bool streams_body = false;
    Reply rep;
    bool routed = route(router, req, &handler, rep, &streams_body) == 0;
    if (!routed || !streams_body) {
      // Bounded: a declared length over the limit is refused before any
      // of it is read; a chunked body is counted as it comes.
      if (auto len = parser.content_length(); len && *len > kMaxBodyBytes)
        ec = http::error::body_limit;
      else if (!parser.is_done()) {
        parser.body_limit(kMaxBodyBytes);
        http::read(sock, buf, parser, ec);
      }
      if (ec) {
        Reply bad = parse_error_reply(ec);
        write_reply(sock, req, bad, false, ec);
        return;
      }
      req.body = parser.get().body();
    }
    if (routed) {
      Exchange::BodyReader body;
      if (streams_body)
        body = [&](std::string& chunk) -> Result<bool> {
          chunk.clear();
          while (chunk.empty()) {
            if (parser.is_done()) return false;
            beast::error_code rec;
            http::read_some(sock, buf, parser, rec);
            chunk = std::move(parser.get().body());
            parser.get().body().clear();
            if (rec == http::error::end_of_stream || rec == asio::error::eof ||
                rec == asio::error::connection_reset)
              return Error(ErrorCode::kUnavailable, "the client went away mid-body");
            if (rec) return Error(ErrorCode::kInvalidArgument, "malformed body: " + rec.message());
          }
          return true;
        };
      std::string leftover(static_cast<const char*>(buf.data().data()), buf.size());
      bool upgrade = req.header("upgrade") == "tcp" ||
                     req.header("connection").find("Upgrade") != std::string::npos;
      Exchange ex(sock.native_handle(), std::move(leftover), upgrade, std::move(body));
      log::debug(req.method + " " + req.target);
      rep = run_handler(*handler, ctx, req, ex);
      if (rep.taken) return;
      // A handler that stopped reading mid-body leaves the connection
      // unusable for a next request.
      if (streams_body && !parser.is_done()) keep_alive = false;
    }
    write_reply(sock, req, rep, keep_alive, ec);
    if (ec || !keep_alive) return;
    ctx.last_activity_ns = now_ns();
  }
}

// A unix socket at `path` that accepts a connection belongs to a live
// server.
bool socket_alive(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  bool alive = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return alive;
}

}  // namespace

std::string default_socket(const std::string& root) {
  return ::geteuid() == 0 ? "/run/vessel/docker.sock" : root + "/run/docker.sock";
}

Result<std::string> socket_from_uri(const std::string& uri) {
  std::string path = uri;
  if (uri.rfind("unix://", 0) == 0)
    path = uri.substr(7);
  else if (uri.find("://") != std::string::npos)
    return Error(ErrorCode::kInvalidArgument,
                 "serve '" + uri + "': only unix:// sockets are served (tcp:// would need TLS)");
  if (path.empty() || path[0] != '/')
    return Error(ErrorCode::kInvalidArgument,
                 "serve '" + uri + "': expected unix:///absolute/path or an absolute path");
  if (path.size() >= sizeof(sockaddr_un{}.sun_path))
    return Error(ErrorCode::kInvalidArgument, "serve '" + uri + "': socket path too long");
  return path;
}

int parse_and_route(std::string_view bytes, Request& out) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  parser.body_limit(kMaxBodyBytes);
  parser.eager(true);
  beast::error_code ec;
  size_t used = 0;
  while (used < bytes.size() && !parser.is_done()) {
    size_t n = parser.put(asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    if (ec == http::error::need_more) break;
    if (ec) return ec == http::error::body_limit ? 413 : 400;
    if (n == 0) break;
    used += n;
  }
  if (!parser.is_done()) return 400;
  fill_request(parser.get(), out);
  static const Router router = make_router();
  const Handler* h = nullptr;
  Reply early;
  return route(router, out, &h, early);
}

Status serve(const ServiceOptions& o) {
  ::signal(SIGPIPE, SIG_IGN);
  asio::io_context io;
  local::acceptor acceptor(io);
  beast::error_code ec;
  const char* listen_pid = ::getenv("LISTEN_PID");
  const char* listen_fds = ::getenv("LISTEN_FDS");
  bool activated =
      listen_pid && listen_fds && std::atoi(listen_pid) == ::getpid() && std::atoi(listen_fds) == 1;
  if (activated) {
    acceptor.assign(local(), 3, ec);
    if (ec)
      return Error(ErrorCode::kInternal, "serve: take the socket systemd passed: " + ec.message());
  } else {
    std::string dir = o.socket_path.substr(0, o.socket_path.rfind('/'));
    if (!dir.empty()) VESSEL_TRY(sys::make_dirs(dir, 0711));
    struct stat st;
    if (::lstat(o.socket_path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode))
        return Error(ErrorCode::kAlreadyExists,
                     "serve '" + o.socket_path + "': a file that is not a socket is there");
      if (socket_alive(o.socket_path))
        return Error(ErrorCode::kAlreadyExists,
                     "serve '" + o.socket_path + "': another service is listening there");
      ::unlink(o.socket_path.c_str());
    }
    acceptor.open(local(), ec);
    if (!ec) acceptor.bind(local::endpoint(o.socket_path), ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Error(ErrorCode::kInternal, "serve '" + o.socket_path + "': " + ec.message());
    // Like docker.sock: the owner (and root) only.
    ::chmod(o.socket_path.c_str(), 0600);
  }
  ::fcntl(acceptor.native_handle(), F_SETFD, FD_CLOEXEC);
  Context ctx(o.root);
  ctx.last_activity_ns = now_ns();
  Router router = make_router();
  // Destroyed (stopped and joined) before ctx.
  std::jthread watcher([&ctx](std::stop_token stop) { watch_container_events(ctx, stop); });
  log::info("serving the Docker API " + std::string(kApiVersion) + " on unix://" +
            (activated ? std::string("(systemd socket)") : o.socket_path));
  while (true) {
    pollfd p{acceptor.native_handle(), POLLIN, 0};
    int n = ::poll(&p, 1, 250);
    if (n < 0 && errno != EINTR) return Error::from_errno(errno, "serve: poll");
    if (n <= 0) {
      int64_t idle = now_ns() - ctx.last_activity_ns;
      if (o.idle_seconds > 0 && ctx.active == 0 &&
          idle > static_cast<int64_t>(o.idle_seconds) * 1'000'000'000)
        break;
      continue;
    }
    // accept4 with SOCK_CLOEXEC, not Asio's accept: the monitors this
    // process starts (fork + exec, from other threads at any moment) must
    // not inherit client connections, or a client would never see EOF.
    int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    local::socket sock(io);
    sock.assign(local(), fd, ec);
    if (ec) {
      ::close(fd);
      continue;
    }
    ctx.active++;
    ctx.last_activity_ns = now_ns();
    try {
      std::thread([&ctx, &router, s = std::move(sock)]() mutable {
        // Handlers' exceptions are replies already; anything else thrown
        // ends this connection, never the service.
        try {
          serve_connection(ctx, router, std::move(s));
        } catch (const std::exception& e) {
          log::warn(std::string("serve: a connection failed: ") + e.what());
        }
        ctx.last_activity_ns = now_ns();
        ctx.active--;
      }).detach();
    } catch (const std::system_error& e) {
      // No thread to be had (a limit): this connection is dropped, the
      // service goes on.
      log::warn(std::string("serve: cannot take a connection: ") + e.what());
      ctx.active--;
    }
  }
  if (!activated) ::unlink(o.socket_path.c_str());
  return ok_status();
}

}  // namespace vessel::api
