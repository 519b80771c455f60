#include "images/local_registry.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include "base/strings.h"
#include "base/unique_fd.h"
#include "sys/fs.h"

namespace vessel::test {
namespace {

// How long the registry may take to answer /v2/ after it starts.
constexpr auto kStartTimeout = std::chrono::seconds(15);

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

// A port that was free a moment ago: bind port 0, read it, close. Another
// process may take it before the registry binds; start() then retries.
int free_port() {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(0);
  if (!s || ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  socklen_t len = sizeof a;
  if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) return -1;
  return ntohs(a.sin_port);
}

}  // namespace

int http_get_status(int port, const std::string& path) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return 0;
  timeval tv{2, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a = loopback(port);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 0;
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nConnection: close\r\n\r\n";
  if (!sys::write_all(s.get(), req.data(), req.size()).ok()) return 0;
  // Only the status line is needed: "HTTP/1.1 200 OK". Reads stop at 4 KiB.
  std::string reply;
  char buf[512];
  while (reply.find("\r\n") == std::string::npos && reply.size() < 4096) {
    ssize_t n = ::read(s.get(), buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  if (!starts_with(reply, "HTTP/1.") || reply.size() < 12) return 0;
  auto code = parse_u64(std::string_view(reply).substr(9, 3));
  return code ? static_cast<int>(*code) : 0;
}

Result<LocalRegistry> LocalRegistry::start(const std::string& dir) {
  VESSEL_TRY(sys::make_dirs(dir + "/data"));
  std::string last_log;
  // A few attempts: the free port may have been taken meanwhile.
  for (int attempt = 0; attempt < 3; ++attempt) {
    LocalRegistry r;
    r.port_ = free_port();
    if (r.port_ <= 0) return Error(ErrorCode::kInternal, "find a free port on 127.0.0.1", errno);
    // The access log (on stdout) is kept: tests count the blob fetches.
    std::string yml =
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        "    rootdirectory: " +
        dir + "/data\nhttp:\n  addr: " + r.host() + "\n";
    VESSEL_TRY(sys::write_file_atomic(dir + "/config.yml", yml));
    r.log_path_ = dir + "/registry.log";
    VESSEL_ASSIGN_OR_RETURN(UniqueFd log,
                            sys::open_fd(r.log_path_, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    sys::SpawnOptions o;
    o.argv = {kDockerRegistryBin, "serve", dir + "/config.yml"};
    o.fds = {{1, log.get()}, {2, log.get()}};
    VESSEL_ASSIGN_OR_RETURN(sys::Process p, sys::Process::spawn(o));
    r.process_ = std::move(p);
    auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      if (r.process_->try_wait()) {
        exited = true;
        break;
      }
      if (http_get_status(r.port_, "/v2/") == 200) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    last_log = r.log();
    if (!exited)
      return Error(ErrorCode::kTimeout,
                   "docker-registry on " + r.host() + " did not answer /v2/ in " +
                       std::to_string(kStartTimeout.count()) + " s; its log:\n" + last_log);
  }
  return Error(ErrorCode::kUnavailable, "docker-registry exited; its log:\n" + last_log);
}

void LocalRegistry::stop() {
  if (process_ && process_->running()) {
    (void)process_->kill(SIGKILL);
    (void)process_->wait(std::chrono::seconds(10));
  }
  process_.reset();
}

std::string LocalRegistry::log() const {
  auto t = sys::read_file(log_path_, 16 << 20);
  return t.ok() ? *t : "";
}

size_t LocalRegistry::count_requests(std::string_view request_prefix) const {
  // Access log lines: 127.0.0.1 - - [date] "GET /v2/... HTTP/1.1" 200 ...
  size_t n = 0;
  for (const auto& line : split(log(), '\n')) {
    size_t q = line.find('"');
    if (q != std::string::npos && line.compare(q + 1, request_prefix.size(), request_prefix) == 0)
      ++n;
  }
  return n;
}

}  // namespace vessel::test
