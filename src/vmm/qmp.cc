#include "vmm/qmp.h"

#include <poll.h>
#include <unistd.h>

#include "sys/fs.h"
#include "sys/unix_socket.h"

namespace vessel::vmm {

using Clock = std::chrono::steady_clock;

Result<nlohmann::json> QmpClient::read_message(Clock::time_point deadline) {
  constexpr size_t kMaxLine = 1u << 20;
  while (true) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object())
        return Error(ErrorCode::kProtocol, "qmp: malformed message");
      return j;
    }
    if (buffer_.size() > kMaxLine) return Error(ErrorCode::kProtocol, "qmp: message too long");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Error(ErrorCode::kTimeout, "qmp: no reply");
    pollfd p{fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) return Error::from_errno(errno, "qmp: poll");
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n == 0) return Error(ErrorCode::kUnavailable, "qmp: connection closed");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Error::from_errno(errno, "qmp: read");
    }
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

Status QmpClient::handshake(Clock::time_point deadline) {
  VESSEL_ASSIGN_OR_RETURN(auto greeting, read_message(deadline));
  if (!greeting.contains("QMP")) return Error(ErrorCode::kProtocol, "qmp: no greeting");
  ready_ = true;
  auto r = execute("qmp_capabilities");
  if (!r.ok()) {
    ready_ = false;
    return r.error();
  }
  return ok_status();
}

Result<nlohmann::json> QmpClient::execute(const std::string& command,
                                          const nlohmann::json& arguments,
                                          std::chrono::milliseconds timeout) {
  return run(command, arguments, -1, timeout);
}

Result<nlohmann::json> QmpClient::execute_with_fd(const std::string& command,
                                                  const nlohmann::json& arguments, int fd,
                                                  std::chrono::milliseconds timeout) {
  return run(command, arguments, fd, timeout);
}

Result<nlohmann::json> QmpClient::run(const std::string& command, const nlohmann::json& arguments,
                                      int fd, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  if (!ready_) VESSEL_TRY(handshake(deadline));
  nlohmann::json req = {{"execute", command}};
  if (!arguments.is_null()) req["arguments"] = arguments;
  std::string line = req.dump() + "\n";
  // With an fd, it goes with the command's bytes; QEMU keeps it for the
  // command it reads next (qemu_chr_fe_get_msgfd).
  if (fd < 0) {
    VESSEL_TRY(sys::write_all(fd_.get(), line.data(), line.size()));
  } else if (auto s = sys::send_with_fd(fd_.get(), line, fd); !s.ok()) {
    return s.error().wrap("qmp: send '" + command + "'");
  }
  while (true) {
    VESSEL_ASSIGN_OR_RETURN(auto msg, read_message(deadline));
    if (msg.contains("event")) continue;  // asynchronous events are not replies
    if (msg.contains("return")) return msg["return"];
    if (msg.contains("error")) {
      std::string desc = "unknown error";
      if (msg["error"].is_object() && msg["error"].contains("desc") &&
          msg["error"]["desc"].is_string())
        desc = msg["error"]["desc"].get<std::string>();
      return Error(ErrorCode::kFailedPrecondition, "qmp '" + command + "': " + desc);
    }
    return Error(ErrorCode::kProtocol, "qmp: unexpected reply");
  }
}

}  // namespace vessel::vmm
